"""The exposing side of a capability: REST resources and MCP tools, resources and prompts."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import replace
from typing import Any

from host import templates
from host.model import (
    HOST_REST_PATHS,
    CallerAuth,
    ConsumedOperation,
    JsonSchema,
    McpPrompt,
    McpResource,
    McpTool,
    MockRequest,
    PromptArgument,
    RestResource,
    ToolHints,
    UpstreamResponse,
    route_shape,
)
from host.naftiko.aggregates import resolve_ref
from host.naftiko.context import Context, FileError, confined_path
from host.naftiko.control import compile_control
from host.naftiko.document import (
    AuthSpec,
    ExposedOperationSpec,
    ExposedResourceSpec,
    InputParameter,
    McpResourceSpec,
    OutputParameter,
    PromptSpec,
    ToolSpec,
)
from host.naftiko.forward import compile_forward
from host.naftiko.jsonpath import JsonPathError, compile_path
from host.naftiko.outputs import has_static_value, mock_value, output_mapper
from host.naftiko.requests import WithMapping
from host.naftiko.schemas import (
    declared_schema,
    derived_schema,
    relax_unsuppliable,
    unoffered_path_inputs,
)
from host.naftiko.skill_exposes import compile_skills
from host.naftiko.steps import compile_steps, steps_schema


def compile_exposes(ctx: Context, adapter: Any, path: str) -> None:
    """One adapter of ``capability.exposes``: its items are appended to ``ctx.out``."""
    if not isinstance(adapter, dict):
        ctx.warn(path, "not a mapping; ignored")
        return
    kind = adapter.get("type")
    namespace = str(adapter.get("namespace") or kind or "exposes")
    if "port" in adapter:
        ctx.note(
            f"{path}.port",
            f"port {adapter['port']} ignored: every capability shares the host's REST and MCP ports",
        )
    if kind in {"rest", "mcp"}:
        ctx.declared += _declared_items(adapter, rest=kind == "rest")
    ctx.caller_auth = _caller_auth(ctx, adapter.get("authentication"), f"{path}.authentication")
    if kind == "rest":
        for index, resource in enumerate(ctx.list_of(adapter, "resources", f"{path}.resources")):
            _rest_resource(ctx, resource, namespace, f"{path}.resources[{index}]")
    elif kind == "mcp":
        _mcp_adapter(ctx, adapter, namespace, path)
    elif kind == "skill":
        compile_skills(ctx, adapter, namespace, path)
    elif kind == "control":
        compile_control(ctx, adapter, path)
    else:
        ctx.warn(f"{path}.type", f"exposes type {kind!r} is not supported; skipped")


def _declared_items(adapter: dict[str, Any], *, rest: bool) -> int:
    """How many items an adapter declares: a REST resource counts its operations."""
    count = 0
    for key in ("resources", "tools", "prompts"):
        items = adapter.get(key)
        if isinstance(items, list):
            count += sum(_declared_in(item) if rest else 1 for item in items)
    return count


def _declared_in(resource: Any) -> int:
    """A REST resource declares its operations, or one forward."""
    if not isinstance(resource, dict):
        return 1
    return len(resource.get("operations") or []) or (1 if resource.get("forward") is not None else 0)


def _mcp_adapter(ctx: Context, adapter: dict[str, Any], namespace: str, path: str) -> None:
    stdio = adapter.get("transport") == "stdio"
    if stdio:
        ctx.note(path, "stdio MCP adapter: its tools are served by `host serve --stdio FILE`")
        ctx.out.stdio_adapters.append((namespace, str(adapter.get("description") or "")))
    else:
        ctx.out.mcp_adapters.append((namespace, str(adapter.get("description") or "")))
    for index, tool in enumerate(ctx.list_of(adapter, "tools", f"{path}.tools")):
        _tool(ctx, tool, namespace, f"{path}.tools[{index}]", stdio=stdio)
    for index, resource in enumerate(ctx.list_of(adapter, "resources", f"{path}.resources")):
        _mcp_resource(ctx, resource, namespace, f"{path}.resources[{index}]")
    for index, prompt in enumerate(ctx.list_of(adapter, "prompts", f"{path}.prompts")):
        _prompt(ctx, prompt, f"{path}.prompts[{index}]")


def _caller_auth(ctx: Context, raw: Any, path: str) -> CallerAuth | None:
    """An adapter's own inbound authentication: bearer, apikey (header) or basic."""
    if raw is None:
        return None
    spec: AuthSpec | None = ctx.model(AuthSpec, raw, path)
    if spec is None:
        return None
    kind = spec.type.lower()
    variables = tuple(ctx.variables)
    key_name = spec.key or (spec.model_extra or {}).get("name")
    # Values a file:// bind read are known now; {{VAR}} bound to the environment is resolved at start-up.
    from_files = {var.key: var.default for var in ctx.variables if var.default is not None}

    def credential(template: str | None) -> str:
        return templates.render(template or "", from_files, single_brace=False, keep_missing=True)

    if kind == "bearer" and spec.token:
        return CallerAuth("bearer", credential(spec.token), variables=variables)
    if kind == "apikey" and key_name:
        if (spec.placement or "header").lower() == "query":
            ctx.warn(f"{path}.placement", "callers' keys are read from a header only, never the query")
        return CallerAuth("apikey", credential(spec.value), name=str(key_name), variables=variables)
    if kind == "basic" and spec.username is not None:
        return CallerAuth(
            "basic", credential(spec.password), username=credential(spec.username), variables=variables
        )
    # An adapter that asks for authentication the host cannot check must not be served open.
    raise FileError(f"{path}: inbound {spec.type} authentication is not supported; use [[auth.keys]]")


def _rest_resource(ctx: Context, raw: Any, namespace: str, path: str) -> None:
    operations = _resolved_operations(ctx, raw, namespace, path)
    resource: ExposedResourceSpec | None = ctx.model(
        ExposedResourceSpec, {**raw, "operations": []} if isinstance(raw, dict) else raw, path
    )
    if resource is None:
        return
    route = _route_path(resource.path)
    if not route.startswith("/"):
        ctx.warn(f"{path}.path", f"dialect: {route!r} has no leading '/'; served as '/{route}'")
        route = "/" + route
    if route in HOST_REST_PATHS:
        ctx.warn(
            f"{path}.path",
            f"{route} is the host's own endpoint: not served over REST (give the resource another path)",
        )
        return
    taken: set[str] = set()
    for index, raw_op, with_namespace in operations:
        op_path = f"{path}.operations[{index}]"
        op: ExposedOperationSpec | None = ctx.model(ExposedOperationSpec, raw_op, op_path)
        if op is None:
            continue
        params = [*resource.inputParameters, *op.inputParameters]
        target = _target(ctx, op, with_namespace, op_path, label=f"{op.method.upper()} {resource.path}")
        method = op.method.upper()
        if target is None:
            continue
        if not ctx.claim(("rest", method, route_shape(route)), f"{method} {route}", op_path):
            continue
        taken.add(method)
        operation, output = target
        _require_bound(ctx, operation, op.with_)
        declared = {p.in_: [q.name for q in params if q.in_ == p.in_] for p in params}
        ctx.out.rest.append(
            RestResource(
                method=method,
                path=route,
                operation=operation,
                description=op.description or resource.description,
                body_argument="body",
                query=tuple(declared.get("query", [])),
                headers=tuple(declared.get("header", [])),
                pass_undeclared=True,
                input_schema=declared_schema(ctx, params, op_path),
                map_arguments=_with_mapping(ctx, op.with_, params, with_namespace, op_path, body="body"),
                output=output,
                caller_auth=ctx.caller_auth,
            )
        )
    if resource.forward is not None:
        compile_forward(ctx, resource, route, taken, path)


def _resolved_operations(ctx: Context, raw: Any, namespace: str, path: str) -> list[tuple[int, Any, str]]:
    """A resource's operations, each with its aggregate function's logic when it has a ``ref``."""
    found = raw.get("operations") if isinstance(raw, dict) else None
    if found is not None and not isinstance(found, list):
        raise FileError(f"{path}.operations: must be a list")
    resolved = (
        (i, resolve_ref(ctx, op, namespace, f"{path}.operations[{i}]")) for i, op in enumerate(found or [])
    )
    return [(i, r[0], r[1]) for i, r in resolved if r is not None]


def _require_bound(ctx: Context, operation: str, with_: dict[str, Any] | None) -> None:
    """Bound variables a ``with`` value names (``org_id: '{{SNYK_ORG_ID}}'``) are the operator's: the
    consumed API requires them at start-up, as it does its base URI's."""
    op = ctx.ops.get(operation)
    index = next((i for i, api in enumerate(ctx.out.apis) if op and api.namespace == op.namespace), None)
    if op is None or index is None or not with_:
        return
    api = ctx.out.apis[index]
    bound = {v.key for v in api.variables}
    named = (
        n
        for value in with_.values()
        if isinstance(value, str)
        for n in templates.names(value, single_brace=False)
    )
    needed = {n for n in named if n in bound or n.split(".", 1)[-1] in bound} - set(api.required)
    if needed:
        ctx.out.apis[index] = replace(api, required=(*api.required, *sorted(needed)))


def _with_mapping(
    ctx: Context,
    with_: dict[str, Any] | None,
    params: list[InputParameter],
    namespace: str,
    path: str,
    *,
    body: str | None,
) -> WithMapping:
    """The exposure's argument mapping, with its ``in: body`` inputs read by their JSONPath ``value``."""
    body_inputs = []
    for p in params:
        if p.in_ == "body" and isinstance(p.value, str) and p.value.strip().startswith("$"):
            try:
                body_inputs.append((p.name, compile_path(p.value.strip()).find))
            except JsonPathError as exc:
                ctx.warn(f"{path}.inputParameters.{p.name}.value", f"invalid JSONPath ({exc}); read by name")
    return WithMapping(with_, namespace, tuple(body_inputs), body)


def _tool(ctx: Context, raw: Any, namespace: str, path: str, *, stdio: bool = False) -> None:
    resolved = resolve_ref(ctx, raw, namespace, path)
    if resolved is None:
        return
    raw, namespace = resolved
    tool: ToolSpec | None = ctx.model(ToolSpec, raw, path)
    if tool is None:
        return
    target = _target(ctx, tool, namespace, path, label=f"tool {tool.name}")
    if target is None or not ctx.claim(("stdio" if stdio else "tool", tool.name), f"tool {tool.name}", path):
        return
    operation, output = target
    _require_bound(ctx, operation, tool.with_)
    if tool.inputParameters:
        schema = declared_schema(ctx, tool.inputParameters, path)
        offered = {p.name for p in tool.inputParameters} | set(tool.with_ or {})
        relax_unsuppliable(ctx, operation, offered, path)
        schema = _with_required_inputs(schema, unoffered_path_inputs(ctx, operation, offered, path))
    elif tool.steps:
        schema = steps_schema(tool.steps, namespace)
    else:
        schema = derived_schema(ctx, tool, namespace, operation)
    hints = tool.hints or {}
    (ctx.out.stdio_tools if stdio else ctx.out.tools).append(
        McpTool(
            name=tool.name,
            title=tool.label,
            description=tool.description or tool.label or tool.name,
            operation=operation,
            input_schema=schema,
            output=output,
            hints=ToolHints(
                read_only=_bool(hints.get("readOnly")),
                destructive=_bool(hints.get("destructive")),
                idempotent=_bool(hints.get("idempotent")),
                open_world=_bool(hints.get("openWorld")),
            ),
            map_arguments=_with_mapping(ctx, tool.with_, tool.inputParameters, namespace, path, body=None),
            caller_auth=ctx.caller_auth,
        )
    )


def _with_required_inputs(schema: JsonSchema, inputs: dict[str, Any]) -> JsonSchema:
    if not inputs:
        return schema
    required = [*schema.get("required", ()), *inputs]
    return {**schema, "properties": {**schema["properties"], **inputs}, "required": required}


def _mcp_resource(ctx: Context, raw: Any, namespace: str, path: str) -> None:
    spec: McpResourceSpec | None = ctx.model(McpResourceSpec, raw, path)
    if spec is None:
        return
    operation, output = spec.call, output_mapper(spec.outputParameters, f"{path}.outputParameters")
    steps = raw.get("steps") if isinstance(raw, dict) else None
    if steps:
        mappings = raw.get("mappings") or []
        operation = compile_steps(ctx, steps, mappings, namespace, f"resource {spec.uri}", path)
        if operation is None:
            return
        output = None if mappings else output
    elif operation and operation not in ctx.ops:
        ctx.warn(f"{path}.call", f"{operation!r} names no consumed operation; resource disabled")
        return
    if not ctx.claim(("resource", spec.uri), f"resource {spec.uri}", path):
        return
    if operation:
        ctx.out.resources.append(
            McpResource(
                uri=spec.uri,
                name=spec.name,
                title=spec.label,
                description=spec.description,
                mime_type=spec.mimeType or "application/json",
                operation=operation,
                output=output,
                map_arguments=WithMapping(spec.with_, namespace),
                caller_auth=ctx.caller_auth,
            )
        )
    elif spec.location:
        text = _static_file(ctx, spec.location, f"{path}.location")
        if text is not None:
            ctx.out.resources.append(
                McpResource(
                    uri=spec.uri,
                    name=spec.name,
                    title=spec.label,
                    description=spec.description,
                    mime_type=spec.mimeType or "text/plain",
                    text=text,
                    caller_auth=ctx.caller_auth,
                )
            )
    else:
        ctx.warn(path, "resource has neither call nor location; disabled")


def _prompt(ctx: Context, raw: Any, path: str) -> None:
    spec: PromptSpec | None = ctx.model(PromptSpec, raw, path)
    if spec is None or not ctx.claim(("prompt", spec.name), f"prompt {spec.name}", path):
        return
    messages: list[tuple[str, str]] = [
        (str(m.get("role", "user")), str(m.get("content", ""))) for m in spec.template if isinstance(m, dict)
    ]
    if not messages and spec.location:
        text = _static_file(ctx, spec.location, f"{path}.location")
        if text is None:
            return
        messages = [("user", text)]
    arguments = tuple(
        PromptArgument(str(a.get("name")), str(a.get("description", "")), bool(a.get("required", False)))
        for a in spec.arguments
        if isinstance(a, dict) and a.get("name")
    )
    ctx.out.prompts.append(
        McpPrompt(
            name=spec.name,
            title=spec.label,
            description=spec.description,
            arguments=arguments,
            messages=tuple(messages),
            caller_auth=ctx.caller_auth,
        )
    )


def _static_file(ctx: Context, location: str, path: str) -> str | None:
    """A ``file:///`` text, which must resolve (symlinks followed) inside an allowed folder.

    Allowed: the capability file's folder and its ``resource_dirs``. Anything else is a load error,
    so that no file can expose ``/etc/passwd`` or ``/proc/self/environ``.
    """
    target = confined_path(ctx, location, path)
    try:
        return target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        ctx.warn(path, f"cannot read {target}: {reason}; disabled")
        return None


def _target(
    ctx: Context, op: ExposedOperationSpec, namespace: str, path: str, *, label: str
) -> tuple[str, Any] | None:
    """The operation an exposure calls (synthesising a static one for mock exposures) and its output."""
    if op.steps:
        ref = compile_steps(ctx, op.steps, op.mappings, namespace, label, path)
        if ref is None:
            return None
        # With mappings, outputParameters only describe the assembled result; without, they map it.
        return ref, None if op.mappings else output_mapper(op.outputParameters, f"{path}.outputParameters")
    if op.call:
        if op.call not in ctx.ops:
            ctx.warn(f"{path}.call", f"{op.call!r} names no consumed operation; disabled")
            return None
        return op.call, output_mapper(op.outputParameters, f"{path}.outputParameters")
    if not op.outputParameters:
        ctx.warn(path, "neither call nor static output; disabled")
        return None
    if not any(has_static_value(output) for output in op.outputParameters):
        # Only JSONPath mappings, and no call: no document to map. Served as written, and said.
        ctx.warn(path, "no call and no static value (a const or value): every call answers null")
    return _static_operation(ctx, op.method.upper() or "GET", namespace, op.outputParameters), None


def _static_operation(ctx: Context, method: str, namespace: str, outputs: list[OutputParameter]) -> str:
    """A mock exposure: a static operation answering its outputs, filled from each call's arguments."""
    name = f"static-{len(ctx.out.apis)}-{secrets.token_hex(3)}"
    static_ns = f"{namespace}-static"

    def answer(request: MockRequest) -> UpstreamResponse:
        return UpstreamResponse(200, json.dumps(mock_value(outputs, request.arguments)).encode())

    operation = ConsumedOperation(name=name, method=method, path="/", mock=answer, static=True)
    return ctx.add_static(static_ns, operation)


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _route_path(path: str) -> str:
    return re.sub(r"\{\{\s*([^}\s]+)\s*\}\}", r"{\1}", path)
