"""The HTTP front of the MCP server: Streamable HTTP, stateless, JSON responses (SSE when notified).

The official SDK's low-level :class:`mcp.server.Server` is the protocol kernel
(version negotiation, both protocol eras, result validation). This module is
its HTTP front, written as a native aiohttp handler that hands each POST to
the kernel's single-exchange driver ``serve_one``, as the SDK's own stateless
transport does. Bridging the SDK's Starlette app through an ASGI adapter would
busy-loop the shared event loop on any SSE stream (see docs in shared/).

Plain ``tools/call`` and ``tools/list`` requests are answered beside the kernel by
:mod:`.fastpath`, with the same checks and the same answers, after the transport rules below.

The gate (:mod:`host.gate`) has applied Host and Origin (DNS rebinding),
authentication, limits, the body's size and media type before this handler
runs. The MCP spec's own rules are applied here: method, Accept, Content-Type,
JSON-RPC envelope, the 2026-07-28 routing and ``Mcp-Param-*`` headers.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from mcp.server.connection import Connection
from mcp.server.runner import modern_error_data, serve_one
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    InboundLadderRejection,
    classify_inbound_request,
    find_duplicated_routing_header,
    validate_mcp_param_headers,
)
from mcp.shared.jsonrpc_dispatcher import progress_token_from_params
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp.types import INVALID_REQUEST, PARSE_ERROR, ErrorData
from mcp_types import DEFAULT_NEGOTIATED_VERSION
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from multidict import CIMultiDict

from host.adapters.mcp.content import media_type_of
from host.adapters.mcp.fastpath import FastPath, load_json_fast
from host.adapters.mcp.service import McpService
from host.adapters.mcp.state import exchange_of
from host.adapters.mcp.stream import (
    EventStream,
    OneShotDispatchContext,
    accepts_event_stream,
    accepts_json,
    finish_stream,
    reply,
    rpc_error,
)
from host.engine import Engine
from host.errors import BadRequest, CallError, Forbidden, Unauthorized
from host.gate import LOOPBACK_HOSTS, LOOPBACK_ORIGINS, Port, TransportGuard, principal_of
from host.inbound import ANONYMOUS, load_json
from host.plugins import Catalog
from host.tracing import mcp_message

log = logging.getLogger("host.mcp")

MCP_PATH = "/mcp"
PRM_PATH = "/.well-known/oauth-protected-resource"

_LIFESPAN = web.AppKey("mcp_state", Any)
SERVER_ERROR = -32000  # JSON-RPC's implementation-defined server error: limits and timeouts

__all__ = [  # TransportGuard and the loopback lists moved to host.gate; re-exported for old imports
    "FAST_PATH",
    "LOOPBACK_HOSTS",
    "LOOPBACK_ORIGINS",
    "MCP_PATH",
    "MCP_PORT",
    "PRM_PATH",
    "SERVICE",
    "McpSettings",
    "TransportGuard",
    "build_mcp_app",
    "render_refusal",
]


@dataclass(frozen=True)
class McpSettings:
    max_body_bytes: int
    max_json_depth: int
    # False: every request goes through the SDK kernel (the differential test's reference).
    fast_path: bool = True


async def render_refusal(
    request: web.Request, error: CallError, headers: dict[str, str]
) -> web.StreamResponse:
    """The gate's refusals as this port answers them: RFC 6750 for tokens, else JSON-RPC errors."""
    if isinstance(error, Unauthorized):
        body = {"error": "invalid_token", "error_description": error.detail}
        return web.json_response(body, status=401, headers=headers)
    if isinstance(error, Forbidden) and "required_scopes" in error.extra:
        body = {"error": "insufficient_scope", "error_description": error.detail}
        return web.json_response(body, status=403, headers=headers)
    code = SERVER_ERROR if error.status >= 500 or error.status == 429 else INVALID_REQUEST
    exchange = exchange_of(request)
    if exchange.stream is not None and exchange.stream.started:
        # The answer is already an event stream (a timeout during the call): it ends with the error.
        error_body = {"code": code, "message": error.detail}
        return await exchange.stream.finish(
            {"jsonrpc": "2.0", "id": exchange.request_id, "error": error_body}
        )
    return rpc_error(None, code, error.detail, status=error.status, headers=headers)


# What the gate needs to know about this port: probes and the OAuth metadata are public.
MCP_PORT = Port(
    "mcp",
    render_refusal,
    frozenset({"/healthz", PRM_PATH, PRM_PATH + MCP_PATH}),
    metadata_path=PRM_PATH + MCP_PATH,
)
SERVICE = web.AppKey("mcp_service", McpService)
FAST_PATH = web.AppKey("mcp_fast_path", FastPath)  # absent when every request goes to the kernel


def build_mcp_app(
    engine: Engine,
    catalog: Catalog,
    *,
    settings: McpSettings,
    environ: Mapping[str, str] | None = None,
    oauth_metadata: Mapping[str, Any] | None = None,
) -> web.Application:
    """The MCP port's app; the gate (:mod:`host.gate`, with :data:`MCP_PORT`) goes first in its middlewares.

    ``oauth_metadata``: the RFC 9728 document to serve when the port is an OAuth resource server.
    """
    service = McpService(engine, catalog, environ=environ)
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SERVICE] = service

    async def lifespan(app: web.Application) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            app[_LIFESPAN] = await stack.enter_async_context(service.server.lifespan(service.server))
            yield

    app.cleanup_ctx.append(lifespan)
    handler = _McpHandler(service, settings)
    if handler.fast is not None:
        app[FAST_PATH] = handler.fast
    app.router.add_route("*", MCP_PATH, handler.handle)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_get("/healthz", healthz)
    if oauth_metadata is not None:
        document = dict(oauth_metadata)

        async def protected_resource(request: web.Request) -> web.Response:
            return web.json_response(document)

        # RFC 9728: at the well-known root, and suffixed with the resource path.
        app.router.add_get(PRM_PATH, protected_resource)
        app.router.add_get(PRM_PATH + MCP_PATH, protected_resource)
    return app


@dataclass(frozen=True)
class _Envelope:
    """A JSON-RPC request that passed the envelope checks."""

    request_id: str | int
    method: str
    params: dict[str, Any] | None
    message: dict[str, Any]


@dataclass(frozen=True)
class _Era:
    """The protocol era of a request and what the kernel needs to know of it."""

    version: str
    headers: dict[str, str]  # lowered names, trimmed values
    modern: bool
    client_info: Any = None  # 2026-07-28: the request's envelope
    client_capabilities: Any = None

    def connection(self) -> Connection:
        return Connection.from_envelope(self.version, self.client_info, self.client_capabilities)


# A check that applies to one method only, before the kernel: (params, header pairs) -> rejection.
_MethodCheck = Callable[[Mapping[str, Any], list[tuple[str, str]]], InboundLadderRejection | None]


class _McpHandler:
    def __init__(self, service: McpService, settings: McpSettings) -> None:
        self.service = service
        self.settings = settings
        self.fast = FastPath(service) if settings.fast_path else None
        # 2026-07-28 checks that depend on the method (the rest is the same for every method).
        self.method_checks: dict[str, _MethodCheck] = {"tools/call": self._param_header_rejection}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        # The gate has checked Host, Origin, credentials, limits and the body; it times the request.
        principal = principal_of(request)
        exchange_of(request).principal = principal.name if principal is not ANONYMOUS else None
        return await self._dispatch(request)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        """The MCP transport rules in order, each step answering the request or passing it on."""
        rejection = _http_rejection(request)
        if rejection is not None:
            return rejection
        envelope = await self._read_envelope(request)
        if isinstance(envelope, web.StreamResponse):
            return envelope
        mcp_message(request, envelope.request_id, envelope.method, envelope.params)  # its span's name
        era = self._negotiate(envelope, request.headers)
        if isinstance(era, web.StreamResponse):
            return era
        if self.fast is not None:
            answer = await self.fast.answer(
                request, envelope.request_id, envelope.method, envelope.params, era.version
            )
            if answer is not None:
                return answer
        return await self._exchange(request, envelope, era)

    async def _read_envelope(self, request: web.Request) -> _Envelope | web.StreamResponse:
        # The gate has read the body (JSON, within the size limit): this is its copy.
        raw, depth = await request.read(), self.settings.max_json_depth
        try:
            message = load_json_fast(raw, depth) if self.fast is not None else load_json(raw, depth)
        except BadRequest as exc:
            return rpc_error(None, PARSE_ERROR, f"Parse error: {exc.detail}", status=400)
        return _envelope(message)

    def _negotiate(self, envelope: _Envelope, headers: Mapping[str, str]) -> _Era | web.StreamResponse:
        """The request's protocol era; a 2026-07-28 request must also pass its routing-header rules."""
        # RFC 9110 §5.5: a field value excludes the whitespace around it (aiohttp keeps trailing blanks).
        pairs = [(name.lower(), value.strip(" \t")) for name, value in headers.items()]
        lowered = dict(pairs)
        version = lowered.get("mcp-protocol-version")
        if version is None or version in HANDSHAKE_PROTOCOL_VERSIONS:
            return _Era(version or DEFAULT_NEGOTIATED_VERSION, lowered, modern=False)
        request_id = envelope.request_id
        duplicated = find_duplicated_routing_header(pairs)
        if duplicated is not None:
            return rpc_error(request_id, -32020, f"{duplicated} header appears more than once", status=400)
        verdict = classify_inbound_request(envelope.message, headers=lowered)
        if isinstance(verdict, InboundLadderRejection):
            return _ladder_error(request_id, verdict, ERROR_CODE_HTTP_STATUS.get(verdict.code, 400))
        method_check = self.method_checks.get(envelope.method)
        rejection = method_check(envelope.params or {}, pairs) if method_check is not None else None
        if rejection is not None:
            return _ladder_error(request_id, rejection, 400)
        return _Era(verdict.protocol_version, lowered, True, verdict.client_info, verdict.client_capabilities)

    async def _exchange(self, request: web.Request, envelope: _Envelope, era: _Era) -> web.StreamResponse:
        """Hand the request to the kernel; answer in JSON, or end the event stream it started."""
        # Notifications about the call can travel only on an event stream the client accepts.
        stream = EventStream(request) if accepts_event_stream(request.headers.get("Accept", "")) else None
        exchange = exchange_of(request)
        exchange.stream, exchange.request_id = stream, envelope.request_id
        dctx = OneShotDispatchContext(
            transport=TransportContext(kind="streamable-http", can_send_request=False, headers=era.headers),
            request_id=envelope.request_id,
            message_metadata=ServerMessageMetadata(request_context=request),
            progress_token=progress_token_from_params(envelope.params),
            sink=stream,
        )
        try:
            outcome = await _settle(
                serve_one(
                    self.service.server,
                    dctx,
                    envelope.method,
                    envelope.params,
                    connection=era.connection(),
                    lifespan_state=request.app[_LIFESPAN],
                )
            )
        finally:
            if stream is not None:
                stream.close()
        if stream is None or not stream.started:
            return reply(request, envelope.request_id, outcome, modern=era.modern)
        return await finish_stream(stream, envelope.request_id, outcome)

    def _param_header_rejection(
        self, params: Mapping[str, Any], headers: list[tuple[str, str]]
    ) -> InboundLadderRejection | None:
        """SEP-2243: arguments the tool's schema mirrors into ``Mcp-Param-*`` headers must match them."""
        name = params.get("name")
        entry = self.service.tools.get(name) if isinstance(name, str) else None
        arguments = params.get("arguments")
        arguments = {} if arguments is None else arguments
        if entry is None or not entry.param_headers or not isinstance(arguments, Mapping):
            return None  # the kernel answers an unknown tool or malformed arguments
        return validate_mcp_param_headers(entry.wire.input_schema, arguments, CIMultiDict(headers))


def _http_rejection(request: web.Request) -> web.Response | None:
    """The HTTP method, Accept and Content-Type rules of Streamable HTTP (stateless)."""
    headers = request.headers
    if request.method != "POST":
        # Stateless server: no GET stream to open, no session to DELETE.
        return rpc_error(
            None,
            INVALID_REQUEST,
            f"{request.method} is not supported; POST JSON-RPC here",
            status=405,
            headers={"Allow": "POST"},
        )
    if not accepts_json(headers.get("Accept", "")):
        return rpc_error(None, INVALID_REQUEST, "Accept must include application/json", status=406)
    if media_type_of(headers.get("Content-Type")) != "application/json":  # parameters (charset) allowed
        return rpc_error(None, INVALID_REQUEST, "Content-Type must be application/json", status=415)
    return None


def _envelope(message: Any) -> _Envelope | web.Response:
    """A single JSON-RPC request, or the answer to anything else (notifications and responses: 202)."""
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0" or "method" not in message:
        is_response = isinstance(message, dict) and ("result" in message or "error" in message)
        if is_response and "method" not in message:
            return web.Response(status=202)  # a client response: nothing to answer (no back-channel)
        return rpc_error(
            None,
            INVALID_REQUEST,
            "Body must be a single JSON-RPC 2.0 request or notification object",
            status=400,
        )
    if "id" not in message:
        return web.Response(status=202)  # notifications need no answer on a stateless server
    request_id, method, params = message["id"], message["method"], message.get("params")
    if (
        not isinstance(request_id, (str, int))
        or isinstance(request_id, bool)
        or not isinstance(method, str)
        or (params is not None and not isinstance(params, dict))
    ):
        return rpc_error(None, INVALID_REQUEST, "Invalid JSON-RPC request: id, method or params", status=400)
    return _Envelope(request_id, method, params, message)


def _ladder_error(request_id: Any, rejection: InboundLadderRejection, status: int) -> web.Response:
    return rpc_error(request_id, rejection.code, rejection.message, data=rejection.data, status=status)


async def _settle(call: Awaitable[dict[str, Any]]) -> dict[str, Any] | ErrorData:
    """The call's result, or the JSON-RPC error its exception maps to."""
    try:
        return await call
    except Exception as exc:
        return modern_error_data(exc)
