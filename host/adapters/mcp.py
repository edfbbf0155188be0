"""The MCP adapter: registered tools over Streamable HTTP, stateless, JSON responses.

The official SDK's low-level :class:`mcp.server.Server` is the protocol kernel
(version negotiation, both protocol eras, result validation). This module is
its HTTP front, written as a native aiohttp handler that hands each POST to
the kernel's single-exchange driver ``serve_one``, as the SDK's own stateless
transport does. Bridging the SDK's Starlette app through an ASGI adapter would
busy-loop the shared event loop on any SSE stream (see docs in shared/).

Before the kernel sees a request, the transport rules of the MCP spec are
applied here: Host and Origin (DNS rebinding), method, Accept, Content-Type,
body size, JSON-RPC envelope.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import anyio
from aiohttp import web
from mcp.server import Server, ServerRequestContext
from mcp.server.connection import Connection
from mcp.server.runner import modern_error_data, serve_one
from mcp.shared.exceptions import MCPError, NoBackChannelError
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    InboundLadderRejection,
    classify_inbound_request,
    find_duplicated_routing_header,
)
from mcp.shared.message import MessageMetadata, ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp.types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    CallToolRequestParams,
    CallToolResult,
    GetPromptRequestParams,
    GetPromptResult,
    ListPromptsResult,
    ListResourcesResult,
    ListResourceTemplatesResult,
    ListToolsResult,
    PaginatedRequestParams,
    Prompt,
    PromptArgument,
    PromptMessage,
    ReadResourceRequestParams,
    ReadResourceResult,
    Resource,
    ResourceTemplate,
    TextContent,
    TextResourceContents,
    Tool,
    ToolAnnotations,
)
from mcp_types import DEFAULT_NEGOTIATED_VERSION
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from host import __version__, templates
from host.engine import Engine, Outcome, Target
from host.errors import BadRequest, CallError, Forbidden, InvalidArguments, Unauthorized
from host.inbound import ANONYMOUS, Authenticator, ConcurrencyLimiter, check_depth
from host.model import McpPrompt, McpResource, McpTool, UpstreamResponse
from host.plugins import Catalog

log = logging.getLogger("host.mcp")

MCP_PATH = "/mcp"
MOCK_HEADER = "X-Host-Mock"
LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*")
LOOPBACK_ORIGINS = tuple(f"{scheme}://{host}" for scheme in ("http", "https") for host in LOOPBACK_HOSTS)

_MOCKED = "host.mcp.mocked"
_STATE = web.AppKey("mcp_state", Any)


@dataclass(frozen=True)
class _ToolEntry:
    spec: McpTool
    wire: Tool
    target: Target


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
        return bool(host) and _matches(host or "", self.allowed_hosts)

    def origin_ok(self, origin: str | None) -> bool:
        return origin is None or _matches(origin, self.allowed_origins)


def _matches(value: str, patterns: Iterable[str]) -> bool:
    for pattern in patterns:
        if value == pattern:
            return True
        if pattern.endswith(":*"):
            base = pattern[:-2]
            if value == base or (value.startswith(base + ":") and value[len(base) + 1 :].isdigit()):
                return True
    return False


@dataclass
class McpService:
    """The SDK server and what it serves: tools, resources, prompts."""

    engine: Engine
    catalog: Catalog
    tools: dict[str, _ToolEntry] = field(default_factory=dict)
    resources: dict[str, tuple[McpResource, Target | None]] = field(default_factory=dict)
    prompts: dict[str, McpPrompt] = field(default_factory=dict)
    server: Server[Any] = field(init=False)

    def __post_init__(self) -> None:
        for contributed in self.catalog.tools.values():
            self._add_tool(contributed.item)
        for resource in self.catalog.resources.values():
            item = resource.item
            target = (
                None
                if item.operation is None
                else self.engine.target(item.operation, map_arguments=item.map_arguments, output=item.output)
            )
            self.resources[item.uri] = (item, target)
        self.prompts = {name: contributed.item for name, contributed in self.catalog.prompts.items()}
        handlers: dict[str, Any] = {"on_list_tools": self._list_tools, "on_call_tool": self._call_tool}
        if self.resources:
            handlers.update(
                on_list_resources=self._list_resources,
                on_list_resource_templates=self._list_resource_templates,
                on_read_resource=self._read_resource,
            )
        if self.prompts:
            handlers.update(on_list_prompts=self._list_prompts, on_get_prompt=self._get_prompt)
        self.server = Server(
            "capability-host",
            version=__version__,
            instructions="Tools of the capabilities installed on this host. Each tool calls an upstream API.",
            **handlers,
        )
        # The default OpenTelemetry middleware costs ~10% of kernel time and we export no traces.
        self.server.middleware.clear()

    def _add_tool(self, tool: McpTool) -> None:
        operation_schema = self.engine.validator_for(tool.operation).schema
        schema = dict(tool.input_schema or operation_schema)
        schema.setdefault("type", "object")  # the protocol requires an object root
        hints = tool.hints
        annotations = ToolAnnotations(
            title=tool.title,
            read_only_hint=hints.read_only,
            destructive_hint=hints.destructive,
            idempotent_hint=hints.idempotent,
            open_world_hint=hints.open_world,
        )
        wire = Tool(
            name=tool.name,
            title=tool.title,
            description=tool.description,
            input_schema=schema,
            annotations=annotations,
        )
        target = self.engine.target(
            tool.operation,
            input_schema=tool.input_schema,
            map_arguments=tool.map_arguments,
            output=tool.output,
        )
        self.tools[tool.name] = _ToolEntry(tool, wire, target)

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        return ListToolsResult(tools=[entry.wire for entry in self.tools.values()])

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: CallToolRequestParams
    ) -> CallToolResult:
        entry = self.tools.get(params.name)
        if entry is None:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool: {params.name}")
        try:
            outcome = await self.engine.run(entry.target, params.arguments or {})
        except InvalidArguments as exc:
            lines = [f"- {key}: {'; '.join(messages)}" for key, messages in exc.errors.items()]
            return _error_result(
                "Invalid arguments; nothing was sent upstream:\n" + "\n".join(lines), {"errors": exc.errors}
            )
        except CallError as exc:
            return _error_result(f"{exc.title}: {exc.detail}", {"status": exc.status, **exc.extra})
        if outcome.response.mocked and isinstance(ctx.request, web.Request):
            ctx.request[_MOCKED] = True
        if outcome.response.status >= 400:
            return _upstream_error_result(entry.spec.operation, outcome.response)
        return _success_result(outcome)

    async def _list_resources(
        self, ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListResourcesResult:
        return ListResourcesResult(
            resources=[
                Resource(
                    uri=r.uri, name=r.name, title=r.title, description=r.description, mime_type=r.mime_type
                )
                for r, _ in self.resources.values()
                if not templates.names(r.uri, single_brace=True)
            ]
        )

    async def _list_resource_templates(
        self, ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListResourceTemplatesResult:
        return ListResourceTemplatesResult(
            resource_templates=[
                ResourceTemplate(
                    uri_template=r.uri,
                    name=r.name,
                    title=r.title,
                    description=r.description,
                    mime_type=r.mime_type,
                )
                for r, _ in self.resources.values()
                if templates.names(r.uri, single_brace=True)
            ]
        )

    async def _read_resource(
        self, ctx: ServerRequestContext[Any], params: ReadResourceRequestParams
    ) -> ReadResourceResult:
        uri = str(params.uri)
        for resource, target in self.resources.values():
            arguments = _match_uri(resource.uri, uri)
            if arguments is None:
                continue
            if target is None:
                text = resource.text or ""
            else:
                try:
                    outcome = await self.engine.run(target, arguments)
                except CallError as exc:
                    raise MCPError(code=INTERNAL_ERROR, message=f"{exc.title}: {exc.detail}") from None
                if outcome.response.status >= 400:
                    raise MCPError(
                        code=INTERNAL_ERROR, message=f"upstream answered {outcome.response.status}"
                    )
                text = _as_text(outcome)
            return ReadResourceResult(
                contents=[TextResourceContents(uri=uri, mime_type=resource.mime_type, text=text)]
            )
        raise MCPError(code=INVALID_PARAMS, message=f"Resource not found: {uri}", data={"uri": uri})

    async def _list_prompts(
        self, ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListPromptsResult:
        return ListPromptsResult(
            prompts=[
                Prompt(
                    name=p.name,
                    title=p.title,
                    description=p.description,
                    arguments=[
                        PromptArgument(name=a.name, description=a.description, required=a.required)
                        for a in p.arguments
                    ],
                )
                for p in self.prompts.values()
            ]
        )

    async def _get_prompt(
        self, ctx: ServerRequestContext[Any], params: GetPromptRequestParams
    ) -> GetPromptResult:
        prompt = self.prompts.get(params.name)
        if prompt is None:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown prompt: {params.name}")
        arguments = params.arguments or {}
        missing = [a.name for a in prompt.arguments if a.required and a.name not in arguments]
        if missing:
            raise MCPError(code=INVALID_PARAMS, message=f"Missing prompt arguments: {', '.join(missing)}")
        messages = [
            PromptMessage(
                role="assistant" if role == "assistant" else "user",
                content=TextContent(type="text", text=templates.render(text, arguments)),
            )
            for role, text in prompt.messages
        ]
        return GetPromptResult(description=prompt.description, messages=messages)


def _match_uri(pattern: str, uri: str) -> dict[str, str] | None:
    """Arguments when ``uri`` matches the (possibly templated) resource ``pattern``."""
    if pattern == uri:
        return {}
    names = templates.names(pattern, single_brace=True)
    if not names:
        return None
    regex = re.escape(pattern)
    for name in names:
        for form in (re.escape("{{" + name + "}}"), re.escape("{" + name + "}")):
            regex = regex.replace(form, f"(?P<{_group(name)}>[^/]+)", 1)
    match = re.fullmatch(regex, uri)
    if match is None:
        return None
    return {name: unquote(match.group(_group(name))) for name in names}


def _group(name: str) -> str:
    return "g_" + re.sub(r"\W", "_", name)


def _as_text(outcome: Outcome) -> str:
    if outcome.mapped:
        return json.dumps(outcome.value, ensure_ascii=False)
    return outcome.response.body.decode("utf-8", "replace")


def _error_result(text: str, structured: dict[str, Any] | None = None) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=structured, is_error=True
    )


def _upstream_error_result(operation: str, response: UpstreamResponse) -> CallToolResult:
    try:
        body = response.json()
    except ValueError:
        body = response.body[:500].decode("utf-8", "replace")
    message = body.get("message") if isinstance(body, dict) else None
    text = f"The upstream of {operation} answered {response.status}"
    text += f": {message}" if isinstance(message, str) else "."
    if isinstance(body, dict) and isinstance(body.get("errors"), dict):
        text += "\n" + "\n".join(f"- {key}: {value}" for key, value in body["errors"].items())
    retry_after = response.headers.get("Retry-After")
    if retry_after:
        text += f"\nRetry after {retry_after} s."
    return _error_result(text, {"status": response.status, "body": body})


def _success_result(outcome: Outcome) -> CallToolResult:
    if outcome.mapped:
        value = outcome.value
    else:
        try:
            value = outcome.response.document()
        except ValueError:
            text = outcome.response.body.decode("utf-8", "replace")
            return CallToolResult(content=[TextContent(type="text", text=text)])
    if value is None:
        return CallToolResult(content=[])
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    structured = value if isinstance(value, dict) else None
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)


@dataclass
class _OneShotDispatchContext:
    """The SDK's ``DispatchContext`` for one HTTP exchange: no back-channel to the client."""

    transport: TransportContext
    request_id: Any
    message_metadata: MessageMetadata
    cancel_requested: anyio.Event = field(default_factory=anyio.Event)
    can_send_request: bool = False

    async def send_raw_request(
        self, method: str, params: Mapping[str, Any] | None, opts: Any = None
    ) -> dict[str, Any]:
        raise NoBackChannelError(method)

    async def notify(self, method: str, params: Mapping[str, Any] | None, opts: Any = None) -> None:
        return None  # JSON responses only: progress and log notifications are dropped

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        return None


@dataclass(frozen=True)
class McpSettings:
    max_body_bytes: int
    max_json_depth: int
    request_timeout: float


PRM_PATH = "/.well-known/oauth-protected-resource"


def build_mcp_app(
    engine: Engine,
    catalog: Catalog,
    *,
    guard: TransportGuard,
    settings: McpSettings,
    authenticator: Authenticator,
    limiter: ConcurrencyLimiter,
) -> web.Application:
    service = McpService(engine, catalog)
    app = web.Application(client_max_size=settings.max_body_bytes)

    async def lifespan(app: web.Application) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            app[_STATE] = await stack.enter_async_context(service.server.lifespan(service.server))
            yield

    app.cleanup_ctx.append(lifespan)
    handler = _McpHandler(service, guard, settings, authenticator, limiter)
    app.router.add_route("*", MCP_PATH, handler.handle)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_get("/healthz", healthz)
    if authenticator.oauth is not None:
        document = authenticator.oauth.metadata()

        async def protected_resource(request: web.Request) -> web.Response:
            return web.json_response(document)

        # RFC 9728: at the well-known root, and suffixed with the resource path.
        app.router.add_get(PRM_PATH, protected_resource)
        app.router.add_get(PRM_PATH + MCP_PATH, protected_resource)
    return app


def _rpc_error(
    request_id: Any,
    code: int,
    message: str,
    *,
    status: int,
    data: Any = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return web.json_response(
        {"jsonrpc": "2.0", "id": request_id, "error": error}, status=status, headers=headers
    )


class _McpHandler:
    def __init__(
        self,
        service: McpService,
        guard: TransportGuard,
        settings: McpSettings,
        authenticator: Authenticator,
        limiter: ConcurrencyLimiter,
    ) -> None:
        self.service = service
        self.guard = guard
        self.settings = settings
        self.max_body_bytes = settings.max_body_bytes
        self.authenticator = authenticator
        self.limiter = limiter

    async def handle(self, request: web.Request) -> web.StreamResponse:
        headers = request.headers
        if not self.guard.host_ok(headers.get("Host")):
            log.warning("MCP: refused Host header (DNS-rebinding guard); add it to [server] allowed_hosts")
            return _rpc_error(None, INVALID_REQUEST, "Host header not allowed", status=421)
        if not self.guard.origin_ok(headers.get("Origin")):
            log.warning("MCP: refused Origin header; add it to [server] allowed_origins")
            return _rpc_error(None, INVALID_REQUEST, "Origin not allowed", status=403)
        metadata_url = f"{request.scheme}://{request.host}{PRM_PATH}{MCP_PATH}"
        try:
            principal = await self.authenticator.authenticate(headers)
        except Unauthorized as exc:
            return web.json_response(
                {"error": "invalid_token", "error_description": exc.detail},
                status=401,
                headers={"WWW-Authenticate": self.authenticator.challenge(metadata_url)},
            )
        except Forbidden as exc:
            scope = " ".join(exc.extra.get("required_scopes", []))
            challenge = (
                f'Bearer error="insufficient_scope", scope="{scope}", resource_metadata="{metadata_url}"'
            )
            return web.json_response(
                {"error": "insufficient_scope", "error_description": exc.detail},
                status=403,
                headers={"WWW-Authenticate": challenge},
            )
        client = principal.name if principal is not ANONYMOUS else (request.remote or "?")
        try:
            self.limiter.acquire(client)
        except CallError as exc:
            return _rpc_error(
                None,
                -32000,
                exc.detail,
                status=exc.status,
                headers={"Retry-After": f"{exc.retry_after or 1:g}"},
            )
        try:
            async with asyncio.timeout(self.settings.request_timeout):
                return await self._dispatch(request)
        except TimeoutError:
            return _rpc_error(
                None, -32000, f"the request took longer than {self.settings.request_timeout:g} s", status=504
            )
        finally:
            self.limiter.release(client)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        headers = request.headers
        if request.method != "POST":
            # Stateless server: no GET stream to open, no session to DELETE.
            return _rpc_error(
                None,
                INVALID_REQUEST,
                f"{request.method} is not supported; POST JSON-RPC here",
                status=405,
                headers={"Allow": "POST"},
            )
        if not _accepts_json(headers.get("Accept", "")):
            return _rpc_error(None, INVALID_REQUEST, "Accept must include application/json", status=406)
        if not headers.get("Content-Type", "").lower().startswith("application/json"):
            return _rpc_error(None, INVALID_REQUEST, "Content-Type must be application/json", status=400)
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _rpc_error(
                None, INVALID_REQUEST, f"body is larger than {self.max_body_bytes} bytes", status=413
            )
        try:
            message = json.loads(raw)
            check_depth(message, self.settings.max_json_depth)
        except (ValueError, RecursionError):
            return _rpc_error(None, PARSE_ERROR, "Parse error", status=400)
        except BadRequest as exc:
            return _rpc_error(None, INVALID_REQUEST, exc.detail, status=400)
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0" or "method" not in message:
            if (
                isinstance(message, dict)
                and "method" not in message
                and ("result" in message or "error" in message)
            ):
                return web.Response(status=202)  # a client response: nothing to answer (no back-channel)
            return _rpc_error(
                None,
                INVALID_REQUEST,
                "Body must be a single JSON-RPC 2.0 request or notification object",
                status=400,
            )
        if "id" not in message:
            return web.Response(status=202)  # notifications need no answer on a stateless server
        request_id = message["id"]
        method, params = message["method"], message.get("params")
        if (
            not isinstance(request_id, (str, int))
            or isinstance(request_id, bool)
            or not isinstance(method, str)
            or (params is not None and not isinstance(params, dict))
        ):
            return _rpc_error(
                None, INVALID_REQUEST, "Invalid JSON-RPC request: id, method or params", status=400
            )

        lowered = {k.lower(): v for k, v in headers.items()}
        version = lowered.get("mcp-protocol-version")
        modern = version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS
        if modern:
            duplicated = find_duplicated_routing_header((k.lower(), v) for k, v in headers.items())
            if duplicated is not None:
                return _rpc_error(
                    request_id, -32020, f"{duplicated} header appears more than once", status=400
                )
            verdict = classify_inbound_request(message, headers=lowered)
            if isinstance(verdict, InboundLadderRejection):
                return _rpc_error(
                    request_id,
                    verdict.code,
                    verdict.message,
                    data=verdict.data,
                    status=ERROR_CODE_HTTP_STATUS.get(verdict.code, 400),
                )
            connection = Connection.from_envelope(
                verdict.protocol_version, verdict.client_info, verdict.client_capabilities
            )
        else:
            connection = Connection.from_envelope(version or DEFAULT_NEGOTIATED_VERSION, None, None)

        dctx = _OneShotDispatchContext(
            transport=TransportContext(kind="streamable-http", can_send_request=False, headers=lowered),
            request_id=request_id,
            message_metadata=ServerMessageMetadata(request_context=request),
        )
        try:
            result = await serve_one(
                self.service.server,
                dctx,
                method,
                params,
                connection=connection,
                lifespan_state=request.app[_STATE],
            )
        except Exception as exc:
            error = modern_error_data(exc)
            # The handshake era answers JSON-RPC errors with 200; 2026-07-28 maps codes to statuses.
            status = ERROR_CODE_HTTP_STATUS.get(error.code, 500) if modern else 200
            return _rpc_error(request_id, error.code, error.message, data=error.data, status=status)
        response = web.json_response(
            {"jsonrpc": "2.0", "id": request_id, "result": result}, dumps=_compact_dumps
        )
        if request.get(_MOCKED):
            response.headers[MOCK_HEADER] = "true"
        return response


def _compact_dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _accepts_json(accept: str) -> bool:
    if not accept:
        return True  # no preference stated: JSON is acceptable
    kinds = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    return bool(kinds & {"application/json", "application/*", "*/*"})
