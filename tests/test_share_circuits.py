"""Issue 14, item 1: `[state] share_circuits = true` keeps each upstream's circuit in a real Redis.

One process's open circuit is open for every process; when it turns half-open exactly one call of the
whole fleet probes the upstream; when the store stops, each process falls back to its own breaker and
keeps serving. Redis runs on a free loopback port (tests/redis_kit.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from host.config import load_config
from host.errors import StartupError
from host.resilience import CircuitBreaker
from host.state import SharedCircuit, SharedStore
from host.testing import FakeUpstream, HostServer, start_host_process, stop_hosts, write_host_toml
from tests.conftest import API_KEY, calls_for, tratta_base_uri
from tests.redis_kit import RedisServer, running_redis
from tests.test_state import post

NAMESPACE = "tratta-customer-sessions"
FAILURES, RESET = 3, 2.0  # circuit_failures, circuit_reset (s)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with running_redis(tmp_path) as server:
        yield server


def start_sharing_host(directory: Path, fake: FakeUpstream, redis: RedisServer) -> HostServer:
    directory.mkdir(exist_ok=True)
    config = write_host_toml(
        directory,
        '[state]\nbackend = "redis"\nshare_circuits = true\n\n'
        f'[consumes.{NAMESPACE}]\nbase_uri = "{tratta_base_uri(fake)}"\nretries = 0\n'
        f"circuit_failures = {FAILURES}\ncircuit_reset = {RESET}\n",
    )
    environment = {"TRATTA_API_KEY": API_KEY, "HOST_STATE_URL": redis.url}
    return start_host_process(config, environment=environment, wait=False)


@pytest.fixture
def two_hosts(
    tmp_path: Path, fake_tratta: FakeUpstream, redis_server: RedisServer
) -> Iterator[list[HostServer]]:
    hosts = [start_sharing_host(tmp_path / name, fake_tratta, redis_server) for name in ("a", "b")]
    try:
        for host in hosts:
            host.wait_until_listening(90)
        yield hosts
    finally:
        codes = stop_hosts(hosts)
        assert codes == [0, 0], [host.log() for host in hosts]


async def readiness(session: aiohttp.ClientSession, host: HostServer) -> tuple[int, dict[str, object]]:
    async with session.get(host.rest_url + "/readyz") as resp:
        return resp.status, await resp.json()


async def test_one_host_opens_the_circuit_for_both_and_one_probe_goes_through(
    two_hosts: list[HostServer], fake_tratta: FakeUpstream
) -> None:
    a, b = two_hosts
    async with aiohttp.ClientSession() as session:
        assert [(await post(session, a, "status-500"))[0] for _ in range(FAILURES)] == [502] * FAILURES
        # B never saw a failure, yet refuses without calling the upstream.
        status, retry_after = await post(session, b, "refused-by-b")
        assert status == 503 and retry_after is not None and 1 <= int(retry_after) <= RESET
        assert calls_for(fake_tratta, "refused-by-b") == []
        assert (await readiness(session, b))[1]["upstreams"] == {NAMESPACE: "open-circuit"}

        await asyncio.sleep(RESET + 0.2)  # half-open: the next call probes, for the whole fleet
        # "slow" answers 201 after 5 s: the probe is still in flight while the other calls arrive.
        slow_before = len(calls_for(fake_tratta, "slow"))  # the fake is the session's: other tests' too
        probes = [post(session, host, "slow") for host in (a, b, a, b, a, b)]
        answers = await asyncio.gather(*probes)
        assert sorted(status for status, _ in answers) == [201] + [503] * 5, answers
        assert len(calls_for(fake_tratta, "slow")) - slow_before == 1

        # The probe succeeded: closed again for both.
        assert (await post(session, b, "closed-again-b"))[0] == 201
        assert (await post(session, a, "closed-again-a"))[0] == 201
        assert (await readiness(session, a))[1]["upstreams"] == {NAMESPACE: "ok"}


async def test_a_stopped_store_leaves_each_host_its_own_circuit(
    two_hosts: list[HostServer], fake_tratta: FakeUpstream, redis_server: RedisServer
) -> None:
    a, b = two_hosts
    async with aiohttp.ClientSession() as session:
        assert [(await post(session, host, f"before-{n}"))[0] for n, host in enumerate((a, b))] == [201, 201]
        redis_server.stop()
        assert [(await post(session, host, f"during-{n}"))[0] for n, host in enumerate((a, b, a, b))] == [
            201
        ] * 4
        # A's failures now open A's circuit only: B keeps serving.
        assert [(await post(session, a, "status-500"))[0] for _ in range(FAILURES)] == [502] * FAILURES
        assert (await post(session, a, "refused-by-a"))[0] == 503
        assert (await post(session, b, "served-by-b"))[0] == 201
        status, ready = await readiness(session, b)
        async with session.get(a.rest_url + "/metrics") as resp:
            metrics = await resp.text()
    assert calls_for(fake_tratta, "refused-by-a") == [] and len(calls_for(fake_tratta, "served-by-b")) == 1
    assert status == 200 and ready["state"] == {
        "backend": "redis",
        "store": "unreachable",
        "fallback": "per-process rate limits, 1/1 of each rate_limit",
        "circuits": "per-process while the store is unreachable",
    }
    assert f'host_state_circuit_fallback_total{{namespace="{NAMESPACE}"}} 6.0' in metrics
    assert "host_state_store_up 0.0" in metrics
    log = a.log()
    assert log.count("state store unreachable") == 1 and "circuits to per-process breakers" in log
    assert redis_server.url not in log


# -- the shared circuit itself, two stores standing for two processes -----------------------------------


@pytest.fixture
async def circuits(redis_server: RedisServer) -> AsyncIterator[list[SharedCircuit]]:
    stores = [SharedStore(redis_server.url, 1, share_circuits=True, probe_lease=5) for _ in range(2)]
    yield [SharedCircuit(store, "items", CircuitBreaker(2, 0.3)) for store in stores]
    for store in stores:
        await store.close()


async def test_exactly_one_probe_among_many_concurrent_calls(circuits: list[SharedCircuit]) -> None:
    a, b = circuits
    for _ in range(2):
        assert await a.enter() == (0.0, None)
        await a.settle(ok=False)
    wait, probe = await b.enter()
    assert wait >= 1 and probe is None and b.is_open
    await asyncio.sleep(0.35)
    admitted = await asyncio.gather(*(circuit.enter() for circuit in (a, b) * 10))
    probes = [
        (circuit, probe) for circuit, (wait, probe) in zip((a, b) * 10, admitted, strict=True) if not wait
    ]
    assert len(probes) == 1 and probes[0][1] is not None
    owner, number = probes[0]
    other = b if owner is a else a

    owner.release(number)  # the probe ended without a result: the lease is freed for the next call
    await asyncio.sleep(0.05)  # the release is sent in the background (it runs in a finally)
    wait, next_probe = await other.enter()
    assert wait == 0 and next_probe is not None
    owner.release(number)  # a stale release frees nothing
    await asyncio.sleep(0.05)
    assert (await owner.enter())[0] > 0

    await other.settle(ok=True)  # the probe succeeded: closed for both
    assert await owner.enter() == (0.0, None) and await other.enter() == (0.0, None)
    assert not owner.is_open and not other.is_open


async def test_a_failed_probe_opens_the_circuit_again_for_everyone(circuits: list[SharedCircuit]) -> None:
    a, b = circuits
    for _ in range(2):
        await a.enter()
        await a.settle(ok=False)
    await asyncio.sleep(0.35)
    wait, probe = await b.enter()
    assert wait == 0 and probe is not None
    await b.settle(ok=False)
    assert (await a.enter())[0] > 0 and a.is_open


async def test_successes_cost_no_round_trip_while_nothing_failed(circuits: list[SharedCircuit]) -> None:
    a, _ = circuits
    calls = 0
    run = a.store.run

    async def counted(*args: object) -> object:
        nonlocal calls
        calls += 1
        return await run(*args)  # type: ignore[arg-type]

    a.store.run = counted  # type: ignore[method-assign]
    for _ in range(5):
        assert await a.enter() == (0.0, None)
        await a.settle(ok=True)
    assert calls == 5  # one admission each; no reset for a count that is 0


def test_share_circuits_needs_the_redis_backend(tmp_path: Path) -> None:
    config = write_host_toml(tmp_path, "[state]\nshare_circuits = true\n")
    with pytest.raises(StartupError, match='share_circuits = true needs backend = "redis"'):
        load_config(config)
