"""`host check` and capability files from host.toml, as an operator uses them."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
from mcp import Client

from host.testing import FakeUpstream, start_host_process, write_host_toml
from tests.conftest import API_KEY, ORG_UUID, ROOT, calls_for, tratta_base_uri
from tests.test_serve_process import run_cli

TRATTA_FILE = (
    ROOT / "plugins/tratta_customer_sessions/tratta_customer_sessions/data/tratta-customer-sessions.yaml"
)


def test_check_reports_each_file_and_fails_on_an_unservable_one(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("naftiko: 1.0.0-alpha2\ncapability: [\n")
    result = run_cli("check", str(TRATTA_FILE), str(broken), "--json")
    assert result.returncode == 1
    reports = {Path(r["file"]).name: r for r in json.loads(result.stdout)}
    good = reports["tratta-customer-sessions.yaml"]
    assert set(good) >= {"file", "status", "warnings", "errors", "operations", "rest", "tools"}
    assert (good["status"], good["operations"], good["rest"], good["tools"]) == ("WARN", 1, 1, 1)
    assert any("TRATTA_API_KEY" in w for w in good["warnings"])  # needed to serve, absent here
    assert reports["broken.yaml"]["status"] == "ERROR"
    assert "not valid YAML" in reports["broken.yaml"]["errors"][0]

    result = run_cli("check", str(TRATTA_FILE), env={"TRATTA_API_KEY": API_KEY, "TRATTA_ORG_UUID": ORG_UUID})
    assert result.returncode == 0
    assert result.stdout.startswith("OK    ")


def test_check_config_reports_every_problem(tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text("""
naftiko: 1.0.0-alpha2
info: {label: Other, description: Other}
capability:
  consumes:
  - type: http
    namespace: other-api
    baseUri: https://api.other.example
    authentication: {type: bearer, token: '{{OTHER_TOKEN}}'}
    resources: [{name: r, path: /r, operations: [{name: op, method: GET}]}]
  exposes:
  - type: mcp
    namespace: other-mcp
    tools: [{name: other-op, description: d, call: other-api.op}]
""")
    config = write_host_toml(
        tmp_path,
        "[consumes.tratta-customer-sessions]\nmock = false\n"
        + f'[[capabilities]]\npath = "missing.yaml"\n[[capabilities]]\npath = "{other}"\n'
        '[[auth.keys]]\nname = "ci"\nenv = "HOST_KEY_CI"\n',
    )
    result = run_cli("check", "--config", str(config))
    assert result.returncode == 1
    assert "missing.yaml" in result.stdout and "cannot read the file" in result.stdout
    assert "TRATTA_ORG_UUID" in result.stdout  # the plugin's namespace
    assert "OTHER_TOKEN" in result.stdout  # the file's namespace, reported too
    assert "HOST_KEY_CI" in result.stdout  # and the inbound key


def test_a_clash_between_a_file_and_a_plugin_names_both(tmp_path: Path) -> None:
    config = write_host_toml(
        tmp_path,
        "[consumes.tratta-customer-sessions]\nmock = true\n" + f'[[capabilities]]\npath = "{TRATTA_FILE}"\n',
    )
    result = run_cli("serve", "--config", str(config))
    assert result.returncode == 2
    assert "plugin 'tratta-customer-sessions'" in result.stderr and "capability file" in result.stderr


async def test_tratta_file_served_verbatim_without_the_plugin(
    tmp_path: Path, fake_tratta: FakeUpstream
) -> None:
    config = write_host_toml(
        tmp_path,
        f'[consumes.tratta-customer-sessions]\nbase_uri = "{tratta_base_uri(fake_tratta)}"\n'
        + f'[[capabilities]]\npath = "{TRATTA_FILE}"\n',
    )
    host = start_host_process(config, plugins=(), environment={"TRATTA_API_KEY": API_KEY})
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                host.rest_url + "/v1/customer-sessions", json={"customer_id": "verbatim-rest"}
            ) as resp,
        ):
            assert resp.status == 201
            assert (await resp.json())["data"][
                "id"
            ] == "sess-1"  # output {object, mapping: $.}: the whole document
        async with Client(host.mcp_url) as client:
            result = await client.call_tool(
                "create-customer-session", {"body": {"customer_id": "verbatim-mcp"}}
            )
            assert not result.is_error and result.structured_content == {
                "data": {
                    "id": "sess-1",
                    "portal_url": "https://portal.example/login/verbatim-mcp-SECRETLINK",
                    "return_url": None,
                    "expiration": "2026-12-01T00:00:00Z",
                }
            }
            missing = await client.call_tool("create-customer-session", {})
            assert missing.is_error and "body: is required" in missing.content[0].text  # type: ignore[union-attr]
    finally:
        assert host.stop() == 0
    for customer in ("verbatim-rest", "verbatim-mcp"):
        [call] = calls_for(fake_tratta, customer)
        assert call.method == "POST"
        assert call.path == "/api/v1/customer_sessions"  # the file's own path, served as written
        assert call.headers["Authorization"] == f"Bearer {API_KEY}"
        assert call.json() == {"customer_id": customer}
    assert API_KEY not in host.log() and "SECRETLINK" not in host.log()


def test_tratta_file_renders_the_org_uuid_into_the_host(tmp_path: Path) -> None:
    config = write_host_toml(tmp_path, f'[[capabilities]]\npath = "{TRATTA_FILE}"\n')
    env = {"TRATTA_API_KEY": API_KEY, "HOST_LOAD_PLUGINS": ""}
    result = run_cli("serve", "--config", str(config), env=env)
    assert result.returncode == 2 and "TRATTA_ORG_UUID" in result.stderr
    host = start_host_process(
        config, plugins=(), environment={"TRATTA_API_KEY": API_KEY, "TRATTA_ORG_UUID": ORG_UUID}
    )
    assert host.stop() == 0
    assert f"upstream https://{ORG_UUID}.production.tratta.io/api/v1" in host.log()


async def test_stdio_transport_serves_the_file(tmp_path: Path) -> None:
    from mcp import StdioServerParameters

    capability = tmp_path / "static.yaml"
    capability.write_text("""
naftiko: 1.0.0-alpha2
info: {label: Static, description: A static capability}
capability:
  exposes:
  - type: mcp
    namespace: static-mcp
    transport: stdio
    tools:
    - name: hello
      description: Say hello.
      outputParameters:
      - {type: object, value: {greeting: hello}}
""")
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRATTA_", "HOST_"))}
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "host", "serve", "--stdio", str(capability)],
        env=env,
        cwd=str(ROOT),
    )
    for mode in ("auto", "legacy"):
        async with Client(params, mode=mode) as client:  # type: ignore[arg-type]
            tools = await client.list_tools()
            assert [tool.name for tool in tools.tools] == ["hello"]
            result = await client.call_tool("hello", {})
            assert not result.is_error and result.structured_content == {"greeting": "hello"}
