"""`host serve --workers N`: both ports served by every worker, restart on crash, drain on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path

import aiohttp

from host.testing import FakeUpstream, start_host_process, write_host_toml
from tests.conftest import API_KEY, tratta_base_uri


async def workers_seen(url: str, attempts: int = 80) -> set[str]:
    seen: set[str] = set()
    for _ in range(attempts):  # a new connection each time: the kernel picks a worker per connection
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session,
            session.get(url) as resp,
        ):
            assert resp.status == 200
            seen.add(resp.headers["X-Host-Worker"])
        if len(seen) == 2:
            break
    return seen


def worker_pids(log: str) -> dict[str, int]:
    return {number: int(pid) for number, pid in re.findall(r"worker (\d+) started \(pid (\d+)\)", log)}


async def test_two_workers_share_both_ports_restart_and_drain(
    tmp_path: Path, fake_tratta: FakeUpstream
) -> None:
    config = write_host_toml(
        tmp_path,
        f'[consumes.tratta-customer-sessions]\nbase_uri = "{tratta_base_uri(fake_tratta)}"\n',
        shutdown_grace=10,
    )
    host = start_host_process(config, environment={"TRATTA_API_KEY": API_KEY}, args=("--workers", "2"))
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and host.log().count("MCP listening") < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        assert await workers_seen(host.rest_url + "/healthz") == {"1", "2"}
        assert await workers_seen(f"http://127.0.0.1:{host.mcp_port}/healthz") == {"1", "2"}

        pids = worker_pids(host.log())
        assert set(pids) == {"1", "2"}
        os.kill(pids["1"], signal.SIGKILL)  # a crash
        deadline = time.monotonic() + 15
        # The supervisor is another process: poll its log until the restart shows.
        while time.monotonic() < deadline and len(re.findall(r"worker 1 started", host.log())) < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        assert "worker 1 (pid" in host.log() and "restarting" in host.log()
        while time.monotonic() < deadline + 15 and host.log().count("MCP listening") < 3:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        assert worker_pids(host.log())["1"] != pids["1"]
        assert await workers_seen(host.rest_url + "/healthz") == {"1", "2"}

        async with (
            aiohttp.ClientSession() as session,
            session.post(
                host.rest_url + "/v1/customer-sessions", json={"customer_id": "worker-call"}
            ) as resp,
        ):
            assert resp.status == 201
    finally:
        code = host.stop(timeout=30)
    assert code == 0, host.log()
    assert "all workers stopped" in host.log()


def test_bad_config_fails_once_in_the_supervisor(tmp_path: Path) -> None:
    from tests.test_serve_process import run_cli

    config = write_host_toml(tmp_path, "[consumes.tratta-customer-sessions]\nmock = false\n")
    result = run_cli("serve", "--config", str(config), "--workers", "2")
    assert result.returncode == 2 and "TRATTA_ORG_UUID" in result.stderr
    assert "worker 1 started" not in result.stderr
