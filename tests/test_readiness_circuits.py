"""Readiness never waits for a probe that only traffic can make.

/readyz fails while every real upstream's circuit is open. An open circuit closes only after a
successful probe call, and a pod that is not ready gets no calls: if readiness stayed failed once the
cool-down had passed, every pod whose circuits opened together would stay out of the Service for good.
So a circuit whose cool-down has passed (its next call is the probe) counts as ready again.
"""

from __future__ import annotations

import asyncio

from host.resilience import CircuitBreaker
from host.testing import FakeUpstream, serve_in_process

RESET = 0.3  # circuit_reset, seconds


def test_a_circuit_refuses_only_until_its_cool_down_has_passed() -> None:
    breaker = CircuitBreaker(threshold=1, reset_after=0.05)
    assert not breaker.refusing
    breaker.record(False)
    assert breaker.is_open and breaker.refusing
    breaker.opened_at = (breaker.opened_at or 0.0) - 0.06  # the cool-down has passed
    assert breaker.is_open and not breaker.refusing
    assert breaker.admit() == 0.0  # the probe is let through...
    assert breaker.refusing  # ...and, while it runs, the circuit refuses the others


async def test_readyz_recovers_when_the_probe_is_due_and_the_probe_closes_the_circuit() -> None:
    with FakeUpstream() as fake:
        fake.route("POST", "/api/v1/customer-sessions", status=503, json={"error": "down"})
        config = {
            "consumes": {
                "tratta-customer-sessions": {
                    "base_uri": fake.url + "/api/v1",
                    "circuit_failures": 1,
                    "circuit_reset": RESET,
                    "retries": 0,
                }
            },
            "plugins": {"load": ["tratta-customer-sessions"]},
        }
        async with serve_in_process(config, {"TRATTA_API_KEY": "k" * 20}) as host:
            failed = await host.rest.post("/v1/customer-sessions", json={"customer_id": "c-1"})
            assert failed.status >= 500
            assert (await host.rest.get("/readyz")).status == 503  # open: the upstream is down

            await asyncio.sleep(RESET + 0.1)
            ready = await host.rest.get("/readyz")
            assert ready.status == 200, await ready.text()  # the probe is due: let traffic in

            fake.route("POST", "/api/v1/customer-sessions", status=201, json={"data": {"id": "s"}})
            probe = await host.rest.post("/v1/customer-sessions", json={"customer_id": "c-2"})
            assert probe.status == 201
            body = await (await host.rest.get("/readyz")).json()
            assert body["upstreams"]["tratta-customer-sessions"] == "ok"
