"""Input schemas of exposures: declared by the file, or derived from `with` and the consumed operation."""

from __future__ import annotations

import re
from typing import Any

from host import templates
from host.model import ApiKeyAuth, Auth, BasicAuth, BearerAuth, DigestAuth, JsonSchema
from host.naftiko.context import ConsumedOp, Context
from host.naftiko.document import InputParameter, ToolSpec
from host.naftiko.requests import argument_refs, body_refs

JSON_TYPES = {"string", "number", "integer", "boolean", "array", "object"}


def declared_schema(ctx: Context, params: list[InputParameter], path: str) -> JsonSchema:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for p in params:
        properties[p.name] = param_schema(ctx, p, path)
        # Generated files omit `required` on optional inputs (the schema default is true).
        if p.required or (p.required is None and ctx.strict):
            required.append(p.name)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def param_schema(ctx: Context, p: InputParameter, path: str) -> dict[str, Any]:
    kind = (p.type or "string").lower()
    if kind not in JSON_TYPES:
        kind = "string"
    schema: dict[str, Any] = {"type": kind}
    if p.description:
        schema["description"] = p.description
    if p.pattern:
        try:
            re.compile(p.pattern)
            schema["pattern"] = p.pattern
        except re.error:
            ctx.warn(f"{path}.{p.name}.pattern", f"invalid pattern {p.pattern!r}; not enforced")
    return schema


def relax_unsuppliable(ctx: Context, operation: str, offered: set[str], path: str) -> None:
    """Required parameters of ``operation`` an exposure with declared inputs can never supply.

    A header the API's authentication produces counts as supplied; any other is named in a load
    warning. Either way it stops being required, so the call goes out without it and the upstream
    decides, instead of a refusal naming a parameter the caller was never offered.
    """
    op = ctx.ops.get(operation)
    api = next((api for api in ctx.out.apis if op and api.namespace == op.namespace), None)
    if op is None or api is None:
        return
    bound = {v.key for v in api.variables}
    produced = _auth_headers(api.auth)
    for p in op.params:
        if not p.required or p.value is not None or p.in_ in {"environment", "path"}:
            continue
        if p.name in offered or p.name in bound:
            continue
        p.required = False  # shared by every exposure of the operation: none is refused for it
        if p.in_ == "header" and p.name.lower() in produced:
            continue
        ctx.warn(
            path,
            f"{operation} requires {p.in_ or 'query'} parameter {p.name!r}, which this exposure neither "
            "declares nor maps in `with`; calls go out without it",
        )


def unoffered_path_inputs(ctx: Context, operation: str, offered: set[str], path: str) -> dict[str, Any]:
    """Path parameters of ``operation`` an exposure with declared inputs neither declares nor maps.

    A header or query parameter can be left out (the upstream decides); a path parameter cannot: the URL
    cannot be built without it. So each becomes a required input of the exposure (typed and described
    by the consumed parameter when there is one), named in a load warning. Variables the file binds
    are the operator's (a missing one stops start-up), never inputs.
    """
    op = ctx.ops.get(operation)
    api = next((api for api in ctx.out.apis if op and api.namespace == op.namespace), None)
    if op is None or api is None:
        return {}
    bound = {v.key for v in api.variables}
    declared = {p.name: p for p in op.params if p.in_ == "path"}
    placeholders = [name.split(".", 1)[-1] for name in templates.names(op.path) if name not in bound]
    wanted = [*placeholders, *(name for name, p in declared.items() if p.required and p.value is None)]
    inputs: dict[str, Any] = {}
    for name in dict.fromkeys(wanted):
        source = declared.get(name)
        if name in offered or name in bound or (source is not None and source.value is not None):
            continue
        inputs[name] = (
            param_schema(ctx, source, path)
            if source is not None
            else {"type": "string", "description": f"path parameter {{{name}}} of {operation}"}
        )
        ctx.warn(
            path,
            f"{operation} needs path parameter {name!r}, which this exposure neither declares nor maps in "
            "`with`; it is offered as a required input",
        )
    return inputs


def _auth_headers(auth: Auth | None) -> set[str]:
    if isinstance(auth, BearerAuth | BasicAuth | DigestAuth):
        return {"authorization"}
    if isinstance(auth, ApiKeyAuth) and auth.placement == "header":
        return {auth.name.lower(), *(name.lower() for name, _ in auth.extra_headers)}
    return set()


def derived_schema(ctx: Context, tool: ToolSpec, namespace: str, operation: str) -> JsonSchema:
    """A tool without declared inputs: its inputs come from `with` and the consumed operation."""
    op = ctx.ops.get(operation)
    # The operator's values always win (NaftikoRequest drops such arguments): they are never inputs.
    bound = {v.key for api in ctx.out.apis if op and api.namespace == op.namespace for v in api.variables}
    inputs = _DerivedInputs(ctx, operation, bound)
    op_params = {p.name: p for p in op.params} if op else {}
    # What fills the URL's path is required: the URL cannot be built without it.
    in_path = {n.split(".", 1)[-1] for n in templates.names(op.path)} if op else set()
    in_path |= {name for name, p in op_params.items() if p.in_ == "path"}
    mapped_targets: set[str] = set()
    for key, value in (tool.with_ or {}).items():
        mapped_targets.add(key)
        for ref in argument_refs(value, namespace):
            inputs.add(ref, op_params.get(key) or op_params.get(ref), required=key in in_path)
    if op is not None:
        inputs.add_operation(op, mapped_targets)
    return inputs.schema()


class _DerivedInputs:
    def __init__(self, ctx: Context, operation: str, bound: set[str]) -> None:
        self.ctx, self.operation, self.bound = ctx, operation, bound
        self.properties: dict[str, Any] = {}
        self.required: set[str] = set()

    def add(self, name: str, source: InputParameter | None, *, required: bool = False) -> None:
        if name in self.bound:
            return
        if required or (source is not None and source.required and name not in self.properties):
            self.required.add(name)
        if name in self.properties:
            return
        # An argument nothing declares may be any JSON value: a body template keeps arrays and numbers.
        self.properties[name] = (
            param_schema(self.ctx, source, "") if source else {"description": f"passed to {self.operation}"}
        )

    def add_operation(self, op: ConsumedOp, mapped_targets: set[str]) -> None:
        """The consumed operation's own parameters, path placeholders and body placeholders."""
        for p in op.params:
            if p.name not in mapped_targets and p.value is None and p.in_ != "environment":
                self.add(p.name, p)
        for name in templates.names(op.path):
            if name not in mapped_targets:
                self.add(name.split(".", 1)[-1], None, required=True)
        for name in body_refs(op.spec.body):
            self.add(name, None)

    def schema(self) -> JsonSchema:
        schema: dict[str, Any] = {"type": "object", "properties": self.properties}
        if self.required:
            schema["required"] = sorted(self.required)
        return schema
