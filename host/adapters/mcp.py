"""The MCP adapter: registered tools over Streamable HTTP, stateless, JSON responses.

The official SDK's low-level :class:`mcp.server.Server` is the protocol kernel
(version negotiation, both protocol eras, result validation). This module is
its HTTP front, written as a native aiohttp handler that hands each POST to
the kernel's single-exchange driver ``serve_one``, as the SDK's own stateless
transport does. Bridging the SDK's Starlette app through an ASGI adapter would
busy-loop the shared event loop on any SSE stream (see docs in shared/).

Before the kernel sees a request, the transport rules of the MCP spec are
applied here: Host and Origin (DNS rebinding), method, Accept, Content-Type,
body size, JSON-RPC envelope, the 2026-07-28 routing and ``Mcp-Param-*`` headers.

Each POST is answered with one JSON response, unless the call sends the client
notifications (progress, log messages: see :mod:`host.reporting`) and the client
accepts ``text/event-stream``: then the response switches to Server-Sent Events
at the first notification, and the result is the stream's last event. Nothing
is kept between requests: the multi-round ``requestState`` of 2026-07-28 input
requests travels encrypted with the client.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import unquote

import anyio
from aiohttp import web
from mcp.server import Server, ServerRequestContext
from mcp.server.connection import Connection, allowed_log_levels
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp.server.runner import modern_error_data, serve_one
from mcp.shared.exceptions import MCPError, NoBackChannelError
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    InboundLadderRejection,
    classify_inbound_request,
    find_duplicated_routing_header,
    validate_mcp_param_headers,
    x_mcp_header_map,
)
from mcp.shared.jsonrpc_dispatcher import progress_token_from_params
from mcp.shared.message import MessageMetadata, ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp.types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    AudioContent,
    BlobResourceContents,
    CallToolRequestParams,
    CallToolResult,
    CompleteRequestParams,
    CompleteResult,
    Completion,
    EmbeddedResource,
    EmptyResult,
    ErrorData,
    GetPromptRequestParams,
    GetPromptResult,
    ImageContent,
    InputRequiredResult,
    ListPromptsResult,
    ListResourcesResult,
    ListResourceTemplatesResult,
    ListToolsResult,
    LoggingMessageNotification,
    LoggingMessageNotificationParams,
    PaginatedRequestParams,
    Prompt,
    PromptArgument,
    PromptMessage,
    PromptReference,
    ReadResourceRequestParams,
    ReadResourceResult,
    Resource,
    ResourceTemplate,
    SetLevelRequestParams,
    TextContent,
    TextResourceContents,
    Tool,
    ToolAnnotations,
)
from mcp.types import ContentBlock as WireContent
from mcp_types import DEFAULT_NEGOTIATED_VERSION, MISSING_REQUIRED_CLIENT_CAPABILITY
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from multidict import CIMultiDict
from pydantic import ValidationError

from host import __version__, templates
from host.engine import Engine, Outcome, Target
from host.errors import BadRequest, CallError, Forbidden, InvalidArguments, StartupError, Unauthorized
from host.inbound import ANONYMOUS, Authenticator, CallerCheck, ConcurrencyLimiter, check_depth
from host.model import (
    AudioBlock,
    ContentBlock,
    ImageBlock,
    InputHook,
    InputRequired,
    InputRound,
    McpPrompt,
    McpResource,
    McpTool,
    ResourceBlock,
    TextBlock,
    ToolContent,
    UpstreamResponse,
)
from host.observability import REQUEST_ID_HEADER, request_id
from host.plugins import Catalog
from host.reporting import check_level, reporting
from host.secrets import Secret

log = logging.getLogger("host.mcp")

MCP_PATH = "/mcp"
MOCK_HEADER = "X-Host-Mock"
LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*")
LOOPBACK_ORIGINS = tuple(f"{scheme}://{host}" for scheme in ("http", "https") for host in LOOPBACK_HOSTS)

DEFAULT_INSTRUCTIONS = "Tools of the capabilities installed on this host. Each tool calls an upstream API."
SERVER_NAME = "capability-host"
# Secrets (>= 32 bytes each, comma-separated) encrypting the requestState of 2026-07-28 input
# requests: the first seals, all open (rotation). Every worker and replica must share them;
# without the variable each process uses a key of its own.
STATE_KEYS_ENV = "HOST_REQUEST_STATE_KEYS"
SSE_PING_INTERVAL = 15.0  # seconds between keep-alive comments on a quiet event stream
SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",
}

_MOCKED = "host.mcp.mocked"
_PRINCIPAL = "host.mcp.principal"
_STREAM = "host.mcp.stream"
_REQUEST_ID = "host.mcp.request_id"
_STATE = web.AppKey("mcp_state", Any)


@dataclass(frozen=True)
class _ToolEntry:
    spec: McpTool
    wire: Tool
    target: Target
    param_headers: bool  # the input schema mirrors arguments into Mcp-Param-* headers
    caller_check: CallerCheck | None = None  # the tool's own credential (a capability file's exposes auth)


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
    environ: Mapping[str, str] | None = None  # where STATE_KEYS_ENV is read; None: os.environ
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
        if self.prompts or self.resources:
            handlers.update(on_completion=self._complete)
        name, instructions = self.catalog.mcp_identity or (SERVER_NAME, DEFAULT_INSTRUCTIONS)
        self.server = Server(name, version=__version__, instructions=instructions or None, **handlers)
        # Handshake-era logging/setLevel (the 2026-07-28 kernel answers it -32601 by itself). Registered
        # directly: the constructor argument only adds a deprecation warning.
        self.server.add_request_handler("logging/setLevel", SetLevelRequestParams, self._set_logging_level)
        # The default OpenTelemetry middleware costs ~10% of kernel time and we export no traces. The
        # request-state boundary encrypts, binds and expires the requestState of input requests.
        self.server.middleware.clear()
        security = request_state_security(os.environ if self.environ is None else self.environ)
        self.server.middleware.append(RequestStateBoundary(security, default_audience=SERVER_NAME))

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
            label=f"tool {tool.name}",
        )
        check = None
        if tool.caller_auth is not None:
            check = CallerCheck(
                tool.caller_auth,
                os.environ if self.environ is None else self.environ,
                f"MCP tool {tool.name!r}",
            )
        self.tools[tool.name] = _ToolEntry(tool, wire, target, bool(x_mcp_header_map(schema)), check)

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        return ListToolsResult(tools=[entry.wire for entry in self.tools.values()])

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: CallToolRequestParams
    ) -> CallToolResult | InputRequiredResult:
        entry = self.tools.get(params.name)
        if entry is None:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool: {params.name}")
        _require_client(ctx, entry.spec.requires_client)
        if entry.caller_check is not None:
            headers = ctx.request.headers if isinstance(ctx.request, web.Request) else {}
            try:
                entry.caller_check.check(headers)
            except Unauthorized as exc:
                return _error_result(f"Unauthorized: {exc.detail}; nothing was sent upstream")
        arguments: Mapping[str, Any] = params.arguments or {}
        if entry.spec.request_input is not None:
            answer = _ask(ctx, entry.spec.request_input, arguments, params.request_state)
            if isinstance(answer, InputRequired):
                if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
                    return _error_result(_input_unavailable(f"Tool {params.name}", answer))
                return _input_required(ctx, answer)
            arguments = answer
        try:
            outcome = await self._run(ctx, entry.target, arguments)
        except InvalidArguments as exc:
            lines = [f"- {key}: {'; '.join(messages)}" for key, messages in exc.errors.items()]
            return _error_result(
                "Invalid arguments; nothing was sent upstream:\n" + "\n".join(lines), {"errors": exc.errors}
            )
        except CallError as exc:
            return _error_result(f"{exc.title}: {exc.detail}", {"status": exc.status, **exc.extra})
        if outcome.response.status >= 400:
            return _upstream_error_result(entry.spec.operation, outcome.response)
        return _success_result(outcome)

    async def _run(
        self, ctx: ServerRequestContext[Any], target: Target, arguments: Mapping[str, Any]
    ) -> Outcome:
        """One operation call, its progress and log reports sent to the client before its result."""
        notifier = _Notifier(ctx)
        try:
            with reporting(notifier):
                outcome = await self.engine.run(target, arguments)
            if outcome.response.mocked and isinstance(ctx.request, web.Request):
                ctx.request[_MOCKED] = True  # before the reports, which may start the response
        finally:
            await notifier.aclose()
        return outcome

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
                return ReadResourceResult(
                    contents=[
                        TextResourceContents(uri=uri, mime_type=resource.mime_type, text=resource.text or "")
                    ]
                )
            try:
                outcome = await self._run(ctx, target, arguments)
            except CallError as exc:
                raise MCPError(code=INTERNAL_ERROR, message=f"{exc.title}: {exc.detail}") from None
            if outcome.response.status >= 400:
                raise MCPError(code=INTERNAL_ERROR, message=f"upstream answered {outcome.response.status}")
            return ReadResourceResult(contents=[_resource_contents(uri, resource.mime_type, outcome)])
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
    ) -> GetPromptResult | InputRequiredResult:
        prompt = self.prompts.get(params.name)
        if prompt is None:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown prompt: {params.name}")
        arguments: Mapping[str, Any] = params.arguments or {}
        if prompt.request_input is not None:
            answer = _ask(ctx, prompt.request_input, arguments, params.request_state)
            if isinstance(answer, InputRequired):
                if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
                    raise MCPError(
                        code=INVALID_REQUEST, message=_input_unavailable(f"Prompt {params.name}", answer)
                    )
                return _input_required(ctx, answer)
            arguments = answer
        missing = [a.name for a in prompt.arguments if a.required and a.name not in arguments]
        if missing:
            raise MCPError(code=INVALID_PARAMS, message=f"Missing prompt arguments: {', '.join(missing)}")
        messages = [
            PromptMessage(
                role="assistant" if role == "assistant" else "user",
                content=_prompt_content(content, arguments),
            )
            for role, content in prompt.messages
        ]
        return GetPromptResult(description=prompt.description, messages=messages)

    async def _complete(
        self, ctx: ServerRequestContext[Any], params: CompleteRequestParams
    ) -> CompleteResult:
        """Prompt arguments complete from their ``choices`` (case-insensitive prefix); the rest, nothing."""
        choices: tuple[str, ...] = ()
        if isinstance(params.ref, PromptReference):
            prompt = self.prompts.get(params.ref.name)
            if prompt is None:
                raise MCPError(code=INVALID_PARAMS, message=f"Unknown prompt: {params.ref.name}")
            argument = next((a for a in prompt.arguments if a.name == params.argument.name), None)
            choices = argument.choices if argument is not None else ()
        typed = params.argument.value.casefold()
        values = [choice for choice in choices if choice.casefold().startswith(typed)]
        return CompleteResult(
            completion=Completion(
                values=values[:_MAX_COMPLETIONS], total=len(values), has_more=len(values) > _MAX_COMPLETIONS
            )
        )

    async def _set_logging_level(
        self, ctx: ServerRequestContext[Any], params: SetLevelRequestParams
    ) -> EmptyResult:
        # Stateless: there is no session to remember the level in, so it is accepted and every
        # level of a call's log messages is sent on that call's stream (the handshake-era default).
        return EmptyResult()


_MAX_COMPLETIONS = 100  # the most values one completion/complete result may carry


def request_state_security(environ: Mapping[str, str]) -> RequestStateSecurity:
    """How requestState is protected: AES-256-GCM under the shared keys, or a process-local key.

    The SDK adds expiry (10 min), binding to the method, name and arguments of the call, and
    binding to the authenticated caller. Raises :class:`StartupError` for a key that is too short.
    """
    keys = [key.strip() for key in environ.get(STATE_KEYS_ENV, "").split(",") if key.strip()]
    if not keys:
        return RequestStateSecurity(keys=[os.urandom(32)], bind_principal=_principal_of)
    for key in keys:
        Secret(key)  # registers it for log redaction
    try:
        return RequestStateSecurity(keys=keys, bind_principal=_principal_of)
    except ValueError as exc:
        raise StartupError(f"environment variable {STATE_KEYS_ENV}: {exc}") from None


class _Notifier:
    """A call's progress and log messages (a :class:`host.reporting.CallReport`), sent in order.

    Reports arrive synchronously from the call; one task forwards them to the client on the
    request's own channel while the call runs, and :meth:`aclose` waits for the last one, so
    they all precede the result. Progress goes out only when the caller asked for it (a
    ``progressToken``); log messages only at the levels the request accepts (2026-07-28: its
    ``_meta`` log level, none without one; handshake era: every level).
    """

    def __init__(self, ctx: ServerRequestContext[Any]) -> None:
        self._ctx = ctx
        self._levels = allowed_log_levels(ctx.protocol_version, ctx.meta)
        self._queue: asyncio.Queue[Callable[[], Awaitable[None]] | None] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None

    def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        # The transport knows the caller's token (or, in process, its callback).
        self._send(partial(self._ctx.session.report_progress, progress, total, message))

    def log(self, level: str, data: Any, logger: str | None = None) -> None:
        check_level(level)
        if level in self._levels:
            params = LoggingMessageNotificationParams.model_validate(
                {"level": level, "data": data, "logger": logger}
            )
            notification = LoggingMessageNotification(params=params)
            request_id = self._ctx.request_id
            self._send(
                partial(self._ctx.session.send_notification, notification, related_request_id=request_id)
            )

    def _send(self, report: Callable[[], Awaitable[None]]) -> None:
        self._queue.put_nowait(report)
        if self._pump is None:
            self._pump = asyncio.get_running_loop().create_task(self._forward())

    async def _forward(self) -> None:
        while (report := await self._queue.get()) is not None:
            try:
                await report()
            except Exception:  # a report must never fail the call
                log.debug("MCP: could not send a progress or log notification", exc_info=True)

    async def aclose(self) -> None:
        """Wait until every report is sent; drop them when the call itself is being cancelled."""
        if self._pump is None:
            return
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            self._pump.cancel()
            return
        self._queue.put_nowait(None)
        await self._pump


def _principal_of(ctx: ServerRequestContext[Any, Any]) -> str | None:
    """Who a requestState is bound to: the authenticated caller, or nobody on an open host."""
    request = ctx.request
    return request.get(_PRINCIPAL) if isinstance(request, web.Request) else None


def _declared_capabilities(ctx: ServerRequestContext[Any]) -> frozenset[str]:
    """The client capabilities this request declared (none are known on handshake-era requests)."""
    capabilities = ctx.session.client_capabilities
    if capabilities is None:
        return frozenset()
    return frozenset(capabilities.model_dump(by_alias=True, exclude_none=True))


def _missing_capabilities(names: Iterable[str]) -> MCPError:
    missing = sorted(set(names))
    return MCPError(
        code=MISSING_REQUIRED_CLIENT_CAPABILITY,
        message=f"This request needs client capabilities the request did not declare: {', '.join(missing)}",
        data={"requiredCapabilities": {name: {} for name in missing}},
    )


def _require_client(ctx: ServerRequestContext[Any], required: Iterable[str]) -> None:
    """2026-07-28 requests declare their client's capabilities; refuse one that lacks a required one."""
    if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return  # the handshake declared them on another request: not known here
    declared = _declared_capabilities(ctx)
    missing = [name for name in required if name not in declared]
    if missing:
        raise _missing_capabilities(missing)


def _ask(
    ctx: ServerRequestContext[Any], hook: InputHook, arguments: Mapping[str, Any], request_state: str | None
) -> InputRequired | Mapping[str, Any]:
    """One round of a call's input hook, with the client's responses and the previous round's state."""
    raw = (ctx.params or {}).get("inputResponses")
    responses = (
        {str(key): value for key, value in raw.items() if isinstance(value, Mapping)}
        if isinstance(raw, Mapping)
        else {}
    )
    state: Any = {}
    if request_state:  # already decrypted and verified by the RequestStateBoundary
        try:
            state = json.loads(request_state)
        except ValueError:
            state = None
        if not isinstance(state, dict):
            raise MCPError(code=INVALID_PARAMS, message="Invalid or expired requestState")
    return hook(InputRound(arguments, responses, state, _declared_capabilities(ctx)))


def _input_required(ctx: ServerRequestContext[Any], ask: InputRequired) -> InputRequiredResult:
    missing = {request.capability for request in ask.requests.values()} - _declared_capabilities(ctx)
    if missing:
        raise _missing_capabilities(missing)
    wire: dict[str, Any] = {
        "resultType": "input_required",
        "inputRequests": {
            key: {"method": r.method, "params": dict(r.params)} for key, r in ask.requests.items()
        },
    }
    if ask.state is not None:
        wire["requestState"] = json.dumps(ask.state, separators=(",", ":"))  # sealed by the boundary
    try:
        return InputRequiredResult.model_validate(wire, by_name=False)
    except ValidationError:
        log.exception("MCP: %s asked the client for malformed input", ctx.method)
        raise MCPError(code=INTERNAL_ERROR, message="The server built an invalid input request") from None


def _input_unavailable(what: str, ask: InputRequired) -> str:
    methods = ", ".join(sorted({request.method for request in ask.requests.values()}))
    return (
        f"{what} needs input from the client ({methods}). This host serves MCP statelessly and asks "
        f"for input only with protocol 2026-07-28 input requests; reconnect with that version."
    )


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


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


_TEXTUAL_TYPES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/yaml",
        "application/x-yaml",
        "application/javascript",
    }
)


def _is_textual(media_type: str) -> bool:
    return (
        media_type.startswith("text/")
        or media_type in _TEXTUAL_TYPES
        or media_type.endswith(("+json", "+xml", "+yaml"))
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _resource_contents(
    uri: str, mime_type: str, outcome: Outcome
) -> TextResourceContents | BlobResourceContents:
    """An operation's answer as resource contents: a blob for binary bodies, else text."""
    if outcome.mapped:
        value = outcome.value
        if isinstance(value, bytes):
            return BlobResourceContents(uri=uri, mime_type=mime_type, blob=_b64(value))
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return TextResourceContents(uri=uri, mime_type=mime_type, text=text)
    response = outcome.response
    if response.format == "binary" or not _is_textual(_media_type(response.content_type)):
        return BlobResourceContents(uri=uri, mime_type=mime_type, blob=_b64(response.body))
    return TextResourceContents(uri=uri, mime_type=mime_type, text=response.body.decode("utf-8", "replace"))


def _wire_content(block: ContentBlock) -> WireContent:
    if isinstance(block, TextBlock):
        return TextContent(type="text", text=block.text)
    if isinstance(block, ImageBlock):
        return ImageContent(type="image", data=_b64(block.data), mime_type=block.mime_type)
    if isinstance(block, AudioBlock):
        return AudioContent(type="audio", data=_b64(block.data), mime_type=block.mime_type)
    resource: TextResourceContents | BlobResourceContents
    if block.text is not None:
        resource = TextResourceContents(uri=block.uri, mime_type=block.mime_type, text=block.text)
    else:
        resource = BlobResourceContents(
            uri=block.uri, mime_type=block.mime_type, blob=_b64(block.blob or b"")
        )
    return EmbeddedResource(type="resource", resource=resource)


def _prompt_content(content: str | ContentBlock, arguments: Mapping[str, Any]) -> WireContent:
    """A prompt message's content with ``{argument}`` placeholders filled (text, resource URI and text)."""
    if isinstance(content, str):
        return TextContent(type="text", text=templates.render(content, arguments))
    if isinstance(content, TextBlock):
        return TextContent(type="text", text=templates.render(content.text, arguments))
    if isinstance(content, ResourceBlock):
        text = None if content.text is None else templates.render(content.text, arguments)
        uri = templates.render(content.uri, arguments)
        return _wire_content(ResourceBlock(uri, content.mime_type, text, content.blob))
    return _wire_content(content)


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
        if isinstance(value, ToolContent):
            structured = dict(value.structured) if value.structured is not None else None
            return CallToolResult(
                content=[_wire_content(block) for block in value.blocks], structured_content=structured
            )
    else:
        response = outcome.response
        media_type = _media_type(response.content_type)
        if response.body and media_type.startswith("image/"):
            return CallToolResult(
                content=[ImageContent(type="image", data=_b64(response.body), mime_type=media_type)]
            )
        if response.body and media_type.startswith("audio/"):
            return CallToolResult(
                content=[AudioContent(type="audio", data=_b64(response.body), mime_type=media_type)]
            )
        try:
            value = response.document()
        except ValueError:
            text = response.body.decode("utf-8", "replace")
            return CallToolResult(content=[TextContent(type="text", text=text)])
    if value is None:
        return CallToolResult(content=[])
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    structured = value if isinstance(value, dict) else None
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)


@dataclass
class _OneShotDispatchContext:
    """The SDK's ``DispatchContext`` for one HTTP exchange: no back-channel for server requests.

    Notifications about the request (progress, log messages) go to ``sink`` as SSE frames
    when the client accepts an event stream; without one they are dropped.
    """

    transport: TransportContext
    request_id: Any
    message_metadata: MessageMetadata
    progress_token: str | int | None = None
    sink: _EventStream | None = None
    cancel_requested: anyio.Event = field(default_factory=anyio.Event)
    can_send_request: bool = False

    async def send_raw_request(
        self, method: str, params: Mapping[str, Any] | None, opts: Any = None
    ) -> dict[str, Any]:
        raise NoBackChannelError(method)

    async def notify(self, method: str, params: Mapping[str, Any] | None, opts: Any = None) -> None:
        if self.sink is None:
            return
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = dict(params)
        await self.sink.send(message)

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        if self.progress_token is None:
            return
        params: dict[str, Any] = {"progressToken": self.progress_token, "progress": progress}
        if total is not None:
            params["total"] = total
        if message is not None:
            params["message"] = message
        await self.notify("notifications/progress", params)


def _sse_event(message: Mapping[str, Any]) -> bytes:
    """One JSON-RPC message as an SSE ``message`` event (the SDK's framing)."""
    return f"event: message\r\ndata: {_compact_dumps(message)}\r\n\r\n".encode()


class _EventStream:
    """The answer to one POST, switched to Server-Sent Events by the first notification.

    Until then nothing is sent, and the exchange may still answer plain JSON. Once
    started, a quiet stream gets a keep-alive comment every :data:`SSE_PING_INTERVAL`
    seconds, and :meth:`finish` writes the JSON-RPC answer as the last event.
    """

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.response: web.StreamResponse | None = None
        self._lock = asyncio.Lock()
        self._keepalive: asyncio.Task[None] | None = None
        self._broken = False

    @property
    def started(self) -> bool:
        return self.response is not None

    async def send(self, message: Mapping[str, Any]) -> None:
        """Send a notification, starting the stream if need be; dropped once the client is gone."""
        async with self._lock:
            if self.response is None:
                # Headers go out with the first event, before any middleware sees the response.
                response = web.StreamResponse(
                    status=200, headers={**SSE_HEADERS, REQUEST_ID_HEADER: request_id.get()}
                )
                if self.request.get(_MOCKED):
                    response.headers[MOCK_HEADER] = "true"
                await response.prepare(self.request)
                self.response = response
                self._keepalive = asyncio.create_task(self._ping())
            await self._write(_sse_event(message))

    async def finish(self, message: Mapping[str, Any]) -> web.StreamResponse:
        """End the started stream with the exchange's answer."""
        assert self.response is not None
        self.close()
        async with self._lock:
            await self._write(_sse_event(message))
            if not self._broken:
                try:
                    await self.response.write_eof()
                except (ConnectionError, RuntimeError):
                    self._broken = True
        return self.response

    def close(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(SSE_PING_INTERVAL)
            async with self._lock:
                await self._write(b": ping\r\n\r\n")

    async def _write(self, data: bytes) -> None:
        assert self.response is not None
        if self._broken:
            return
        try:
            await self.response.write(data)
        except (ConnectionError, RuntimeError):
            self._broken = True  # the client left; the call still runs to its end
            log.debug("MCP: the client closed the event stream")


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
    environ: Mapping[str, str] | None = None,
) -> web.Application:
    service = McpService(engine, catalog, environ=environ)
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
        request[_PRINCIPAL] = principal.name if principal is not ANONYMOUS else None
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
            message = f"the request took longer than {self.settings.request_timeout:g} s"
            stream: _EventStream | None = request.get(_STREAM)
            if stream is None or not stream.started:
                return _rpc_error(None, -32000, message, status=504)
            # The answer is already an event stream: it ends with the error.
            error = {"code": -32000, "message": message}
            return await stream.finish({"jsonrpc": "2.0", "id": request.get(_REQUEST_ID), "error": error})
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

        # RFC 9110 §5.5: a field value excludes the whitespace around it (aiohttp keeps trailing blanks).
        pairs = [(name.lower(), value.strip(" \t")) for name, value in headers.items()]
        lowered = dict(pairs)
        version = lowered.get("mcp-protocol-version")
        modern = version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS
        if modern:
            duplicated = find_duplicated_routing_header(pairs)
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
            if method == "tools/call":
                rejection = self._param_header_rejection(params or {}, pairs)
                if rejection is not None:
                    return _rpc_error(
                        request_id, rejection.code, rejection.message, data=rejection.data, status=400
                    )
            connection = Connection.from_envelope(
                verdict.protocol_version, verdict.client_info, verdict.client_capabilities
            )
        else:
            connection = Connection.from_envelope(version or DEFAULT_NEGOTIATED_VERSION, None, None)

        # Notifications about the call can travel only on an event stream the client accepts.
        stream = _EventStream(request) if _accepts_event_stream(headers.get("Accept", "")) else None
        request[_STREAM], request[_REQUEST_ID] = stream, request_id
        dctx = _OneShotDispatchContext(
            transport=TransportContext(kind="streamable-http", can_send_request=False, headers=lowered),
            request_id=request_id,
            message_metadata=ServerMessageMetadata(request_context=request),
            progress_token=progress_token_from_params(params),
            sink=stream,
        )
        try:
            outcome = await _settle(
                serve_one(
                    self.service.server,
                    dctx,
                    method,
                    params,
                    connection=connection,
                    lifespan_state=request.app[_STATE],
                )
            )
        finally:
            if stream is not None:
                stream.close()
        if stream is None or not stream.started:
            return self._reply(request, request_id, outcome, modern=modern)
        if isinstance(outcome, ErrorData):
            error = outcome.model_dump(mode="json", exclude_none=True)
            return await stream.finish({"jsonrpc": "2.0", "id": request_id, "error": error})
        return await stream.finish({"jsonrpc": "2.0", "id": request_id, "result": outcome})

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

    def _reply(
        self, request: web.Request, request_id: Any, outcome: dict[str, Any] | ErrorData, *, modern: bool
    ) -> web.Response:
        if isinstance(outcome, ErrorData):
            # The handshake era answers JSON-RPC errors with 200; 2026-07-28 maps codes to statuses.
            status = ERROR_CODE_HTTP_STATUS.get(outcome.code, 500) if modern else 200
            return _rpc_error(request_id, outcome.code, outcome.message, data=outcome.data, status=status)
        response = web.json_response(
            {"jsonrpc": "2.0", "id": request_id, "result": outcome}, dumps=_compact_dumps
        )
        if request.get(_MOCKED):
            response.headers[MOCK_HEADER] = "true"
        return response


async def _settle(call: Awaitable[dict[str, Any]]) -> dict[str, Any] | ErrorData:
    """The call's result, or the JSON-RPC error its exception maps to."""
    try:
        return await call
    except Exception as exc:
        return modern_error_data(exc)


def _compact_dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _accept_kinds(accept: str) -> set[str]:
    return {part.split(";")[0].strip().lower() for part in accept.split(",")}


def _accepts_json(accept: str) -> bool:
    if not accept:
        return True  # no preference stated: JSON is acceptable
    return bool(_accept_kinds(accept) & {"application/json", "application/*", "*/*"})


def _accepts_event_stream(accept: str) -> bool:
    """Whether the client takes Server-Sent Events (stated, never assumed from a missing Accept)."""
    return bool(_accept_kinds(accept) & {"text/event-stream", "text/*", "*/*"})
