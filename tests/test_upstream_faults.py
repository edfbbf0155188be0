"""Upstream faults the caller must see clearly: a busy pool, redirects, and the upstream's headers.

Regression tests for issue 10 #11 (waiting for a pooled connection counted as upstream time and as
an upstream failure: 504s for calls the upstream completed, and an open circuit) and #13 (an
upstream 3xx was an empty success over MCP, and REST passed the upstream's ``Location`` through).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from host import ConsumedApi, ConsumedOperation, hookimpl
from host.config import ConsumeConfig, HostConfig
from host.engine import Engine
from host.errors import HostBusy, Unavailable, UpstreamBadStatus
from host.plugins import load_catalog
from host.testing import FakeUpstream


class _Plugin:
    @hookimpl
    def host_register_consumes(self, register: Any) -> None:
        register(
            ConsumedApi(
                "slow",
                "https://slow.invalid",
                (
                    ConsumedOperation("create", "POST", "/things", body="body"),
                    ConsumedOperation("get", "GET", "/things/{id}"),
                ),
            )
        )


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
async def engine_for(upstream: FakeUpstream) -> AsyncIterator[Any]:
    engines: list[Engine] = []

    async def make(**settings: Any) -> Engine:
        catalog = load_catalog(extra_plugins=[("slow", _Plugin())], discover=False, environ={})
        consume = ConsumeConfig(base_uri=upstream.url, retries=0, **settings)
        engine = Engine.from_catalog(catalog, HostConfig(consumes={"slow": consume}), {})
        await engine.start()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.close()


async def test_waiting_for_a_pooled_connection_is_not_upstream_time(
    upstream: FakeUpstream, engine_for: Any
) -> None:
    # Six calls, two connections, an upstream that takes 0.6 s: the last pair waits 1.2 s for a
    # connection, longer than the 1 s upstream timeout, yet each call's upstream time is 0.6 s.
    upstream.route("POST", "/things", status=201, json={"ok": True}, delay=0.6)
    engine = await engine_for(pool_size=2, timeout=1.0, circuit_failures=2)
    calls = [engine.call("slow.create", {"body": {"n": n}}) for n in range(6)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert [getattr(r, "status", r) for r in results] == [201] * 6
    assert len(upstream.requests) == 6
    assert not engine.apis["slow"].breaker.is_open and engine.apis["slow"].breaker.failures == 0


async def test_a_pool_wait_past_its_bound_is_host_busy_and_never_opens_the_circuit(
    upstream: FakeUpstream, engine_for: Any
) -> None:
    upstream.route("POST", "/things", status=201, json={"ok": True}, delay=0.6)
    engine = await engine_for(pool_size=2, pool_timeout=0.2, circuit_failures=1)
    calls = [engine.call("slow.create", {"body": {"n": n}}) for n in range(6)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    busy = [r for r in results if isinstance(r, HostBusy)]
    assert len(busy) == 4 and all(getattr(r, "status", None) == 201 for r in results if r not in busy)
    first = busy[0]
    assert isinstance(first, Unavailable) and first.status == 503 and first.retry_after
    assert "host busy" in first.detail
    assert len(upstream.requests) == 2  # the refused calls never reached the upstream
    assert not engine.apis["slow"].breaker.is_open and engine.apis["slow"].breaker.failures == 0
    # The pool is whole again afterwards.
    assert (await engine.call("slow.create", {"body": {}})).status == 201


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_an_upstream_redirect_is_a_bad_gateway_naming_the_status(
    upstream: FakeUpstream, engine_for: Any, status: int
) -> None:
    upstream.route("GET", "/things/{id}", status=status, headers={"Location": "http://10.0.0.9/admin"})
    engine = await engine_for()
    with pytest.raises(UpstreamBadStatus) as failed:
        await engine.call("slow.get", {"id": "1"})
    assert failed.value.status == 502 and str(status) in failed.value.detail
    assert "10.0.0.9" not in failed.value.detail
    assert len(upstream.requests) == 1  # not followed


async def test_not_modified_is_still_an_answer(upstream: FakeUpstream, engine_for: Any) -> None:
    upstream.route("GET", "/things/{id}", status=304, body=b"", headers={"ETag": '"e-1"'})
    engine = await engine_for()
    response = await engine.call("slow.get", {"id": "1"})
    headers = {name.lower(): value for name, value in response.headers.items()}
    assert response.status == 304 and headers == {"etag": '"e-1"'}


async def test_only_declared_headers_of_the_upstream_reach_the_caller(
    upstream: FakeUpstream, engine_for: Any
) -> None:
    upstream.route(
        "POST",
        "/things",
        status=201,
        json={"ok": True},
        headers={
            "Location": "http://10.0.0.9/internal/things/1",
            "WWW-Authenticate": 'Bearer realm="upstream"',
            "Set-Cookie": "session=upstream",
            "Server": "internal/1.0",
            "Retry-After": "3",
            "ETag": '"v1"',
        },
    )
    engine = await engine_for()
    response = await engine.call("slow.create", {"body": {}})
    assert {name.lower() for name in response.headers} == {"retry-after", "etag"}
