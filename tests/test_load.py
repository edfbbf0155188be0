"""Bounded load against REST and MCP, and SIGTERM in the middle of it: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from host.testing import FakeUpstream, HostServer, start_host_process, write_host_toml
from tests.conftest import API_KEY, customer_of, tratta_base_uri

CONCURRENCY = 200
REST_REQUESTS = 6000
MCP_REQUESTS = 3000
DEADLINE = 40.0  # seconds for the whole burst, whichever comes first
MCP_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json",
    "MCP-Protocol-Version": "2025-11-25",
}


@pytest.fixture(scope="module")
def load_host(fake_tratta: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostServer]:
    directory = tmp_path_factory.mktemp("load")
    config = write_host_toml(
        directory,
        f"""
[consumes.tratta-customer-sessions]
base_uri = "{tratta_base_uri(fake_tratta)}"
timeout = 20
pool_size = 100
[limits]
max_concurrent_per_client = 150
"""
        + '[logging]\nlevel = "WARNING"',
    )
    host = start_host_process(config, environment={"TRATTA_API_KEY": API_KEY})
    yield host
    assert host.stop() == 0, host.log()


def mcp_body(customer: str, request_id: int) -> bytes:
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "tools/call",
            "params": {"name": "create-customer-session", "arguments": {"body": {"customer_id": customer}}},
        }
    ).encode()


async def burst(
    host: HostServer, prefix: str, rest: int, mcp: int, deadline: float
) -> dict[str, tuple[str, int]]:
    """Send with CONCURRENCY workers; return each id's (kind, status), -1 for a transport error."""
    jobs = [("rest", f"{prefix}-r{i}") for i in range(rest)] + [("mcp", f"{prefix}-m{i}") for i in range(mcp)]
    jobs.sort(key=lambda job: hash(job[1]))  # interleave both adapters
    queue = iter(jobs)
    results: dict[str, tuple[str, int]] = {}
    stop_at = time.monotonic() + deadline
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def worker() -> None:
            for kind, customer in queue:
                if time.monotonic() > stop_at:
                    return
                try:
                    if kind == "rest":
                        async with session.post(
                            host.rest_url + "/v1/customer-sessions", json={"customer_id": customer}
                        ) as resp:
                            await resp.read()
                            results[customer] = (kind, resp.status)
                    else:
                        async with session.post(
                            host.mcp_url, data=mcp_body(customer, 1), headers=MCP_HEADERS
                        ) as resp:
                            payload = await resp.json(content_type=None)
                            ok = resp.status == 200 and not payload.get("result", {}).get("isError", True)
                            results[customer] = (
                                kind,
                                201 if ok else resp.status if resp.status != 200 else 500,
                            )
                except (aiohttp.ClientError, TimeoutError):
                    results[customer] = (kind, -1)

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return results


async def test_burst_every_request_answered_once_and_upstream_called_once(
    load_host: HostServer, fake_tratta: FakeUpstream
) -> None:
    started = time.monotonic()
    results = await burst(load_host, "burst", REST_REQUESTS, MCP_REQUESTS, DEADLINE)
    elapsed = time.monotonic() - started
    statuses = collections.Counter(status for _, status in results.values())
    print(f"\n{len(results)} requests in {elapsed:.1f} s ({len(results) / elapsed:.0f}/s): {dict(statuses)}")
    assert len(results) >= 1000  # the deadline must not have cut the burst to nothing
    upstream = collections.Counter(
        customer
        for r in fake_tratta.requests
        if (customer := customer_of(r)) and customer.startswith("burst-")
    )
    for customer, (kind, status) in results.items():
        if status == 201:
            assert upstream[customer] == 1, (customer, kind)  # accepted: exactly one upstream call
        else:
            assert status in (429, 503), (customer, kind, status)  # only the configured limits
            assert upstream[customer] == 0, (customer, kind)
    assert set(upstream) <= set(results)
    assert statuses[201] >= 0.9 * len(results)


async def test_sigterm_under_load_loses_nothing(fake_tratta: FakeUpstream, tmp_path: Path) -> None:
    config = write_host_toml(
        tmp_path,
        f"""
[consumes.tratta-customer-sessions]
base_uri = "{tratta_base_uri(fake_tratta)}"
timeout = 20
"""
        + '[logging]\nlevel = "WARNING"',
        shutdown_grace=10,
    )
    host = start_host_process(config, environment={"TRATTA_API_KEY": API_KEY})
    task = asyncio.create_task(burst(host, "drain", 4000, 2000, 20.0))
    await asyncio.sleep(1.5)
    host.terminate()
    results = await task
    exit_code = await asyncio.to_thread(host.process.wait, 30)
    assert exit_code == 0, host.log()
    upstream = collections.Counter(
        customer
        for r in fake_tratta.requests
        if (customer := customer_of(r)) and customer.startswith("drain-")
    )
    statuses = collections.Counter(status for _, status in results.values())
    print(f"\nSIGTERM under load: {dict(statuses)}; upstream calls {sum(upstream.values())}")
    assert statuses[201] > 0 and statuses[-1] > 0  # some before, some refused after the signal
    for customer, count in upstream.items():
        assert count == 1
        assert results.get(customer, ("", 0))[1] == 201, (
            customer
        )  # reached upstream => its caller got the answer
    # No 5xx and no broken answer: refused connections after the signal, or the configured limits.
    assert set(statuses) <= {201, -1, 429, 503}
