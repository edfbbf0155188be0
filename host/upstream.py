"""The upstream HTTP exchange: admission (circuit breaker, rate limit), pooling, sending, retries, digest.

:func:`send` takes a built :class:`~host.model.OutboundRequest` to a real upstream and classifies
what happens: 2xx-4xx answers come back as an :class:`~host.model.UpstreamResponse`; timeouts,
refused connections and the like raise a :class:`~host.errors.CallError`.

Waiting for a pooled connection is the host's time, not the upstream's: :class:`Pool` hands out its
connections itself, within ``pool_timeout`` (then :class:`~host.errors.HostBusy`), so aiohttp never
queues a request and its timeout measures the upstream alone, and a busy pool never opens a circuit.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
from yarl import URL

from host.binding import BoundApi, BoundAuth
from host.errors import (
    HostBusy,
    NotConfigured,
    TooManyRequests,
    Unavailable,
    UpstreamBadStatus,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from host.model import OutboundRequest, UpstreamResponse
from host.observability import REQUEST_ID_HEADER, observe_upstream, request_id
from host.secrets import Secret

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({502, 503, 504})

# Upstream response headers read by the host (the digest challenge) or passed on to callers.
KEPT_HEADERS = frozenset({"retry-after", "www-authenticate", "etag", "last-modified"})
# What a caller may see: when to retry, and the validators of a conditional request (If-None-Match).
# The upstream's Location, cookies, challenge and server details describe the upstream, not the host.
CALLER_HEADERS = frozenset({"retry-after", "etag", "last-modified"})


class Pool:
    """One upstream's pooled session; a call waits at most ``pool_timeout`` for a connection."""

    def __init__(self, bound: BoundApi, trace_configs: list[aiohttp.TraceConfig] | None = None) -> None:
        size = bound.settings.pool_size
        connector = aiohttp.TCPConnector(limit=size, ttl_dns_cache=300)
        # The timeout is the session's: passing it with every request costs measurably more.
        # trace_configs: client spans, only when tracing is on (host.tracing). No cookie jar: the session
        # serves every caller, so a jar would replay one caller's Set-Cookie on everyone else's calls.
        self.session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=bound.timeout,
            auto_decompress=True,
            trust_env=False,
            trace_configs=trace_configs,
        )
        self._slots = asyncio.Semaphore(size)
        self._size, self._wait, self._namespace = size, bound.settings.pool_timeout, bound.api.namespace

    async def acquire(self) -> None:
        """Take a connection slot, or raise :class:`HostBusy` after ``pool_timeout`` seconds."""
        if not self._slots.locked():
            await self._slots.acquire()  # free: no suspension, no timer (the hot path)
            return
        try:
            async with asyncio.timeout(self._wait):
                await self._slots.acquire()
        except TimeoutError:
            raise HostBusy(
                f"host busy: all {self._size} connections to upstream {self._namespace} stayed in use "
                f"for {self._wait:g} s; retry shortly",
                retry_after=1,
            ) from None

    def release(self) -> None:
        self._slots.release()

    @property
    def closed(self) -> bool:
        return self.session.closed

    async def close(self) -> None:
        await self.session.close()


async def send(pool: Pool, bound: BoundApi, ref: str, request: OutboundRequest) -> UpstreamResponse:
    """Send ``request`` (operation ``ref``) to ``bound``'s upstream, within its breaker and rate limit."""
    auth = bound.auth
    if auth is not None and auth.unsupported:
        raise NotConfigured(
            f"operation {ref} needs {auth.unsupported} authentication, which this host cannot "
            f"perform; no request was sent"
        )
    probe = await _admit(bound)
    try:
        exchange = _Exchange(pool, bound, *_prepare(bound, request))
        response = await _with_retries(exchange, idempotent=request.method in IDEMPOTENT)
        if response.status == 401 and auth is not None and auth.kind == "digest":
            response = await _answer_digest(exchange, auth, response)
    except (TimeoutError, aiohttp.ClientError, UpstreamBadStatus) as exc:
        await bound.breaker.settle(ok=False)
        raise _failure(bound, exc) from None
    finally:
        # Whatever else ended the call (cancelled, an unexpected error): it has no result to record.
        bound.breaker.release(probe)
    await bound.breaker.settle(ok=response.status < 500)
    return _for_caller(response)


def _for_caller(response: UpstreamResponse) -> UpstreamResponse:
    """Only the headers a caller may see (the digest challenge was read above)."""
    headers = response.headers
    if any(name.lower() not in CALLER_HEADERS for name in headers):
        headers = {name: value for name, value in headers.items() if name.lower() in CALLER_HEADERS}
        return UpstreamResponse(response.status, response.body, response.content_type, headers)
    return response


async def _admit(bound: BoundApi) -> int | None:
    """Refuse the call while the upstream's circuit is open or its rate limit is reached.

    Returns the probe number when this call is the half-open circuit's probe.
    """
    namespace = bound.api.namespace
    wait, probe = await bound.breaker.enter()
    if wait:
        raise Unavailable(
            f"upstream {namespace} is failing; calls are refused for {wait:g} s (circuit open)",
            retry_after=wait,
        )
    if bound.bucket is not None and (wait := await bound.bucket.acquire()):
        bound.breaker.release(probe)
        raise TooManyRequests(
            f"rate limit for upstream {namespace} ({bound.settings.rate_limit}) reached",
            retry_after=max(1, round(wait)),
        )
    return probe


def _prepare(
    bound: BoundApi, request: OutboundRequest
) -> tuple[str, str, list[tuple[str, str]], dict[str, str], bytes | None, URL]:
    """Method, URL, query, headers and body, with the API's headers and the credential added."""
    headers = {**bound.api.headers, **request.headers}
    rid = request_id.get()
    if rid != "-":
        headers[REQUEST_ID_HEADER] = rid  # lets the upstream's logs be joined with ours
    if request.content_type:
        headers["Content-Type"] = request.content_type
    query = list(request.query)
    auth = bound.auth
    if auth is not None and auth.header is not None:
        headers[auth.header[0]] = auth.header[1].reveal()
        for name, value in auth.extra_headers:
            headers[name] = value.reveal()
    if auth is not None and auth.query is not None:
        query.append((auth.query[0], auth.query[1].reveal()))
    url, target = _target(bound.base_url, request.path)
    return request.method, url, query, headers, request.body, target


# (base URL, path) -> the encoded URL, as text and as yarl's URL: an operation's paths repeat, so each
# is encoded and parsed once. Bounded (paths carry callers' values): emptied when full.
_TARGETS: dict[tuple[str, str], tuple[str, URL]] = {}
_TARGETS_MAX = 1024


def _target(base_url: str, path: str) -> tuple[str, URL]:
    key = (base_url, path)
    found = _TARGETS.get(key)
    if found is None:
        if len(_TARGETS) >= _TARGETS_MAX:
            _TARGETS.clear()
        url = upstream_url(base_url, path)
        found = _TARGETS[key] = (url, URL(url, encoded=True))  # encoded: yarl must not resolve dot segments
    return found


# A dot segment, written plainly or percent-encoded (aiohttp's server decodes %2e%2e to ..).
_DOT_SEGMENT = re.compile(r"(?i)(?:\.|%2e){1,2}")
# Characters a URL may carry as they are; quote() encodes the rest and keeps existing %XX escapes.
_URL_SAFE = ":/?#[]@!$&'()*+,;=%~"


def upstream_url(base_url: str, path: str) -> str:
    """The request URL, encoded, with every ``.`` or ``..`` path segment percent-encoded.

    A dot segment from a caller's value must stay one literal segment of the operation's path, never
    be resolved into another upstream path; the URL is then sent as it is (never normalised).
    """
    if "." in path or "%" in path:
        segments = path.split("/")
        path = "/".join(
            "%2E" * len(segment.replace("%2e", ".").replace("%2E", "."))
            if _DOT_SEGMENT.fullmatch(segment)
            else segment
            for segment in segments
        )
    return quote(base_url + path, safe=_URL_SAFE)


async def _answer_digest(
    exchange: _Exchange, auth: BoundAuth, challenged: UpstreamResponse
) -> UpstreamResponse:
    challenge = challenged.headers.get("WWW-Authenticate", "")
    exchange.headers["Authorization"] = digest_authorization(
        challenge, exchange.method, exchange.url, exchange.query, auth.username, auth.password
    )
    return await exchange.send()


def _failure(bound: BoundApi, exc: Exception) -> Exception:
    """The caller's error for a failed exchange."""
    namespace = bound.api.namespace
    if isinstance(exc, UpstreamBadStatus):
        return exc
    if isinstance(exc, (TimeoutError, aiohttp.ServerTimeoutError)):
        return UpstreamTimeout(f"upstream {namespace} did not answer within {bound.timeout.total:g} s")
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or type(exc.os_error).__name__
        return UpstreamUnreachable(f"upstream {namespace} is unreachable: {reason}")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return UpstreamUnreachable(f"upstream {namespace} closed the connection without answering")
    return UpstreamUnreachable(f"upstream {namespace} failed: {type(exc).__name__}")


async def _with_retries(exchange: _Exchange, *, idempotent: bool) -> UpstreamResponse:
    """Retry only where it is safe: idempotent methods, or a connection that was never made.

    A POST whose request may have reached the upstream is never sent twice.
    """
    attempts = 1 + exchange.bound.settings.retries
    for attempt in range(attempts):
        last = attempt == attempts - 1
        try:
            response = await exchange.send()
        except aiohttp.ClientConnectorError:
            if last:
                raise
        except (TimeoutError, aiohttp.ServerTimeoutError, aiohttp.ServerDisconnectedError):
            if last or not idempotent:
                raise
        else:
            if last or not idempotent or response.status not in RETRY_STATUSES:
                return response
        await asyncio.sleep(min(0.05 * 2**attempt, 1.0))
    raise AssertionError("unreachable")


@dataclass
class _Exchange:
    """One upstream request, sendable more than once."""

    pool: Pool
    bound: BoundApi
    method: str
    url: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes | None
    target: URL  # ``url``, parsed

    async def send(self) -> UpstreamResponse:
        await self.pool.acquire()
        started, status = time.perf_counter(), "error"
        try:
            async with self.pool.session.request(
                self.method,
                self.target,
                params=self.query or None,
                data=self.body,
                headers=self.headers,
                allow_redirects=False,
            ) as resp:
                status = str(resp.status)
                payload = await _read_capped(resp, self.bound)
                kept = {k: v for k, v in resp.headers.items() if k.lower() in KEPT_HEADERS}
                content_type = resp.headers.get("Content-Type", "application/octet-stream")
                return UpstreamResponse(resp.status, payload, content_type, kept)
        except (TimeoutError, aiohttp.ServerTimeoutError):
            status = "timeout"
            raise
        finally:
            self.pool.release()
            observe_upstream(self.bound.api.namespace, status, time.perf_counter() - started)


async def _read_capped(resp: aiohttp.ClientResponse, bound: BoundApi) -> bytes:
    """The body, refusing more than ``max_response_bytes``: a runaway upstream must not exhaust memory."""
    limit, namespace = bound.settings.max_response_bytes, bound.api.namespace
    if resp.content_length is not None:
        if resp.content_length > limit:
            raise UpstreamBadStatus(f"upstream {namespace} answer is too large ({resp.content_length} bytes)")
        return await resp.read()  # bounded by the declared length: the fast path
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise UpstreamBadStatus(f"upstream {namespace} answer exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def digest_authorization(
    challenge: str,
    method: str,
    url: str,
    query: list[tuple[str, str]],
    username: Secret | None,
    password: Secret | None,
) -> str:
    """The ``Authorization`` answer to an RFC 7616 ``WWW-Authenticate: Digest`` challenge."""
    if not challenge.lower().startswith("digest") or username is None or password is None:
        return ""
    fields = {k: a or b for k, a, b in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]*))', challenge[6:])}
    algorithm = fields.get("algorithm", "MD5").upper()
    hash_name = "sha256" if algorithm.startswith("SHA-256") else "md5"

    def h(text: str) -> str:
        return hashlib.new(hash_name, text.encode()).hexdigest()

    parsed = urlsplit(url)
    uri = parsed.path + ("?" + urlencode(query) if query else "")
    realm, nonce = fields.get("realm", ""), fields.get("nonce", "")
    ha1 = h(f"{username.reveal()}:{realm}:{password.reveal()}")
    ha2 = h(f"{method}:{uri}")
    parts = [
        f'username="{username.reveal()}"',
        f'realm="{realm}"',
        f'nonce="{nonce}"',
        f'uri="{uri}"',
        f"algorithm={fields.get('algorithm', 'MD5')}",
    ]
    if "auth" in fields.get("qop", "").split(","):
        cnonce, nc = secrets.token_hex(8), "00000001"
        parts += [
            f'response="{h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")}"',
            "qop=auth",
            f"nc={nc}",
            f'cnonce="{cnonce}"',
        ]
    else:
        parts.append(f'response="{h(f"{ha1}:{nonce}:{ha2}")}"')
    if "opaque" in fields:
        parts.append(f'opaque="{fields["opaque"]}"')
    return "Digest " + ", ".join(parts)
