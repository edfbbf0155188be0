"""State shared by every process of a fleet: ``[state]`` in host.toml, the store's URL in ``HOST_STATE_URL``.

``backend = "memory"`` (the default) keeps each rate limit in its process, as :mod:`host.resilience` does.
``backend = "redis"`` counts each consumed API's ``rate_limit`` in Redis (or Valkey), so the limit holds
across every worker and replica that share the store. The count is one atomic Lua script run by
redis-py's asyncio client (a sliding window log, on the server's clock, so replicas' clocks never
matter): exactly ``rate_limit`` calls in any window, never one more.

When the store cannot answer (down, unreachable, slower than ``STORE_TIMEOUT``), the host keeps
serving: each process falls back to its own token bucket of ``rate_limit / processes`` (``[state]
processes``, by default this host's workers), so the fleet together stays within the quota. A WARN is
logged once a minute while that lasts, ``host_state_store_up`` is 0, ``host_state_fallback_total``
counts the calls decided locally, and ``/readyz`` says so (it stays ready: an outage of the store is
a degradation, and taking every replica out of the load balancer would make it an outage). The store
is tried again every ``RETRY_AFTER`` seconds.

``[state] share_circuits = true`` keeps each consumed API's circuit in the store as well: consecutive
failures are counted for the fleet, so one process's open circuit is open for all, and the half-open
probe is a lease (``SET NX PX``) that exactly one call of the fleet holds. Both are Lua scripts, atomic
on the server. While the store cannot answer, each process falls back to its own breaker (the one it
would have without sharing, fed with its own calls all along), with the same WARN, ``/readyz`` report
and a metric of its own, ``host_state_circuit_fallback_total``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import math
import os
import time
from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter, Gauge

from host.config import HostConfig, parse_rate
from host.engine import Engine
from host.errors import StartupError
from host.observability import REGISTRY
from host.resilience import CircuitBreaker, TokenBucket

log = logging.getLogger("host.state")

STATE_URL_ENV = "HOST_STATE_URL"
STORE_SCHEMES = ("redis://", "rediss://", "unix://")
STORE_TIMEOUT = 0.5  # seconds a store call may take before the call is decided by the fallback
RETRY_AFTER = 5.0  # seconds on the fallback before the store is tried again
WARN_EVERY = 60.0

STORE_UP = Gauge(
    "host_state_store_up",
    "1 while the shared state store answers; 0 while rate limits run on the per-process fallback.",
    registry=REGISTRY,
    multiprocess_mode="livemin",
)
FALLBACKS = Counter(
    "host_state_fallback_total",
    "Rate-limit decisions made by the per-process fallback because the shared store did not answer.",
    ("namespace",),
    registry=REGISTRY,
)
CIRCUIT_FALLBACKS = Counter(
    "host_state_circuit_fallback_total",
    "Circuit admissions decided by the per-process breaker because the shared store did not answer.",
    ("namespace",),
    registry=REGISTRY,
)

# KEYS[1]: the limit's sorted set. ARGV: window (ms), limit, a unique member.
# Returns 0 when the call is granted, else the milliseconds until the oldest call leaves the window.
SLIDING_WINDOW = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local window, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""


# KEYS: the circuit's failures, open and probe keys. ARGV: threshold, a lease token, lease (ms).
# Returns {wait (ms, 0 when admitted), consecutive failures, 1 when this call is the half-open probe}.
CIRCUIT_ENTER = """
local failures = tonumber(redis.call('GET', KEYS[1]) or '0')
if failures < tonumber(ARGV[1]) then
  return {0, failures, 0}
end
local open = redis.call('PTTL', KEYS[2])
if open > 0 then
  return {open, failures, 0}
end
if redis.call('SET', KEYS[3], ARGV[2], 'NX', 'PX', ARGV[3]) then
  return {0, failures, 1}
end
return {1000, failures, 0}
"""

# KEYS as above. ARGV: 1 for a success, threshold, circuit_reset (ms), how long failures are kept (ms).
# A success closes the circuit; a failure counts, and (re)opens it from the threshold on. Returns 1 if open.
CIRCUIT_SETTLE = """
if ARGV[1] == '1' then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  return 0
end
local failures = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('DEL', KEYS[3])
if failures >= tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
  return 1
end
return 0
"""

# KEYS[1]: a probe lease; ARGV[1]: its token. Frees the lease only if it is still this probe's.
RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# A fleet's failure count is forgotten after a day without failures (keeps the store clean of old APIs).
FAILURES_KEPT_MS = 24 * 3600 * 1000


class SharedStore:
    """This process's connection to the shared store, and whether it answers."""

    def __init__(
        self, url: str, processes: int, *, share_circuits: bool = False, probe_lease: float = 61.0
    ) -> None:
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.processes, self.share_circuits, self.probe_lease = processes, share_circuits, probe_lease
        self.client: Any = redis.asyncio.Redis.from_url(
            url,
            socket_timeout=STORE_TIMEOUT,
            socket_connect_timeout=STORE_TIMEOUT,
            # One immediate retry, for a pooled connection the store closed (it restarted); not redis-py's
            # default of three with backoff, which would hold a call for seconds while the store is down.
            retry=Retry(NoBackoff(), 1),
        )
        self.script = self.client.register_script(SLIDING_WINDOW)
        self.enter_script = self.client.register_script(CIRCUIT_ENTER)
        self.settle_script = self.client.register_script(CIRCUIT_SETTLE)
        self.release_script = self.client.register_script(RELEASE_LEASE)
        self.reachable: bool | None = None  # None until the first call
        self.retry_at = 0.0
        self.warned_at = -math.inf
        self._members = itertools.count()
        self._prefix = f"{os.getpid()}-{time.time_ns()}-"

    def token(self) -> str:
        """A value no other call of the fleet uses (a sorted-set member, a lease's owner)."""
        return f"{self._prefix}{next(self._members)}"

    async def run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """The script's answer; ``None`` when the store did not answer (or is on its retry pause)."""
        if self.reachable is False and time.monotonic() < self.retry_at:
            return None
        from redis.exceptions import RedisError

        try:
            answer = await script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            self._down(exc)
            return None
        if self.reachable is not True:
            if self.reachable is False:
                log.warning("state store reachable again: %s shared again", self._uses())
            self.reachable = True
            STORE_UP.set(1)
        return answer

    async def hit(self, key: str, limit: int, window: float) -> float | None:
        """Count one call: 0 when granted, else seconds to wait; ``None`` when the store did not answer."""
        wait_ms = await self.run(self.script, [key], [int(window * 1000), limit, self.token()])
        return None if wait_ms is None else int(wait_ms) / 1000

    def _uses(self) -> str:
        return "rate limits and circuits are" if self.share_circuits else "rate limits are"

    def _down(self, exc: Exception) -> None:
        self.reachable, self.retry_at = False, time.monotonic() + RETRY_AFTER
        STORE_UP.set(0)
        now = time.monotonic()
        if now - self.warned_at >= WARN_EVERY:
            self.warned_at = now
            # The class only: a redis error's text may name the store's address.
            log.warning(
                "state store unreachable (%s): rate limits fall back to per-process buckets of 1/%d of "
                "each rate_limit%s; retrying every %g s",
                type(exc).__name__,
                self.processes,
                ", circuits to per-process breakers" if self.share_circuits else "",
                RETRY_AFTER,
            )

    def describe(self) -> dict[str, Any]:
        """For /readyz."""
        store = {None: "not used yet", True: "reachable", False: "unreachable"}[self.reachable]
        details: dict[str, Any] = {"backend": "redis", "store": store}
        if self.reachable is False:
            details["fallback"] = f"per-process rate limits, 1/{self.processes} of each rate_limit"
        if self.share_circuits:
            details["circuits"] = (
                "per-process while the store is unreachable" if self.reachable is False else "shared"
            )
        return details

    async def close(self) -> None:
        await self.client.aclose()


@dataclasses.dataclass
class SharedRateLimit:
    """One consumed API's ``rate_limit``, counted in the shared store; a per-process share when it is down."""

    store: SharedStore
    namespace: str
    limit: int
    window: float
    fallback: TokenBucket

    async def acquire(self) -> float:
        """0 when the call may go ahead, else seconds until it may."""
        wait = await self.store.hit(f"host:rate:{self.namespace}", self.limit, self.window)
        if wait is not None:
            return wait
        FALLBACKS.labels(self.namespace).inc()
        return self.fallback.take()


class SharedCircuit:
    """One consumed API's circuit, kept in the shared store; ``local`` decides while the store is down.

    ``local`` is the breaker this process would have without sharing. It records every call of this
    process all along, so on an outage it starts from what this process saw, not from nothing.
    """

    def __init__(self, store: SharedStore, namespace: str, local: CircuitBreaker) -> None:
        self.store, self.namespace, self.local = store, namespace, local
        # One hash tag ({namespace}) for the three keys: a Redis Cluster keeps them on one shard.
        self.keys = [f"host:circuit:{{{namespace}}}:{part}" for part in ("failures", "open", "probe")]
        # None while the store last said closed, else when this process saw the shared circuit open.
        self._opened_at: float | None = None
        self.failing = True  # the fleet's count may be above 0, so a success must reset it
        self._lease: tuple[int, str] | None = None  # this process's probe: its number and lease token
        self._leases = itertools.count(1)
        self._releasing: set[asyncio.Task[Any]] = set()

    @property
    def is_open(self) -> bool:
        return self.local.is_open if self.store.reachable is False else self._opened_at is not None

    @property
    def refusing(self) -> bool:
        if self.store.reachable is False:
            return self.local.refusing
        # The store keeps the fleet's cool-down; this process's view of it starts when it saw it open.
        opened_at = self._opened_at
        return opened_at is not None and time.monotonic() - opened_at < self.local.reset_after

    def _see(self, shared_open: bool) -> None:
        if not shared_open:
            self._opened_at = None
        elif self._opened_at is None:
            self._opened_at = time.monotonic()

    async def enter(self) -> tuple[float, int | None]:
        token = self.store.token()
        lease_ms = int(self.store.probe_lease * 1000)
        answer = await self.store.run(
            self.store.enter_script, self.keys, [self.local.threshold, token, lease_ms]
        )
        if answer is None:
            CIRCUIT_FALLBACKS.labels(self.namespace).inc()
            return await self.local.enter()
        wait_ms, failures, probing = (int(value) for value in answer)
        self.failing = failures > 0
        self._see(failures >= self.local.threshold)
        if wait_ms:
            return max(1.0, math.ceil(wait_ms / 1000)), None
        if not probing:
            return 0.0, None
        # Negative numbers: never equal to one of the local breaker's probes.
        probe = -next(self._leases)
        self._lease = (probe, token)
        return 0.0, probe

    def release(self, probe: int | None) -> None:
        lease = self._lease
        if lease is None or probe != lease[0]:
            self.local.release(probe)
            return
        self._lease = None
        # Not awaited (this runs in a finally, maybe of a cancelled call); the lease expires anyway.
        task = asyncio.ensure_future(self.store.run(self.store.release_script, self.keys[2:], [lease[1]]))
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    async def settle(self, ok: bool) -> None:
        self.local.record(ok)
        probed, self._lease = self._lease is not None, None
        if ok and not self.failing and not probed:
            return  # the hot path: nothing to reset, no round trip
        reset_ms = int(self.local.reset_after * 1000)
        opened = await self.store.run(
            self.store.settle_script,
            self.keys,
            [1 if ok else 0, self.local.threshold, reset_ms, FAILURES_KEPT_MS],
        )
        if opened is not None:
            self._see(bool(opened))
            self.failing = not ok


def open_store(config: HostConfig, environ: Mapping[str, str]) -> SharedStore | None:
    """The store `[state]` asks for (`None` for the memory backend); nothing is connected yet."""
    state = config.state
    if state.backend == "memory":
        return None
    url = environ.get(STATE_URL_ENV, "")
    if not url:
        raise StartupError(f'[state] backend = "redis" needs the store\'s URL in {STATE_URL_ENV}')
    if not url.startswith(STORE_SCHEMES):
        # Never echo the URL: it may carry a password.
        raise StartupError(f"{STATE_URL_ENV} must start with redis://, rediss:// or unix://")
    try:
        return SharedStore(
            url,
            state.processes or config.server.workers,
            share_circuits=state.share_circuits,
            # A probe ends within the request's timeout (then it is cancelled and releases its lease);
            # the lease outlives it, so it only expires for a process that died mid-probe.
            probe_lease=config.limits.request_timeout + 1,
        )
    except ValueError:
        raise StartupError(f"{STATE_URL_ENV} is not a valid Redis URL") from None


def share_state(engine: Engine, store: SharedStore) -> None:
    """Count every real upstream's ``rate_limit`` (and, if asked, keep its circuit) in ``store``."""
    shared = {}
    for namespace, bound in engine.apis.items():
        if bound.mock:
            continue
        changes: dict[str, Any] = {}
        if bound.settings.rate_limit:
            limit, window = parse_rate(bound.settings.rate_limit)
            fallback = TokenBucket(max(1, limit // store.processes), window)
            changes["bucket"] = SharedRateLimit(store, namespace, limit, window, fallback)
        if store.share_circuits and isinstance(bound.breaker, CircuitBreaker):
            changes["breaker"] = SharedCircuit(store, namespace, bound.breaker)
        if changes:
            shared[namespace] = engine.apis[namespace] = dataclasses.replace(bound, **changes)
    for ref, operation in engine.operations.items():
        if operation.bound.api.namespace in shared:
            engine.operations[ref] = dataclasses.replace(
                operation, bound=shared[operation.bound.api.namespace]
            )
