"""Issue 14, items 1 and 2: `[state] backend = "redis"` makes rate limits global, against a real Redis.

redis-server (Debian's package; `.ci/run` installs it) runs on a free loopback port, without
persistence, and is stopped by its PID.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from host.testing import FakeUpstream, HostServer, start_host_process, stop_hosts, write_host_toml
from tests.conftest import API_KEY, tratta_base_uri
from tests.redis_kit import RedisServer, running_redis, start_redis
from tests.test_serve_process import run_cli


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with running_redis(tmp_path) as server:
        yield server


def start_shared_host(directory: Path, fake: FakeUpstream, redis: RedisServer, state: str = "") -> HostServer:
    directory.mkdir(exist_ok=True)
    config = write_host_toml(
        directory,
        f'[state]\nbackend = "redis"\n{state}\n'
        f'[consumes.tratta-customer-sessions]\nbase_uri = "{tratta_base_uri(fake)}"\nrate_limit = "20/min"\n',
    )
    environment = {"TRATTA_API_KEY": API_KEY, "HOST_STATE_URL": redis.url}
    return start_host_process(config, environment=environment, wait=False)


async def post(session: aiohttp.ClientSession, host: HostServer, customer: str) -> tuple[int, str | None]:
    async with session.post(host.rest_url + "/v1/customer-sessions", json={"customer_id": customer}) as resp:
        await resp.read()
        return resp.status, resp.headers.get("Retry-After")


def reached(fake: FakeUpstream, prefix: str) -> int:
    return sum(1 for request in fake.requests if prefix in request.text)


async def test_two_hosts_share_one_rate_limit(
    tmp_path: Path, fake_tratta: FakeUpstream, redis_server: RedisServer
) -> None:
    hosts = [start_shared_host(tmp_path / name, fake_tratta, redis_server) for name in ("a", "b")]
    try:
        for host in hosts:
            host.wait_until_listening(90)
        async with aiohttp.ClientSession() as session:
            answers = [await post(session, hosts[n % 2], f"shared-{n}") for n in range(30)]
    finally:
        codes = stop_hosts(hosts)
    statuses = [status for status, _ in answers]
    assert statuses.count(201) == 20 and statuses.count(429) == 10, statuses
    assert reached(fake_tratta, "shared-") == 20
    assert all(retry is not None and int(retry) >= 1 for status, retry in answers if status == 429)
    # Each host let some through: the limit is the fleet's, not one process's 20.
    assert {status for status, _ in answers[0::2]} >= {201} and {status for status, _ in answers[1::2]} >= {
        201
    }
    assert codes == [0, 0]


async def test_the_host_keeps_serving_when_redis_stops(
    tmp_path: Path, fake_tratta: FakeUpstream, redis_server: RedisServer
) -> None:
    # While the store is down each of the (declared) 4 processes may make 20 / 4 = 5 calls a minute.
    host = start_shared_host(tmp_path / "one", fake_tratta, redis_server, state="processes = 4\n")
    try:
        host.wait_until_listening(90)
        async with aiohttp.ClientSession() as session:
            assert [(await post(session, host, f"before-{n}"))[0] for n in range(3)] == [201] * 3
            async with session.get(host.rest_url + "/readyz") as resp:
                assert (await resp.json())["state"] == {"backend": "redis", "store": "reachable"}
            redis_server.stop()
            after = [await post(session, host, f"after-{n}") for n in range(7)]
            assert [status for status, _ in after] == [201] * 5 + [429] * 2
            async with session.get(host.rest_url + "/readyz") as resp:
                assert resp.status == 200  # a degradation, not an outage
                state = (await resp.json())["state"]
            async with session.get(host.rest_url + "/metrics") as resp:
                metrics = await resp.text()
    finally:
        code = host.stop()
    assert state["store"] == "unreachable" and "1/4" in state["fallback"]
    assert "host_state_store_up 0.0" in metrics
    assert 'host_state_fallback_total{namespace="tratta-customer-sessions"} 7.0' in metrics
    assert host.log().count("state store unreachable") == 1  # once a minute, not once a call
    assert redis_server.url not in host.log()
    assert code == 0


async def test_reads_the_store_again_when_it_comes_back(
    tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from host.state import SharedStore

    monkeypatch.setattr("host.state.RETRY_AFTER", 0.2)
    store = SharedStore(redis_server.url, processes=1)
    try:
        assert await store.hit("host:rate:t", 2, 60) == 0
        redis_server.stop()
        assert await store.hit("host:rate:t", 2, 60) is None
        assert store.describe()["store"] == "unreachable"
        again = start_redis(tmp_path, redis_server.port)  # the same address, as a restarted store
        try:
            await asyncio.sleep(0.3)
            assert await store.hit("host:rate:t", 2, 60) == 0
            assert store.describe() == {"backend": "redis", "store": "reachable"}
        finally:
            again.stop()
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (None, "needs the store's URL in HOST_STATE_URL"),
        (
            "http://user:s3cret-pw@127.0.0.1:1/0",
            "HOST_STATE_URL must start with redis://, rediss:// or unix://",
        ),
    ],
)
def test_a_redis_backend_needs_a_redis_url(tmp_path: Path, url: str | None, message: str) -> None:
    config = write_host_toml(tmp_path, '[state]\nbackend = "redis"\n')
    environment = {"HOST_LOAD_PLUGINS": ""} | ({} if url is None else {"HOST_STATE_URL": url})
    done = run_cli("serve", "--config", str(config), env=environment, timeout=120)
    assert done.returncode == 2 and message in done.stderr
    assert "s3cret-pw" not in done.stderr + done.stdout
