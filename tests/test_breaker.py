"""The circuit breaker always recovers: its half-open probe slot is released whatever the probe met.

Regression tests for issue 10 #3: a probe refused by the rate limiter (429), a probe that raised an
unexpected error (a NUL byte in a header argument), or a probe cancelled by the request timeout left
the circuit open for good (503 and a failing /readyz until restart).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import pytest

from host import ConsumedApi, ConsumedOperation, InvalidArguments, hookimpl
from host.config import ConsumeConfig, HostConfig
from host.engine import Engine
from host.errors import TooManyRequests, Unavailable, UpstreamBadStatus
from host.model import OutboundRequest
from host.plugins import load_catalog
from host.resilience import CircuitBreaker
from host.testing import FakeUpstream

RESET = 0.2  # circuit_reset, seconds


def _traced(arguments: Mapping[str, Any], variables: Mapping[str, str]) -> OutboundRequest:
    """A request builder that sends a caller's argument as a header, as a capability file's does."""
    return OutboundRequest("GET", "/items", headers={"X-Trace": str(arguments.get("trace", "t"))})


class _Plugin:
    @hookimpl
    def host_register_consumes(self, register: Any) -> None:
        register(
            ConsumedApi(
                "items",
                "https://items.invalid",
                (
                    ConsumedOperation("list", "GET", "/items"),
                    ConsumedOperation("traced", "GET", "/items", request=_traced),
                ),
            )
        )


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream()
    fake.start()
    yield fake
    fake.stop()


def _engine(upstream: FakeUpstream, **settings: Any) -> Engine:
    catalog = load_catalog(extra_plugins=[("items", _Plugin())], discover=False, environ={})
    consume = ConsumeConfig(
        base_uri=upstream.url, circuit_failures=1, circuit_reset=RESET, retries=0, **settings
    )
    return Engine.from_catalog(catalog, HostConfig(consumes={"items": consume}), {})


@pytest.fixture
async def started() -> AsyncIterator[list[Engine]]:
    engines: list[Engine] = []
    yield engines
    for engine in engines:
        await engine.close()


async def _open_circuit(upstream: FakeUpstream, started: list[Engine], **settings: Any) -> Engine:
    """A started engine whose circuit one failure opened; the upstream answers 200 from then on."""
    engine = _engine(upstream, **settings)
    started.append(engine)
    await engine.start()
    upstream.route("GET", "/items", status=500, json={"error": "down"})
    with pytest.raises(UpstreamBadStatus):
        await engine.call("items.list", {})
    assert engine.apis["items"].breaker.is_open and not engine.healthy
    upstream.route("GET", "/items", json={"items": []})  # healthy from now on
    return engine


async def _recovers_within_reset_plus_one_call(engine: Engine) -> None:
    await asyncio.sleep(RESET + 0.05)
    response = await engine.call("items.list", {})
    assert response.status == 200
    assert not engine.apis["items"].breaker.is_open and engine.healthy  # /readyz is 200 again


async def test_a_probe_refused_by_the_rate_limit_releases_the_slot(
    upstream: FakeUpstream, started: list[Engine]
) -> None:
    engine = await _open_circuit(upstream, started, rate_limit="1/s")  # takes the only token
    await asyncio.sleep(RESET + 0.05)
    with pytest.raises(TooManyRequests):  # the probe meets an empty bucket
        await engine.call("items.list", {})
    await asyncio.sleep(1.0)  # the bucket refills
    await _recovers_within_reset_plus_one_call(engine)


async def test_a_probe_with_a_nul_byte_in_a_header_argument_releases_the_slot(
    upstream: FakeUpstream, started: list[Engine]
) -> None:
    engine = await _open_circuit(upstream, started)
    await asyncio.sleep(RESET + 0.05)
    with pytest.raises(InvalidArguments) as refused:
        await engine.call("items.traced", {"trace": "a\x00b"})
    assert "X-Trace" in refused.value.errors
    await _recovers_within_reset_plus_one_call(engine)


async def test_a_probe_cancelled_by_the_request_timeout_releases_the_slot(
    upstream: FakeUpstream, started: list[Engine]
) -> None:
    engine = await _open_circuit(upstream, started)
    upstream.route("GET", "/items", json={"items": []}, delay=1.0)
    await asyncio.sleep(RESET + 0.05)
    with pytest.raises(TimeoutError):  # what request_timeout does to the call
        await asyncio.wait_for(engine.call("items.list", {}), 0.1)
    upstream.route("GET", "/items", json={"items": []})
    await _recovers_within_reset_plus_one_call(engine)


async def test_while_the_probe_is_in_flight_other_calls_are_refused(
    upstream: FakeUpstream, started: list[Engine]
) -> None:
    engine = await _open_circuit(upstream, started)
    upstream.route("GET", "/items", json={"items": []}, delay=0.3)
    await asyncio.sleep(RESET + 0.05)
    probe = asyncio.create_task(engine.call("items.list", {}))
    await asyncio.sleep(0.05)
    with pytest.raises(Unavailable):
        await engine.call("items.list", {})
    assert (await probe).status == 200 and engine.healthy


def test_release_frees_only_the_probe_it_was_given() -> None:
    breaker = CircuitBreaker(1, 0.0)
    breaker.record(ok=False)
    assert breaker.admit() == 0.0
    first = breaker.probe
    assert first is not None and breaker.admit() > 0  # one probe at a time
    breaker.release(first)
    assert breaker.admit() == 0.0
    second = breaker.probe
    breaker.release(first)  # a stale release must not free the new probe's slot
    assert breaker.probe == second and breaker.admit() > 0
