"""Inbound connections, per port: header timeout, a cap on open connections, and clear bind errors.

aiohttp closes a kept-alive connection after ``keepalive_timeout`` (``[limits] idle_timeout``),
but a connection that never completes its first request is kept forever, and nothing bounds how
many are open: enough idle sockets exhaust the process's descriptors and ``/healthz`` fails
with nothing logged. So each port listens through :class:`GuardedSite`, whose protocol wraps
aiohttp's and

* closes a new connection (408) that has not sent its first request's headers within
  ``[limits] header_timeout`` (later requests on a kept-alive connection are bounded by
  ``idle_timeout``, which aiohttp enforces);
* at ``[limits] max_connections`` open connections, closes the longest-open *idle* one to make
  room (as nginx reuses keep-alive connections when it runs out), and only when every
  connection is busy with a request answers the newcomer 503 and closes it. So probes and real
  clients keep being served while idle sockets are shed; a warning says so at most once a
  minute, and ``host_connections_closed_total`` counts every such close by reason.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from aiohttp import web
from prometheus_client import Counter, Gauge

from host.config import HostConfig
from host.errors import StartupError
from host.observability import REGISTRY

log = logging.getLogger("host.connections")

CONNECTIONS_CLOSED = Counter(
    "host_connections_closed_total",
    "Inbound connections the host closed itself, by port and reason (header_timeout, idle_shed, over_limit).",
    ("adapter", "reason"),
    registry=REGISTRY,
)
CONNECTIONS_OPEN = Gauge(
    "host_connections_open",
    "Inbound connections open, by port.",
    ("adapter",),
    registry=REGISTRY,
    multiprocess_mode="livesum",
)

# How often, at most, the cap warning is logged per port.
LOG_INTERVAL = 60.0
# Descriptors kept for everything but inbound connections: listeners, logs, files, plugin needs.
RESERVED_DESCRIPTORS = 64
_HEADER_END = (b"\r\n\r\n", b"\n\n")
_TIMEOUT_408 = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
_BUSY_503 = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
)


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float
    max_connections: int
    setting: str = "[limits] max_connections"  # named in the warning when the cap is hit


@dataclass
class _CapReport:
    """What happened at the cap since the last warning."""

    shed: int = 0
    refused: int = 0
    next_log: float = 0.0
    flush: asyncio.TimerHandle | None = field(default=None, repr=False)


class ConnectionGuard:
    """One port's open connections, oldest first."""

    def __init__(self, adapter: str, limits: ConnectionLimits) -> None:
        self.adapter, self.limits = adapter, limits
        self.open: dict[GuardedProtocol, None] = {}  # insertion order = age
        self._report = _CapReport()
        self._open_gauge = CONNECTIONS_OPEN.labels(adapter)
        self.empty = asyncio.Event()  # set while no connection is open (shutdown waits for it)
        self.empty.set()

    def factory(self, make_handler: Callable[[], web.RequestHandler]) -> Callable[[], GuardedProtocol]:
        return lambda: GuardedProtocol(self, make_handler())

    def admit(self, newcomer: GuardedProtocol) -> bool:
        """Make room for ``newcomer`` if the port is full; False when every open connection is busy."""
        if len(self.open) >= self.limits.max_connections:
            idle = next((conn for conn in self.open if conn.idle), None)
            if idle is None:
                self._count("over_limit")
                return False
            idle.close_now()
            self._count("idle_shed")
        self.open[newcomer] = None
        self.empty.clear()
        self._open_gauge.set(len(self.open))
        return True

    def close_idle(self) -> None:
        """Close every connection waiting for a request (at shutdown: nothing is lost)."""
        for connection in [conn for conn in self.open if conn.idle]:
            connection.close_now()

    def forget(self, connection: GuardedProtocol) -> None:
        if connection in self.open:
            del self.open[connection]
            self._open_gauge.set(len(self.open))
            if not self.open:
                self.empty.set()

    def header_timed_out(self) -> None:
        CONNECTIONS_CLOSED.labels(self.adapter, "header_timeout").inc()

    def _count(self, reason: str) -> None:
        CONNECTIONS_CLOSED.labels(self.adapter, reason).inc()
        report = self._report
        if reason == "idle_shed":
            report.shed += 1
        else:
            report.refused += 1
        loop = asyncio.get_running_loop()
        if loop.time() >= report.next_log:
            self._log_cap()
        elif report.flush is None:
            report.flush = loop.call_at(report.next_log, self._log_cap)

    def _log_cap(self) -> None:
        report = self._report
        log.warning(
            "%s port: %d connections open, the cap (%s = %d): closed %d idle connection(s) to make room "
            "and refused %d new one(s) because every connection was busy",
            self.adapter.upper(),
            len(self.open),
            self.limits.setting,
            self.limits.max_connections,
            report.shed,
            report.refused,
        )
        report.shed = report.refused = 0
        report.next_log = asyncio.get_running_loop().time() + LOG_INTERVAL
        report.flush = None


class GuardedProtocol(asyncio.Protocol):
    """aiohttp's request handler, with a deadline for the first request's headers and a place in the count."""

    def __init__(self, guard: ConnectionGuard, handler: web.RequestHandler) -> None:
        self.guard, self.handler = guard, handler
        self.transport: asyncio.Transport | None = None
        self.admitted = False  # counted, and handed to aiohttp's handler
        self._header_timer: asyncio.TimerHandle | None = None
        self._tail = b""  # the last bytes seen, so a header end split across reads is found

    @property
    def idle(self) -> bool:
        """Waiting for a request (none in progress): safe to close without losing an answer."""
        # aiohttp's request loop waits on _waiter for the next complete request header; once a request has
        # arrived the future is done (though not yet cleared), and closing then would lose its answer.
        # aiohttp's own keep-alive check reads it the same way.
        waiter = getattr(self.handler, "_waiter", None)
        return waiter is not None and not waiter.done()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport subclass
        self.transport = transport
        self.admitted = self.guard.admit(self)
        if not self.admitted:
            transport.write(_BUSY_503)
            transport.close()
            return
        loop = asyncio.get_running_loop()
        self._header_timer = loop.call_later(self.guard.limits.header_timeout, self._header_expired)
        self.handler.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._header_timer is not None:
            seen = self._tail + data
            if any(end in seen for end in _HEADER_END):
                self._header_timer.cancel()
                self._header_timer = None
            self._tail = seen[-3:]
        self.handler.data_received(data)

    def eof_received(self) -> bool | None:
        self.handler.eof_received()
        return None  # as aiohttp's handler: the transport closes itself

    def pause_writing(self) -> None:
        self.handler.pause_writing()

    def resume_writing(self) -> None:
        self.handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        if self.admitted:
            self.guard.forget(self)
            self.handler.connection_lost(exc)
        self.transport = None

    def close_now(self) -> None:
        self.guard.forget(self)
        if self.transport is not None:
            self.transport.close()

    def _header_expired(self) -> None:
        self._header_timer = None
        self.guard.header_timed_out()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_TIMEOUT_408)
            self.transport.close()


class GuardedSite(web.TCPSite):
    """A TCP site whose connections pass through a :class:`ConnectionGuard`, with a one-line bind error."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        guard: ConnectionGuard,
        setting: str,
        fix: str,
        reuse_port: bool = False,
    ) -> None:
        super().__init__(runner, host, port, reuse_port=reuse_port)
        self.guard, self.setting, self.fix = guard, setting, fix

    @property
    def server(self) -> web.Server:
        """aiohttp's connection manager behind this site (its runner's)."""
        server = self._runner.server
        assert server is not None, "runner.setup() first"
        return server

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner, as TCPSite.start does
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                self.guard.factory(self.server),
                self._host,
                self._port,
                backlog=self._backlog,
                reuse_address=self._reuse_address,
                reuse_port=self._reuse_port,
            )
        except OSError as exc:
            raise StartupError(bind_problem(self._host, self._port, self.setting, self.fix, exc)) from None


def bind_problem(host: str | None, port: int | None, setting: str, fix_with: str, exc: OSError) -> str:
    """One line: the address, what set it, why it cannot be bound, and the fix (``fix_with``: flag or key)."""
    address = f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        why = "the address is already in use (by another program, or another host serve)"
        fix = f"stop that program, or choose another port with {fix_with}"
    elif exc.errno == errno.EACCES:
        why = "permission denied (ports below 1024 need privileges)"
        fix = f"choose a port of 1024 or above with {fix_with}"
    elif exc.errno == errno.EADDRNOTAVAIL:
        why = "this machine has no such address"
        fix = "bind an address of this machine with --host or [server] host"
    else:
        why = exc.strerror or str(exc)
        fix = f"check --host / [server] host and {fix_with}"
    return f"cannot listen on {address} ({setting}): {why}; {fix}"


def _port_settings(config: HostConfig) -> list[tuple[str, int, str, str]]:
    """(adapter, port, what set it, how to change it) for both ports."""
    server = config.server
    return [
        (adapter, port, config.source(key), f"--{adapter}-port or [server] {key} in host.toml")
        for adapter, port, key in (
            ("rest", server.rest_port, "rest_port"),
            ("mcp", server.mcp_port, "mcp_port"),
        )
    ]


def bind_problems(config: HostConfig) -> list[str]:
    """What :class:`GuardedSite` would report for each port if ``host serve`` started now."""
    host = config.server.host
    problems = (check_bindable(host, port, setting, fix) for _, port, setting, fix in _port_settings(config))
    return [problem for problem in problems if problem]


def check_bindable(host: str, port: int, setting: str, fix_with: str) -> str | None:
    """What :class:`GuardedSite` would report for ``host:port`` now, or None when it can be bound."""
    if port == 0:
        return None
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        return f"cannot listen on {host}:{port} ({setting}): cannot resolve {host!r}: {exc}"
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's create_server
            try:
                sock.bind(address)
            except OSError as exc:
                return bind_problem(host, port, setting, fix_with, exc)
    return None


def fit_connection_cap(wanted: int, ports: int, reserved: int, setting: str) -> int:
    """The per-port cap the descriptor limit allows: raise the soft limit if need be, else lower the cap.

    A cap above what the process can open protects nothing: the accept would fail first.
    """
    needed = wanted * ports + reserved
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return wanted
    fitted = max(1, (soft - reserved) // ports)
    log.warning(
        "%s = %d per port does not fit this process's %d file descriptors (ulimit -n): using %d; "
        "raise the limit to %d to get the configured cap",
        setting,
        wanted,
        soft,
        fitted,
        needed,
    )
    return fitted


def guarded_sites(
    config: HostConfig, runners: dict[str, web.BaseRunner], *, reuse_port: bool, upstream_connections: int
) -> list[GuardedSite]:
    """The REST and MCP sites (not started), each with its own guard; ``runners`` by adapter."""
    server, limits = config.server, config.limits
    setting = "[limits] max_connections"
    cap = fit_connection_cap(
        limits.max_connections, len(runners), RESERVED_DESCRIPTORS + upstream_connections, setting
    )
    return [
        GuardedSite(
            runners[adapter],
            server.host,
            port,
            guard=ConnectionGuard(adapter, ConnectionLimits(limits.header_timeout, cap, setting)),
            setting=source,
            fix=fix,
            reuse_port=reuse_port,
        )
        for adapter, port, source, fix in _port_settings(config)
    ]
