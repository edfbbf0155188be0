"""The SDK's MCP server and its handlers: tools, resources, prompts, completion, logging level."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
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

from host import __version__
from host.adapters.mcp.content import (
    ToolResult,
    error_result,
    prompt_content,
    resource_contents,
    success_result,
    tool_result_model,
    upstream_error_result,
)
from host.adapters.mcp.interaction import Notifier, ask, input_required, input_unavailable, require_client
from host.adapters.mcp.items import (
    PromptEntry,
    ResourceEntry,
    ToolEntry,
    admit,
    caller_refusal,
    match_uri,
    refuse_dot_segments,
    visible,
)
from host.adapters.mcp.sealing import (
    SERVER_NAME,
    StateBoundary,
)
from host.adapters.mcp.state import Exchange, exchange_of_context
from host.engine import Engine, Outcome, Target
from host.errors import CallError, InvalidArguments
from host.gate import item_policy
from host.inbound import CallerCheck
from host.model import CallerAuth, InputRequired, McpPrompt, McpResource, McpTool
from host.plugins import Catalog
from host.reporting import reporting

DEFAULT_INSTRUCTIONS = "Tools of the capabilities installed on this host. Each tool calls an upstream API."


@dataclass
class McpService:
    """The SDK server and what it serves: tools, resources, prompts."""

    engine: Engine
    catalog: Catalog
    tools: dict[str, ToolEntry] = field(default_factory=dict)
    resources: dict[str, ResourceEntry] = field(default_factory=dict)  # by URI (or URI template)
    prompts: dict[str, PromptEntry] = field(default_factory=dict)
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
            self.resources[item.uri] = ResourceEntry(
                item, target, self._caller_check(item.caller_auth, f"MCP resource {item.uri!r}")
            )
        for name, offered in self.catalog.prompts.items():
            check = self._caller_check(offered.item.caller_auth, f"MCP prompt {name!r}")
            self.prompts[name] = PromptEntry(offered.item, check)
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
        environ = os.environ if self.environ is None else self.environ
        asks = any(t.spec.request_input for t in self.tools.values()) or any(
            p.spec.request_input for p in self.prompts.values()
        )
        self.server.middleware.append(StateBoundary(environ, asks_for_input=asks))

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
        # No hints and no title: no annotations key at all (the reference engine's null).
        has_annotations = bool(annotations.model_dump(exclude_none=True))
        wire = Tool(
            name=tool.name,
            title=tool.title,
            description=tool.description,
            input_schema=schema,
            annotations=annotations if has_annotations else None,
        )
        target = self.engine.target(
            tool.operation,
            input_schema=tool.input_schema,
            map_arguments=tool.map_arguments,
            output=tool.output,
            label=f"tool {tool.name}",
        )
        check = self._caller_check(tool.caller_auth, f"MCP tool {tool.name!r}")
        self.tools[tool.name] = ToolEntry(tool, wire, target, bool(x_mcp_header_map(schema)), check)

    def _caller_check(self, auth: CallerAuth | None, origin: str) -> CallerCheck | None:
        return item_policy(auth, os.environ if self.environ is None else self.environ, origin)

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        return ListToolsResult(tools=[entry.wire for entry in visible(ctx, self.tools.values())])

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: CallToolRequestParams
    ) -> CallToolResult | InputRequiredResult:
        entry = self.tools.get(params.name)
        if entry is None:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool: {params.name}")
        require_client(ctx, entry.spec.requires_client)
        refusal = caller_refusal(ctx, entry)
        if refusal is not None:  # a tool's refusal is a tool error, as ever
            return tool_result_model(error_result(refusal.error.message))
        arguments: Mapping[str, Any] = params.arguments or {}
        if entry.spec.request_input is not None:
            answer = ask(ctx, entry.spec.request_input, arguments, params.request_state)
            if isinstance(answer, InputRequired):
                if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
                    return tool_result_model(error_result(input_unavailable(f"Tool {params.name}", answer)))
                return input_required(ctx, answer)
            arguments = answer
        exchange = exchange_of_context(ctx.request)
        return tool_result_model(await self.run_tool(entry, arguments, Notifier.of(ctx), exchange))

    async def run_tool(
        self, entry: ToolEntry, arguments: Mapping[str, Any], notifier: Notifier, exchange: Exchange | None
    ) -> ToolResult:
        """A tool's call once the request is admitted, as its wire result (both paths end here)."""
        try:
            outcome = await self._run(notifier, exchange, entry.target, arguments)
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
        self, notifier: Notifier, exchange: Exchange | None, target: Target, arguments: Mapping[str, Any]
    ) -> Outcome:
        """One operation call, its progress and log reports sent to the client before its result."""
        try:
            with reporting(notifier):
                outcome = await self.engine.run(target, arguments)
            if outcome.response.mocked and exchange is not None:
                exchange.mocked = True  # before the reports, which may start the response
        finally:
            await notifier.aclose()
        return outcome

    def _resources(self, ctx: ServerRequestContext[Any], *, templated: bool) -> list[McpResource]:
        entries = visible(ctx, self.resources.values())
        return [entry.spec for entry in entries if entry.templated == templated]

    async def _list_resources(
        self, ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListResourcesResult:
        return ListResourcesResult(
            resources=[
                Resource(
                    uri=r.uri, name=r.name, title=r.title, description=r.description, mime_type=r.mime_type
                )
                for r in (
                    entry.spec for entry in visible(ctx, self.resources.values()) if not entry.templated
                )
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
                for r in self._resources(ctx, templated=True)
            ]
        )

    async def _read_resource(
        self, ctx: ServerRequestContext[Any], params: ReadResourceRequestParams
    ) -> ReadResourceResult:
        uri = str(params.uri)
        for entry in self.resources.values():
            arguments = match_uri(entry.spec.uri, uri)
            if arguments is None:
                continue
            resource, target = admit(ctx, entry).spec, entry.target
            refuse_dot_segments(uri, arguments)
            if target is None:
                return ReadResourceResult(
                    contents=[
                        TextResourceContents(uri=uri, mime_type=resource.mime_type, text=resource.text or "")
                    ]
                )
            try:
                exchange = exchange_of_context(ctx.request)
                outcome = await self._run(Notifier.of(ctx), exchange, target, arguments)
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
                for p in (entry.spec for entry in visible(ctx, self.prompts.values()))
            ]
        )

    async def _get_prompt(
        self, ctx: ServerRequestContext[Any], params: GetPromptRequestParams
    ) -> GetPromptResult | InputRequiredResult:
        prompt = self._prompt(ctx, params.name)
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
        # Only declared arguments (and the prompt's own input answers) fill placeholders: other `{x}` is text.
        names, supplied = {a.name for a in prompt.arguments}, params.arguments or {}
        declared = {k: v for k, v in arguments.items() if k in names or k not in supplied}
        if missing:
            raise MCPError(code=INVALID_PARAMS, message=f"Missing prompt arguments: {', '.join(missing)}")
        messages = [
            PromptMessage(
                role="assistant" if role == "assistant" else "user",
                content=prompt_content(content, declared),
            )
            for role, content in prompt.messages
        ]
        return GetPromptResult(description=prompt.description, messages=messages)

    def _prompt(self, ctx: ServerRequestContext[Any], name: str) -> McpPrompt:
        entry = self.prompts.get(name)
        if entry is None:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown prompt: {name}")
        return admit(ctx, entry).spec

    async def _complete(
        self, ctx: ServerRequestContext[Any], params: CompleteRequestParams
    ) -> CompleteResult:
        """Prompt arguments complete from their ``choices`` (case-insensitive prefix); the rest, nothing."""
        choices: tuple[str, ...] = ()
        if isinstance(params.ref, PromptReference):
            prompt = self._prompt(ctx, params.ref.name)
            argument = next((a for a in prompt.arguments if a.name == params.argument.name), None)
            choices = argument.choices if argument is not None else ()
        elif params.ref.uri in self.resources:
            admit(ctx, self.resources[params.ref.uri])  # resource template arguments offer no choices
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
