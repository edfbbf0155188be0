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
"""

from __future__ import annotations

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
from host.resilience import TokenBucket

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


class SharedStore:
    """This process's connection to the shared store, and whether it answers."""

    def __init__(self, url: str, processes: int) -> None:
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.processes = processes
        self.client: Any = redis.asyncio.Redis.from_url(
            url,
            socket_timeout=STORE_TIMEOUT,
            socket_connect_timeout=STORE_TIMEOUT,
            # One immediate retry, for a pooled connection the store closed (it restarted); not redis-py's
            # default of three with backoff, which would hold a call for seconds while the store is down.
            retry=Retry(NoBackoff(), 1),
        )
        self.script = self.client.register_script(SLIDING_WINDOW)
        self.reachable: bool | None = None  # None until the first call
        self.retry_at = 0.0
        self.warned_at = -math.inf
        self._members = itertools.count()
        self._prefix = f"{os.getpid()}-{time.time_ns()}-"

    async def hit(self, key: str, limit: int, window: float) -> float | None:
        """Count one call: 0 when granted, else seconds to wait; ``None`` when the store did not answer."""
        if self.reachable is False and time.monotonic() < self.retry_at:
            return None
        from redis.exceptions import RedisError

        try:
            wait_ms = await self.script(
                keys=[key], args=[int(window * 1000), limit, f"{self._prefix}{next(self._members)}"]
            )
        except (RedisError, OSError) as exc:
            self._down(exc)
            return None
        if self.reachable is not True:
            if self.reachable is False:
                log.warning("state store reachable again: rate limits are shared again")
            self.reachable = True
            STORE_UP.set(1)
        return int(wait_ms) / 1000

    def _down(self, exc: Exception) -> None:
        self.reachable, self.retry_at = False, time.monotonic() + RETRY_AFTER
        STORE_UP.set(0)
        now = time.monotonic()
        if now - self.warned_at >= WARN_EVERY:
            self.warned_at = now
            # The class only: a redis error's text may name the store's address.
            log.warning(
                "state store unreachable (%s): rate limits fall back to per-process buckets of 1/%d of "
                "each rate_limit; retrying every %g s",
                type(exc).__name__,
                self.processes,
                RETRY_AFTER,
            )

    def describe(self) -> dict[str, Any]:
        """For /readyz."""
        store = {None: "not used yet", True: "reachable", False: "unreachable"}[self.reachable]
        details: dict[str, Any] = {"backend": "redis", "store": store}
        if self.reachable is False:
            details["fallback"] = f"per-process rate limits, 1/{self.processes} of each rate_limit"
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
        return SharedStore(url, state.processes or config.server.workers)
    except ValueError:
        raise StartupError(f"{STATE_URL_ENV} is not a valid Redis URL") from None


def share_rate_limits(engine: Engine, store: SharedStore) -> None:
    """Count every real upstream's ``rate_limit`` in ``store`` instead of in this process."""
    shared = {}
    for namespace, bound in engine.apis.items():
        rate = bound.settings.rate_limit
        if rate and not bound.mock:
            limit, window = parse_rate(rate)
            fallback = TokenBucket(max(1, limit // store.processes), window)
            bucket = SharedRateLimit(store, namespace, limit, window, fallback)
            shared[namespace] = engine.apis[namespace] = dataclasses.replace(bound, bucket=bucket)
    for ref, operation in engine.operations.items():
        if operation.bound.api.namespace in shared:
            engine.operations[ref] = dataclasses.replace(
                operation, bound=shared[operation.bound.api.namespace]
            )
