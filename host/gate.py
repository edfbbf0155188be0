"""The one inbound gate: every request on both ports passes here before any adapter code runs.

Built once at start-up (:class:`Gate`), installed as the first and only inbound
middleware of each app (:meth:`Gate.middleware`). In order, for every request:

1. a request id (taken from a sane ``X-Request-Id`` or generated), and the
   request's metrics and access-log line whatever happens next;
2. the header screen: a NUL or other control character, two ``Host`` or two
   ``Origin`` headers, a header block over ``[limits] max_total_header_bytes``;
3. public paths (probes, the OAuth metadata document), declared by each port
   as data, are served from here on with no further check;
4. ``Host`` and ``Origin`` against the allowlists (421 and 403; DNS rebinding);
5. authentication: host keys on both ports, OAuth on MCP, then the route's own
   credential (a capability's ``authentication``) where the adapter declared one;
6. requests in flight, per port (503) and per client (429);
7. the body: JSON only (415 otherwise), within the size limit (413) and read
   within ``[limits] body_timeout`` (408), under the client's concurrency slot;
8. the whole request within ``[limits] request_timeout`` (504).

A refusal never reaches the adapter's code: each port renders it through the
renderer its adapter declares (REST: problem+json; MCP: the JSON-RPC error body).
Item-level policy (a tool, resource or prompt of a capability with its own
``authentication``) is data on the item; :func:`check_item` is the one way it is applied.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
from asyncio import get_running_loop
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Middleware

from host.config import HostConfig
from host.errors import (
    BadRequest,
    BodyTimeout,
    CallError,
    Forbidden,
    HeaderFieldsTooLarge,
    MisdirectedRequest,
    PayloadTooLarge,
    RequestTimeout,
    Unauthorized,
    UnsupportedMediaType,
)
from host.inbound import ANONYMOUS, Adapter, Authenticator, CallerCheck, ConcurrencyLimiter, Principal
from host.model import CallerAuth
from host.observability import record_request, request_id, stamp_response, start_request

log = logging.getLogger("host.gate")

_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # in a header value (tab is allowed)

LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*")
LOOPBACK_ORIGINS = tuple(f"{scheme}://{host}" for scheme in ("http", "https") for host in LOOPBACK_HOSTS)

# (request, the refusal, headers the gate adds: Retry-After, WWW-Authenticate) -> the adapter's answer
Renderer = Callable[[web.Request, CallError, dict[str, str]], Awaitable[web.StreamResponse]]
ItemPolicy = CallerCheck  # an item's own credential, checked on top of the host's

PRINCIPAL = "host.gate.principal"
# The REST routes' own policies: route -> the capability credential it requires (data, set by the adapter).
ROUTE_POLICIES = web.AppKey("route_policies", dict[web.AbstractRoute, ItemPolicy])


@dataclass(frozen=True)
class Port:
    """What the gate needs to know about one adapter's port, declared by that adapter."""

    adapter: Adapter
    render: Renderer
    public_paths: frozenset[str]  # served with no Host, Origin, auth or limit check (probes)
    # The RFC 9728 metadata document's path, named in a 401's challenge when OAuth is on.
    metadata_path: str | None = None


@dataclass
class TransportGuard:
    """Host and Origin allowlists, ``"name:*"`` meaning any port."""

    allowed_hosts: tuple[str, ...]
    allowed_origins: tuple[str, ...]

    @classmethod
    def for_bind(cls, bind_host: str, hosts: Iterable[str], origins: Iterable[str]) -> TransportGuard:
        extra = () if bind_host in {"0.0.0.0", "::", ""} else (f"{bind_host}:*", f"[{bind_host}]:*")
        return cls((*LOOPBACK_HOSTS, *extra, *hosts), (*LOOPBACK_ORIGINS, *origins))

    def host_ok(self, host: str | None) -> bool:
        if not host:
            return False
        # A DNS-rebinding request always names the attacker's domain: an IP address (a probe or a
        # scraper reaching a pod by its address) cannot be one.
        return _matches(host, self.allowed_hosts) or _is_ip_literal(host)

    def origin_ok(self, origin: str | None) -> bool:
        return origin is None or _matches(origin, self.allowed_origins)


def _is_ip_literal(host: str) -> bool:
    """``10.0.0.7``, ``10.0.0.7:8080``, ``[fd00::1]:9090``: an address, not a name."""
    address = host[1:].partition("]")[0] if host.startswith("[") else host.partition(":")[0]
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def _matches(value: str, patterns: Iterable[str]) -> bool:
    for pattern in patterns:
        if value == pattern:
            return True
        if pattern.endswith(":*"):
            base = pattern[:-2]
            if value == base or (value.startswith(base + ":") and value[len(base) + 1 :].isdigit()):
                return True
    return False


def authenticators(config: HostConfig, environ: Mapping[str, str]) -> dict[Adapter, Authenticator]:
    """One per port; reads the keys from the environment (a missing one is a start-up error)."""
    return {adapter: Authenticator(config.auth, environ, adapter) for adapter in ("rest", "mcp")}


def item_policy(auth: CallerAuth | None, environ: Mapping[str, str], origin: str) -> ItemPolicy | None:
    """An item's own credential, resolved once at start-up (``None``: the host's checks are enough)."""
    return None if auth is None else CallerCheck(auth, environ, origin)


def check_item(policy: ItemPolicy | None, headers: Mapping[str, str]) -> None:
    """The one check of an item's own credential. Raises :class:`Unauthorized`."""
    if policy is not None:
        policy.check(headers)


def principal_of(request: web.Request) -> Principal:
    """Who the gate let in (``ANONYMOUS`` on an open host)."""
    principal: Principal = request.get(PRINCIPAL, ANONYMOUS)
    return principal


def is_json_media_type(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


class Gate:
    """The inbound policy of both ports, built once from the configuration."""

    def __init__(self, config: HostConfig, environ: Mapping[str, str]) -> None:
        server, self.limits = config.server, config.limits
        self.transport = TransportGuard.for_bind(server.host, server.allowed_hosts, server.allowed_origins)
        self.authenticators = authenticators(config, environ)
        self.max_body_bytes = server.max_body_bytes
        quiet_malformed_requests()

    def middleware(self, port: Port) -> Middleware:
        """The port's one inbound middleware: first in its app's chain."""
        check = _PortCheck(self, port)

        @web.middleware
        async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
            started, token = start_request(request)
            status = 500
            try:
                response = await check.admit(request, handler)
                status = response.status
                stamp_response(response)
                return response
            except web.HTTPException as exc:
                status = exc.status
                stamp_response(exc)
                raise
            finally:
                # Logged and counted once the answer is on its way (the call copies this context).
                elapsed = time.perf_counter() - started
                get_running_loop().call_soon(record_request, port.adapter, request, status, elapsed)
                request_id.reset(token)

        return gate


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _PortCheck:
    """The gate's sequence for one port, with that port's own concurrency limiter."""

    def __init__(self, gate: Gate, port: Port) -> None:
        self.port = port
        self.transport = gate.transport
        self.authenticator = gate.authenticators[port.adapter]
        self.limiter = ConcurrencyLimiter(gate.limits)
        self.max_total_header_bytes = gate.limits.max_total_header_bytes
        self.body_timeout = gate.limits.body_timeout
        self.request_timeout = gate.limits.request_timeout
        self.max_body_bytes = gate.max_body_bytes

    async def admit(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            self._screen(request)
            if request.path in self.port.public_paths:
                return await handler(request)
            self._transport(request)
            principal = await self._authenticate(request)
        except CallError as exc:
            return await self._refuse(request, exc)
        client = principal.name if principal is not ANONYMOUS else (request.remote or "?")
        try:
            self.limiter.acquire(client)
        except CallError as exc:
            return await self._refuse(request, exc)
        try:
            async with asyncio.timeout(self.request_timeout):
                try:
                    await self._read_body(request)
                except CallError as exc:
                    return await self._refuse(request, exc)
                return await handler(request)
        except TimeoutError:
            detail = f"the request took longer than {self.request_timeout:g} s"
            return await self._refuse(request, RequestTimeout(detail))
        finally:
            self.limiter.release(client)

    def _screen(self, request: web.Request) -> None:
        """What no request may carry, whatever its path."""
        total = 0
        for name, value in request.raw_headers:
            total += len(name) + len(value) + 4
            if _CONTROL_BYTES.search(value):
                raise BadRequest(f"request header {_printable(name)} contains a control character")
        if total > self.max_total_header_bytes:
            raise HeaderFieldsTooLarge(
                f"request headers total {total} bytes; the limit is {self.max_total_header_bytes}"
            )
        headers = request.headers
        if len(headers.getall("Host", ())) > 1:
            raise BadRequest("more than one Host header")
        if len(headers.getall("Origin", ())) > 1:
            raise Forbidden("more than one Origin header")

    def _transport(self, request: web.Request) -> None:
        headers = request.headers
        if not self.transport.host_ok(headers.get("Host")):
            log.warning(
                "%s: refused Host header (DNS-rebinding guard); add it to [server] allowed_hosts",
                self.port.adapter.upper(),
            )
            raise MisdirectedRequest("Host header not allowed")
        if not self.transport.origin_ok(headers.get("Origin")):
            log.warning(
                "%s: refused Origin header; add it to [server] allowed_origins", self.port.adapter.upper()
            )
            raise Forbidden("Origin not allowed")

    async def _authenticate(self, request: web.Request) -> Principal:
        principal = await self.authenticator.authenticate(request.headers)
        request[PRINCIPAL] = principal
        policies = request.app.get(ROUTE_POLICIES)
        if policies:
            check_item(policies.get(request.match_info.route), request.headers)
        return principal

    async def _read_body(self, request: web.Request) -> None:
        """Read a body before the adapter sees the request: JSON only, bounded in size and in time."""
        if not request.body_exists:
            return
        if not is_json_media_type(request.headers.get("Content-Type", "")):
            raise UnsupportedMediaType(
                f"the body must be JSON (Content-Type: application/json), not "
                f"{_printable(request.headers.get('Content-Type', '(none)'))!r}"
            )
        try:
            if request.content.is_eof():  # all of it has arrived: nothing to wait for, no timer needed
                await request.read()  # aiohttp keeps it: the adapter's read() returns the same bytes
            else:
                async with asyncio.timeout(self.body_timeout):
                    await request.read()
        except TimeoutError:
            raise BodyTimeout(f"the request body did not arrive within {self.body_timeout:g} s") from None
        except web.HTTPRequestEntityTooLarge:
            raise PayloadTooLarge(f"request body is larger than {self.max_body_bytes} bytes") from None

    async def _refuse(self, request: web.Request, error: CallError) -> web.StreamResponse:
        headers: dict[str, str] = {}
        if error.retry_after:
            headers["Retry-After"] = f"{error.retry_after:g}"
        if isinstance(error, Unauthorized):
            headers["WWW-Authenticate"] = self.authenticator.challenge(self._metadata_url(request))
        elif isinstance(error, Forbidden) and "required_scopes" in error.extra:
            scope = " ".join(error.extra["required_scopes"])
            headers["WWW-Authenticate"] = (
                f'Bearer error="insufficient_scope", scope="{scope}", '
                f'resource_metadata="{self._metadata_url(request)}"'
            )
        if isinstance(error, BodyTimeout):
            headers["Connection"] = "close"  # the rest of the body may never come
        return await self.port.render(request, error, headers)

    def _metadata_url(self, request: web.Request) -> str | None:
        path = self.port.metadata_path
        return f"{request.scheme}://{request.host}{path}" if path else None


class _MalformedRequestFilter(logging.Filter):
    """aiohttp logs a request it cannot parse (a NUL in a header, a line too long) as an ERROR with a
    traceback; it is the caller's mistake, answered 400 by aiohttp: one WARNING line says so."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args = "refused a malformed HTTP request: %s", (_printable(exc.message),)
            record.exc_info = record.exc_text = None
        return True


_MALFORMED = _MalformedRequestFilter()


def quiet_malformed_requests() -> None:
    """Install the filter above on aiohttp's server logger (idempotent)."""
    logging.getLogger("aiohttp.server").addFilter(_MALFORMED)


def _printable(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    return text.encode("unicode_escape").decode("ascii")[:100]
