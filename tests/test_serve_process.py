"""`host serve` as an operator runs it: quickstart, start-up errors, shutdown."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from mcp import Client

from host.testing import FakeUpstream, free_port, start_host_process, write_host_toml
from tests.conftest import API_KEY, ORG_UUID, ROOT, calls_for, tratta_base_uri


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    import os

    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TRATTA_", "HOST_"))}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "host", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=ROOT,
        timeout=timeout,
    )


async def test_quickstart_config_serves_both_ports_in_mock_mode(tmp_path: Path) -> None:
    # The repository's host.toml, verbatim except for the ports (8080/9090 may be taken here).
    rest_port, mcp_port = free_port(), free_port()
    text = (ROOT / "host.toml").read_text()
    text = text.replace("rest_port = 8080", f"rest_port = {rest_port}").replace(
        "mcp_port = 9090", f"mcp_port = {mcp_port}"
    )
    config = tmp_path / "host.toml"
    config.write_text(text)
    host = start_host_process(config)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(
                host.rest_url + "/v1/customer-sessions", json={"customer_id": "c-1", "valid_until": 2}
            ) as resp:
                assert resp.status == 201
                assert resp.headers["X-Host-Mock"] == "true"
                data = (await resp.json())["data"]
                assert data["id"] and data["portal_url"].startswith("https://") and data["expiration"]
            async with session.post(host.rest_url + "/v1/customer-sessions", json={"valid_until": 2}) as resp:
                assert resp.status == 422
        async with Client(host.mcp_url) as client:
            result = await client.call_tool("create-customer-session", {"body": {"customer_id": "c-1"}})
            assert not result.is_error and result.structured_content is not None
        async with Client(host.mcp_url, mode="legacy") as client:
            result = await client.call_tool("create-customer-session", {"body": {"customer_id": "c-1"}})
            assert not result.is_error
    finally:
        assert host.stop() == 0
    assert "MOCK" in host.log()


def test_missing_secrets_are_startup_errors_naming_the_variable(tmp_path: Path) -> None:
    config = write_host_toml(tmp_path, "[consumes.tratta-customer-sessions]\nmock = false\n")
    result = run_cli("serve", "--config", str(config))
    assert result.returncode == 2
    assert "TRATTA_ORG_UUID" in result.stderr and "[consumes.tratta-customer-sessions]" in result.stderr

    result = run_cli("serve", "--config", str(config), env={"TRATTA_ORG_UUID": ORG_UUID})
    assert result.returncode == 2
    assert "TRATTA_API_KEY" in result.stderr

    result = run_cli(
        "serve", "--config", str(config), env={"TRATTA_ORG_UUID": "evil.com/x", "TRATTA_API_KEY": API_KEY}
    )
    assert result.returncode == 2
    assert "TRATTA_ORG_UUID" in result.stderr and API_KEY not in result.stderr

    result = run_cli(
        "serve",
        "--config",
        str(config),
        env={"TRATTA_ORG_UUID": ORG_UUID, "TRATTA_API_KEY": API_KEY, "TRATTA_ENVIRONMENT": "staging"},
    )
    assert result.returncode == 2
    assert "production, sandbox" in result.stderr


def test_bad_config_names_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "host.toml"
    config.write_text('[server]\nrest_prot = 8080\n[consumes.tratta-customer-sessions]\ntimeout = "soon"\n')
    result = run_cli("serve", "--config", str(config))
    assert result.returncode == 2
    assert f"{config}: server.rest_prot: unknown key" in result.stderr
    assert "consumes.tratta-customer-sessions.timeout" in result.stderr
    config.write_text("[server\n")
    result = run_cli("serve", "--config", str(config))
    assert result.returncode == 2 and "not valid TOML" in result.stderr
    result = run_cli("serve", "--config", str(tmp_path / "missing.toml"))
    assert result.returncode == 2 and "no such file" in result.stderr


async def test_real_base_uri_is_built_from_environment(tmp_path: Path) -> None:
    # No base_uri override: the host renders Tratta's documented host from the environment.
    # Nothing listens there (the name does not resolve here), so the call fails cleanly.
    config = write_host_toml(tmp_path, "[consumes.tratta-customer-sessions]\ntimeout = 2\n")
    host = start_host_process(
        config,
        environment={"TRATTA_ORG_UUID": ORG_UUID, "TRATTA_API_KEY": API_KEY, "TRATTA_ENVIRONMENT": "sandbox"},
    )
    try:
        assert f"https://{ORG_UUID}.sandbox.tratta.io/api/v1" in host.log()
        async with (
            aiohttp.ClientSession() as session,
            session.post(host.rest_url + "/v1/customer-sessions", json={"customer_id": "c"}) as resp,
        ):
            assert resp.status in (502, 504)
            assert resp.headers["Content-Type"].startswith("application/problem+json")
            assert API_KEY not in await resp.text()
    finally:
        assert host.stop() == 0
    assert API_KEY not in host.log()


async def test_unreachable_upstream_is_502(tmp_path: Path) -> None:
    closed = free_port()
    config = write_host_toml(
        tmp_path,
        f"""
[consumes.tratta-customer-sessions]
base_uri = "http://127.0.0.1:{closed}/api/v1"
""",
    )
    host = start_host_process(config, environment={"TRATTA_API_KEY": API_KEY})
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(host.rest_url + "/v1/customer-sessions", json={"customer_id": "c"}) as resp,
        ):
            assert resp.status == 502
            problem = await resp.json(content_type=None)
            assert "unreachable" in problem["detail"]
        async with Client(host.mcp_url) as client:
            result = await client.call_tool("create-customer-session", {"body": {"customer_id": "c"}})
            assert result.is_error and "unreachable" in result.content[0].text  # type: ignore[union-attr]
    finally:
        assert host.stop() == 0


async def test_sigterm_finishes_requests_in_flight(tmp_path: Path, fake_tratta: FakeUpstream) -> None:
    config = write_host_toml(
        tmp_path,
        f"""
[consumes.tratta-customer-sessions]
base_uri = "{tratta_base_uri(fake_tratta)}"
timeout = 10
""",
        shutdown_grace=10,
    )
    host = start_host_process(config, environment={"TRATTA_API_KEY": API_KEY})
    async with aiohttp.ClientSession() as session:

        async def slow_call() -> int:
            async with session.post(
                host.rest_url + "/v1/customer-sessions", json={"customer_id": "slow"}
            ) as resp:
                await resp.read()
                return resp.status

        before = len(calls_for(fake_tratta, "slow"))
        in_flight = asyncio.create_task(slow_call())
        deadline = time.monotonic() + 5
        # The fake runs in another thread: poll its record until the call has arrived.
        while len(calls_for(fake_tratta, "slow")) == before and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        assert len(calls_for(fake_tratta, "slow")) == before + 1
        host.terminate()
        await asyncio.sleep(0.5)
        # New connections are refused while the in-flight call finishes.
        try:
            async with (
                aiohttp.ClientSession() as fresh,
                fresh.get(host.rest_url + "/", timeout=aiohttp.ClientTimeout(total=2)),
            ):
                refused = False
        except aiohttp.ClientError:
            refused = True
        assert refused
        assert await asyncio.wait_for(in_flight, 15) == 201
    assert await asyncio.to_thread(host.process.wait, 15) == 0


def test_python_dash_m_and_console_script_agree() -> None:
    result = run_cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    [tratta] = [p for p in listing["plugins"] if p["name"] == "tratta-customer-sessions"]
    assert tratta["version"] == "0.1.0" and tratta["dist"] == "host-tratta-customer-sessions"
    assert tratta["contributes"] == {
        "consumes": ["tratta-customer-sessions"],
        "rest": ["POST /v1/customer-sessions"],
        "mcp_tools": ["create-customer-session"],
        "capability_files": [],
    }
    assert tratta["error"] is None
