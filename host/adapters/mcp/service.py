"""The SDK's MCP server and its handlers: tools, resources, prompts, completion, logging level."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from mcp.server import Server, ServerRequestContext
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import x_mcp_header_map
from mcp.types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    CallToolRequestParams,
    CallToolResult,
    CompleteRequestParams,
    CompleteResult,
    Completion,
    EmptyResult,
    GetPromptRequestParams,
    GetPromptResult,
    InputRequiredResult,
    ListPromptsResult,
    ListResourcesResult,
    ListResourceTemplatesResult,
    ListToolsResult,
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
    TextResourceContents,
    Tool,
    ToolAnnotations,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from host import __version__, templates
from host.adapters.mcp.content import (
    error_result,
    prompt_content,
    resource_contents,
    success_result,
    upstream_error_result,
)
from host.adapters.mcp.interaction import Notifier, ask, input_required, input_unavailable, require_client
from host.adapters.mcp.state import exchange_of_context
from host.engine import Engine, Outcome, Target
from host.errors import CallError, InvalidArguments, StartupError, Unauthorized
from host.inbound import CallerCheck
from host.model import InputRequired, McpPrompt, McpResource, McpTool
from host.plugins import Catalog
from host.reporting import reporting
from host.secrets import Secret

DEFAULT_INSTRUCTIONS = "Tools of the capabilities installed on this host. Each tool calls an upstream API."
SERVER_NAME = "capability-host"
# Secrets (>= 32 bytes each, comma-separated) encrypting the requestState of 2026-07-28 input
# requests: the first seals, all open (rotation). Every worker and replica must share them;
# without the variable each process uses a key of its own.
STATE_KEYS_ENV = "HOST_REQUEST_STATE_KEYS"


@dataclass(frozen=True)
class ToolEntry:
    spec: McpTool
    wire: Tool
    target: Target
    param_headers: bool  # the input schema mirrors arguments into Mcp-Param-* headers
    caller_check: CallerCheck | None = None  # the tool's own credential (a capability file's exposes auth)


@dataclass
class McpService:
    """The SDK server and what it serves: tools, resources, prompts."""

    engine: Engine
    catalog: Catalog
    tools: dict[str, ToolEntry] = field(default_factory=dict)
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
        self.tools[tool.name] = ToolEntry(tool, wire, target, bool(x_mcp_header_map(schema)), check)

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
        require_client(ctx, entry.spec.requires_client)
        if entry.caller_check is not None:
            headers = ctx.request.headers if isinstance(ctx.request, web.Request) else {}
            try:
                entry.caller_check.check(headers)
            except Unauthorized as exc:
                return error_result(f"Unauthorized: {exc.detail}; nothing was sent upstream")
        arguments: Mapping[str, Any] = params.arguments or {}
        if entry.spec.request_input is not None:
            answer = ask(ctx, entry.spec.request_input, arguments, params.request_state)
            if isinstance(answer, InputRequired):
                if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
                    return error_result(input_unavailable(f"Tool {params.name}", answer))
                return input_required(ctx, answer)
            arguments = answer
        try:
            outcome = await self._run(ctx, entry.target, arguments)
        except InvalidArguments as exc:
            lines = [f"- {key}: {'; '.join(messages)}" for key, messages in exc.errors.items()]
            return error_result(
                "Invalid arguments; nothing was sent upstream:\n" + "\n".join(lines), {"errors": exc.errors}
            )
        except CallError as exc:
            return error_result(f"{exc.title}: {exc.detail}", {"status": exc.status, **exc.extra})
        if outcome.response.status >= 400:
            return upstream_error_result(entry.spec.operation, outcome.response)
        return success_result(outcome)

    async def _run(
        self, ctx: ServerRequestContext[Any], target: Target, arguments: Mapping[str, Any]
    ) -> Outcome:
        """One operation call, its progress and log reports sent to the client before its result."""
        notifier = Notifier(ctx)
        try:
            with reporting(notifier):
                outcome = await self.engine.run(target, arguments)
            exchange = exchange_of_context(ctx.request)
            if outcome.response.mocked and exchange is not None:
                exchange.mocked = True  # before the reports, which may start the response
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
            return ReadResourceResult(contents=[resource_contents(uri, resource.mime_type, outcome)])
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
            answer = ask(ctx, prompt.request_input, arguments, params.request_state)
            if isinstance(answer, InputRequired):
                if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
                    raise MCPError(
                        code=INVALID_REQUEST, message=input_unavailable(f"Prompt {params.name}", answer)
                    )
                return input_required(ctx, answer)
            arguments = answer
        missing = [a.name for a in prompt.arguments if a.required and a.name not in arguments]
        if missing:
            raise MCPError(code=INVALID_PARAMS, message=f"Missing prompt arguments: {', '.join(missing)}")
        messages = [
            PromptMessage(
                role="assistant" if role == "assistant" else "user",
                content=prompt_content(content, arguments),
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


def _principal_of(ctx: ServerRequestContext[Any, Any]) -> str | None:
    """Who a requestState is bound to: the authenticated caller, or nobody on an open host."""
    exchange = exchange_of_context(ctx.request)
    return exchange.principal if exchange is not None else None


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
