"""Issue 14, item 3: no orphan workers; SIGHUP reloads `host serve --workers N` and loses no call."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp

from host.testing import FakeUpstream, HostServer, start_host_process, write_host_toml
from tests.conftest import API_KEY, tratta_base_uri

CAPABILITY = """\
naftiko: 1.0.0-alpha2
info: {label: Orders, description: Orders added by a reload}
capability:
  consumes:
    - type: http
      namespace: orders-api
      baseUri: https://orders.example.com
      resources:
        - name: orders
          path: /orders
          operations:
            - {name: list-orders, method: GET}
  exposes:
    - type: mcp
      namespace: orders-mcp
      port: 9091
      tools:
        - {name: list-orders, description: List the orders, call: orders-api.list-orders}
"""


def tratta_body(fake: FakeUpstream) -> str:
    return f'[consumes.tratta-customer-sessions]\nbase_uri = "{tratta_base_uri(fake)}"\n'


def start_workers(tmp_path: Path, fake: FakeUpstream, workers: int = 2) -> HostServer:
    config = write_host_toml(tmp_path, tratta_body(fake), shutdown_grace=5)
    # Generous: a supervisor checks the config, then starts every worker (slow on a loaded 2-core box).
    host = start_host_process(
        config, environment={"TRATTA_API_KEY": API_KEY}, args=("--workers", str(workers)), timeout=90
    )
    wait_for(lambda: host.log().count("MCP listening") >= workers, 90, host)
    return host


def wait_for(condition: Any, timeout: float, host: HostServer) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout:g} s; the host's log:\n{host.log()}")


def worker_pids(log: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"worker \d+ started \(pid (\d+)\)", log)]


def running(pid: int) -> bool:
    """The process exists and is not a zombie (an orphan's zombie is reaped by whoever adopted it)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


async def call(session: aiohttp.ClientSession, host: HostServer, customer: str) -> int:
    async with session.post(host.rest_url + "/v1/customer-sessions", json={"customer_id": customer}) as resp:
        await resp.read()
        return resp.status


async def tool_names(host: HostServer) -> list[str]:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(host.mcp_url, json=body, headers={"Accept": "application/json"}) as resp,
    ):
        assert resp.status == 200
        answer = await resp.json(content_type=None)
    return [tool["name"] for tool in answer["result"]["tools"]]


def test_workers_exit_when_the_supervisor_is_killed(tmp_path: Path, fake_tratta: FakeUpstream) -> None:
    host = start_workers(tmp_path, fake_tratta)
    pids = worker_pids(host.log())
    assert len(pids) == 2 and all(running(pid) for pid in pids)
    host.process.kill()  # SIGKILL: the supervisor gets no chance to forward anything
    host.process.wait(10)
    try:
        # The workers drain as on SIGTERM: within drain_delay (0) + shutdown_grace (5) + exit.
        wait_for(lambda: not any(running(pid) for pid in pids), 15, host)
    finally:
        for pid in pids:
            if running(pid):
                os.kill(pid, signal.SIGKILL)
    assert "the supervisor is gone; draining and exiting" in host.log()


async def test_sighup_with_a_bad_config_keeps_the_old_workers(
    tmp_path: Path, fake_tratta: FakeUpstream
) -> None:
    host = start_workers(tmp_path, fake_tratta)
    try:
        pids = worker_pids(host.log())
        good = host.config_path.read_text()
        host.config_path.write_text(good + "\n[consumes.tratta-customer-sessions]\nretries = -3\n")
        host.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload refused" in host.log(), 60, host)
        assert host.process.poll() is None
        assert worker_pids(host.log()) == pids and all(running(pid) for pid in pids)
        async with aiohttp.ClientSession() as session:
            assert [await call(session, host, f"after-bad-{n}") for n in range(4)] == [201] * 4
        assert "host: error:" in host.log()  # the refusal says why
    finally:
        code = host.stop(timeout=30)
    assert code == 0, host.log()


async def test_sighup_adding_a_capability_file_loses_no_call(
    tmp_path: Path, fake_tratta: FakeUpstream
) -> None:
    orders = FakeUpstream()
    orders.start()
    orders.route("GET", "/orders", json={"orders": []})
    host = start_workers(tmp_path, fake_tratta)
    statuses: list[int | str] = []
    stop = asyncio.Event()

    async def client_loop(name: str) -> None:
        async with aiohttp.ClientSession() as session:
            for n in range(2000):  # bounded; stopped long before by the test
                if stop.is_set():
                    return
                try:
                    statuses.append(await call(session, host, f"reload-{name}-{n}"))
                except aiohttp.ClientError as exc:
                    statuses.append(repr(exc))
                await asyncio.sleep(0.01)

    loops = [asyncio.create_task(client_loop(name)) for name in ("a", "b")]
    try:
        await asyncio.sleep(0.5)
        assert "list-orders" not in " ".join(await tool_names(host))
        old_pids = worker_pids(host.log())
        (tmp_path / "orders.yml").write_text(CAPABILITY)
        host.config_path.write_text(
            host.config_path.read_text()
            + f'\n[consumes.orders-api]\nbase_uri = "{orders.url}"\n\n[[capabilities]]\npath = "orders.yml"\n'
        )
        host.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "reloaded;" not in host.log():  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        assert "reloaded;" in host.log(), host.log()
        # Every old worker drains and exits; the new ones answer with the new tool.
        while time.monotonic() < deadline and any(running(pid) for pid in old_pids):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        assert not any(running(pid) for pid in old_pids), host.log()
        for _ in range(10):  # new connections: every new worker lists the new tool
            assert any("list-orders" in name for name in await tool_names(host))
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        await asyncio.gather(*loops)
        code = host.stop(timeout=30)
        orders.stop()
    failed = [status for status in statuses if status != 201]
    assert len(statuses) > 50 and not failed, (len(statuses), failed[:5])
    assert code == 0, host.log()


async def test_single_process_refuses_sighup_and_keeps_serving(
    tmp_path: Path, fake_tratta: FakeUpstream
) -> None:
    config = write_host_toml(tmp_path, tratta_body(fake_tratta))
    host = start_host_process(config, environment={"TRATTA_API_KEY": API_KEY})
    try:
        host.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "SIGHUP ignored" in host.log(), 10, host)
        async with aiohttp.ClientSession() as session:
            assert await call(session, host, "after-hup") == 201
        assert host.process.poll() is None
    finally:
        code = host.stop()
    assert code == 0, host.log()
