"""Protecting upstreams and the host: a token bucket and a circuit breaker, per consumed API.

Both are per process (per replica, per worker): with N workers an upstream sees
up to N times the configured rate, unless ``[state] backend = "redis"`` shares the
rate limit, and ``[state] share_circuits = true`` the circuit (:mod:`host.state`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Protocol


class RateLimit(Protocol):
    async def acquire(self) -> float:
        """0 when a call may go ahead, else the seconds until one may."""


class Circuit(Protocol):
    """What the upstream exchange asks of a circuit: this process's breaker, or host.state's shared one."""

    @property
    def is_open(self) -> bool:
        """Open or half-open: the upstream is believed down."""

    @property
    def refusing(self) -> bool:
        """Open and still cooling down (or probing): a call now would not reach the upstream (readiness)."""

    async def enter(self) -> tuple[float, int | None]:
        """Admit a call: ``(0, its probe number or None)``, or ``(seconds until a probe, None)``."""

    def release(self, probe: int | None) -> None:
        """Probe ``probe`` ended without a result: let the next call probe instead."""

    async def settle(self, ok: bool) -> None:
        """Record a call's result."""


@dataclass
class TokenBucket:
    """``capacity`` calls per ``period`` seconds, refilled continuously; bursts up to ``capacity``."""

    capacity: int
    period: float
    tokens: float = field(init=False)
    updated: float = field(init=False, default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = float(self.capacity)

    def take(self) -> float:
        """Take a token: 0 when granted, else the seconds until one is available."""
        now = time.monotonic()
        rate = self.capacity / self.period
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / rate

    async def acquire(self) -> float:
        return self.take()


@dataclass
class CircuitBreaker:
    """Closed → open after ``threshold`` consecutive failures → one probe after ``reset_after`` s.

    A successful probe closes the circuit; a failed one opens it again. A probe that ends with no
    result (refused by the rate limit, cancelled, or failed before reaching the upstream) must
    :meth:`release` its slot, or the circuit would stay open for good.
    """

    threshold: int
    reset_after: float
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False
    _probes: int = 0  # numbers the probes, so a late release never frees a newer probe's slot

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None

    @property
    def refusing(self) -> bool:
        # Past the cool-down the next call is the probe; only traffic can make it, so don't refuse it.
        if self.opened_at is None:
            return False
        return self.probing or time.monotonic() - self.opened_at < self.reset_after

    @property
    def probe(self) -> int | None:
        """The number of the probe in flight, if any."""
        return self._probes if self.probing else None

    def admit(self) -> float:
        """0 when a call may go ahead, else seconds until the next probe."""
        if self.opened_at is None:
            return 0.0
        waited = time.monotonic() - self.opened_at
        if waited >= self.reset_after and not self.probing:
            self.probing = True  # let exactly one call through to probe the upstream
            self._probes += 1
            return 0.0
        return max(1.0, math.ceil(self.reset_after - waited))

    async def enter(self) -> tuple[float, int | None]:
        wait = self.admit()
        return wait, (None if wait else self.probe)

    def release(self, probe: int | None) -> None:
        """Probe ``probe`` ended without a result: let the next call probe instead."""
        if probe is not None and self.probe == probe:
            self.probing = False

    async def settle(self, ok: bool) -> None:
        self.record(ok)

    def record(self, ok: bool) -> None:
        self.probing = False
        if ok:
            self.failures, self.opened_at = 0, None
            return
        self.failures += 1
        if self.failures >= self.threshold:
            self.opened_at = time.monotonic()
