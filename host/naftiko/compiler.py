"""Turning a capability document into the host's model: consumed APIs and exposures.

Semantics follow ``naftiko-spec.md`` §4, correct where the reference engine is
not: ``{x}`` placeholders are filled, ``in: body`` parameters are sent,
``rest.x``/``tools.x`` mean the caller's argument ``x``, an ``object`` output
with a ``mapping`` returns the mapped document, binds reach every template,
declared inputs are enforced.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

import yaml
from pydantic import BaseModel, ValidationError

from host import templates
from host.errors import InvalidArguments, MissingArgument
from host.formats import KNOWN_FORMATS
from host.model import (
    ApiKeyAuth,
    Auth,
    BasicAuth,
    BearerAuth,
    CallerAuth,
    ConsumedApi,
    ConsumedOperation,
    DigestAuth,
    EnvVar,
    JsonSchema,
    McpPrompt,
    McpResource,
    McpTool,
    MockRequest,
    OutboundRequest,
    PromptArgument,
    RestResource,
    ToolHints,
    UnsupportedAuth,
    UpstreamResponse,
)
from host.naftiko.document import (
    AuthSpec,
    Bind,
    ConsumedOperationSpec,
    ConsumedResourceSpec,
    ConsumesSpec,
    ExposedOperationSpec,
    ExposedResourceSpec,
    InputParameter,
    McpResourceSpec,
    OutputParameter,
    PromptSpec,
    ToolSpec,
)
from host.naftiko.jsonpath import JsonPathError, compile_path

JSON_TYPES = {"string", "number", "integer", "boolean", "array", "object"}
SECRET_WORDS = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASS|CREDENTIAL|AUTH", re.IGNORECASE)
BODY_METHODS = {"POST", "PUT", "PATCH"}
CONTENT_TYPES = {
    "json": "application/json",
    "xml": "application/xml",
    "sparql": "application/sparql-query",
    "text": "text/plain",
    "yaml": "application/yaml",
    "formUrlEncoded": "application/x-www-form-urlencoded",
}


class FileError(Exception):
    """The whole file cannot be served."""


@dataclass
class Compiled:
    apis: list[ConsumedApi] = field(default_factory=list)
    rest: list[RestResource] = field(default_factory=list)
    tools: list[McpTool] = field(default_factory=list)
    resources: list[McpResource] = field(default_factory=list)
    prompts: list[McpPrompt] = field(default_factory=list)
    stdio_namespaces: list[str] = field(default_factory=list)
    stdio_tools: list[McpTool] = field(default_factory=list)
    # (namespace, description) of each HTTP MCP adapter: the server's name and instructions (§4.9)
    mcp_adapters: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Op:
    """A consumed operation and what the exposures need to know about it."""

    namespace: str
    spec: ConsumedOperationSpec
    path: str
    params: list[InputParameter]


class Compiler:
    def __init__(
        self,
        raw: dict[str, Any],
        file: Path,
        *,
        strict: bool,
        warn: Callable[[str, str], None],
        note: Callable[[str, str], None],
    ) -> None:
        self.note = note  # information that does not make the file deviate (ignored ports, ...)
        self.raw = raw
        self.file = file
        self.strict = strict
        self.warn = warn
        self.out = Compiled()
        self.ops: dict[str, _Op] = {}
        self.declared = 0  # exposure items the file declares, served or not
        self.caller_auth: CallerAuth | None = None  # the current adapter's own inbound authentication
        self.variables: list[EnvVar] = []

    # -- entry -----------------------------------------------------------
    def compile(self) -> Compiled:
        capability = self.raw.get("capability")
        root_consumes = self.raw.get("consumes")
        if capability is None and root_consumes is None:
            raise FileError("capability: missing (a capability file needs 'capability', or root 'consumes')")
        if capability is not None and not isinstance(capability, dict):
            raise FileError("capability: must be a mapping")
        capability = capability or {}
        self._binds(
            [
                *(self._list(self.raw, "binds", "binds")),
                *(self._list(capability, "binds", "capability.binds")),
            ]
        )
        consumes = [*self._list(capability, "consumes", "capability.consumes")]
        consumes_paths = [f"capability.consumes[{i}]" for i in range(len(consumes))]
        for i, item in enumerate(self._list(self.raw, "consumes", "consumes")):
            consumes.append(item)
            consumes_paths.append(f"consumes[{i}]")
        for item, path in zip(consumes, consumes_paths, strict=True):
            self._consumes(item, path)
        exposes = self._list(capability, "exposes", "capability.exposes")
        for index, adapter in enumerate(exposes):
            self._exposes(adapter, f"capability.exposes[{index}]")
        if capability.get("aggregates"):
            self.warn("capability.aggregates", "aggregates are not supported; ignored")
        served = (
            self.out.rest or self.out.tools or self.out.stdio_tools or self.out.resources or self.out.prompts
        )
        if exposes and not self.declared:
            self.warn("capability.exposes", "the adapters declare no operations, tools, resources or prompts")
        elif not served and exposes:
            raise FileError(
                "capability.exposes: nothing can be served (every exposure was disabled; see warnings)"
            )
        if not exposes:
            self.warn("capability.exposes", "no exposes: the file only consumes (nothing served on its own)")
        return self.out

    def _list(self, parent: Any, key: str, path: str) -> list[Any]:
        value = parent.get(key) if isinstance(parent, dict) else None
        if value is None:
            return []
        if not isinstance(value, list):
            raise FileError(f"{path}: must be a list")
        return value

    def _model(self, model: type[BaseModel], value: Any, path: str) -> Any:
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(item)'}: {e['msg']}" for e in exc.errors()[:3]
            )
            self.warn(path, f"invalid ({problems}); disabled")
            return None

    # -- binds -------------------------------------------------------------
    def _binds(self, binds: list[Any]) -> None:
        for index, raw in enumerate(binds):
            path = f"binds[{index}]"
            bind = self._model(Bind, raw, path)
            if bind is None:
                continue
            file_values: dict[str, Any] | None = None
            if bind.location:
                file_values = self._bind_file(bind.location, path)
            for var, provider in bind.keys.items():
                secret = bool(SECRET_WORDS.search(var))
                if file_values is not None:
                    value = file_values.get(provider)
                    if value is None:
                        self.warn(f"{path}.keys.{var}", f"{provider!r} not found in {bind.location}")
                    self.variables.append(
                        EnvVar(
                            provider,
                            default=None if value is None else str(value),
                            placeholder=var,
                            secret=secret,
                        )
                    )
                else:
                    self.variables.append(EnvVar(str(provider), placeholder=var, secret=secret))

    def _bind_file(self, location: str, path: str) -> dict[str, Any] | None:
        if not location.startswith("file://"):
            self.warn(
                f"{path}.location",
                f"{location.split(':')[0]}:// binds are not supported; "
                "values come from the environment instead",
            )
            return None
        target = Path(unquote(urlsplit(location).path))
        if location.startswith("file:///./"):
            target = Path(location[len("file:///./") :])
        try:
            text = target.read_text(encoding="utf-8")
            data = json.loads(text) if target.suffix == ".json" else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            self.warn(
                f"{path}.location",
                f"cannot read {target}: {type(exc).__name__}; values come from the environment instead",
            )
            return None
        return data if isinstance(data, dict) else {}

    # -- consumes ------------------------------------------------------------
    def _items(self, model: type[BaseModel], raw: list[Any], path: str) -> list[tuple[int, Any]]:
        """Validate list items one by one: one bad item is disabled, its siblings are kept."""
        validated = ((index, self._model(model, item, f"{path}[{index}]")) for index, item in enumerate(raw))
        return [(index, item) for index, item in validated if item is not None]

    def _consumes(self, raw: Any, path: str) -> None:
        if isinstance(raw, dict) and "location" in raw and not raw.get("resources"):
            raw = self._import_consumes(raw, path)
            if raw is None:
                return
        spec: ConsumesSpec | None = self._model(ConsumesSpec, raw, path)
        if spec is None:
            return
        if spec.type != "http":
            self.warn(f"{path}.type", f"consumes type {spec.type!r} is not supported; disabled")
            return
        base_uri = spec.baseUri.strip()
        if base_uri.endswith("/"):
            base_uri = base_uri.rstrip("/")
            self.warn(f"{path}.baseUri", "trailing '/' removed")
        variables = list(self.variables)
        known = {v.key for v in variables}
        for name in templates.names(base_uri):
            short = name.split(".", 1)[1] if "." in name else name
            if name in known or short in known:
                continue
            variables += self._guess_env(name, spec.namespace)
        auth = self._auth(spec.authentication, f"{path}.authentication")
        operations: list[ConsumedOperation] = []
        api_params = self._params(spec.inputParameters, f"{path}.inputParameters")
        for r_index, resource in self._items(ConsumedResourceSpec, spec.resources, f"{path}.resources"):
            r_path = f"{path}.resources[{r_index}]"
            resource_params = self._params(resource.inputParameters, f"{r_path}.inputParameters")
            for o_index, op in self._items(
                ConsumedOperationSpec, resource.operations, f"{r_path}.operations"
            ):
                op_path = f"{r_path}.operations[{o_index}]"
                own = self._params(op.inputParameters, f"{op_path}.inputParameters")
                params = [*api_params, *resource_params, *own]
                for p in params:
                    if p.in_ == "environment":
                        variables.append(EnvVar(p.name, secret=bool(SECRET_WORDS.search(p.name))))
                built = self._operation(spec.namespace, resource.path + op.path, op, params, op_path)
                if built is not None:
                    operations.append(built)
        self.out.apis.append(
            ConsumedApi(
                namespace=spec.namespace,
                base_uri=base_uri,
                operations=tuple(operations),
                variables=tuple(variables),
                auth=auth,
                description=spec.description,
            )
        )

    def _params(self, raw: list[Any], path: str) -> list[InputParameter]:
        return [param for _, param in self._items(InputParameter, raw, path)]

    def _import_consumes(self, raw: dict[str, Any], path: str) -> dict[str, Any] | None:
        """The import form ``{import|openapi, location, as}``: a consumes block kept in another file."""
        location = str(raw["location"])
        target = (self.file.parent / location.removeprefix("file://")).resolve()
        try:
            document = yaml.safe_load(target.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError, UnicodeDecodeError):
            self.warn(f"{path}.location", f"imported consumes {location!r} cannot be read; disabled")
            return None
        blocks = document.get("consumes") if isinstance(document, dict) else None
        wanted = raw.get("import") or raw.get("openapi")
        for block in blocks if isinstance(blocks, list) else []:
            if isinstance(block, dict) and (wanted is None or block.get("namespace") == wanted):
                return {**block, "namespace": raw.get("as") or block.get("namespace")}
        self.warn(f"{path}.import", f"{location!r} has no consumes block {wanted!r}; disabled")
        return None

    def _guess_env(self, name: str, namespace: str) -> list[EnvVar]:
        """Environment variables that may fill a ``{name}`` nobody binds: TRATTA_ORG_UUID for {org-uuid}."""
        stem = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").upper()
        prefixes = {v.key.split("_", 1)[0] for v in self.variables if "_" in v.key}
        prefixes.add(re.sub(r"[^A-Za-z0-9]+", "_", namespace.split("-", 1)[0]).upper())
        names = [
            f"{prefix}_{stem}" for prefix in sorted(prefixes) if prefix and not stem.startswith(prefix + "_")
        ]
        names.append(stem)
        return [EnvVar(env_name, placeholder=name) for env_name in dict.fromkeys(names)]

    def _auth(self, spec: AuthSpec | None, path: str) -> Auth | None:
        if spec is None:
            return None
        kind = spec.type.lower()
        fields: list[str | None] = []
        auth: Auth
        if kind == "bearer":
            fields = [spec.token]
            auth = BearerAuth(spec.token or "")
        elif kind in {"basic", "digest"}:
            fields = [spec.username, spec.password]
            auth = (BasicAuth if kind == "basic" else DigestAuth)(spec.username or "", spec.password or "")
        elif kind == "apikey":
            fields = [spec.value]
            placement = (spec.placement or "header").lower()
            if placement not in {"header", "query"}:
                self.warn(f"{path}.placement", f"placement {placement!r} unknown; sending a header")
                placement = "header"
            if not spec.key:
                self.warn(f"{path}.key", "apikey without a key name; calls will fail")
                return UnsupportedAuth("apikey without a key name")
            auth = ApiKeyAuth(spec.key, spec.value or "", placement)
        else:
            self.warn(
                f"{path}.type",
                f"{spec.type} authentication is not supported by this host: "
                "calls to these operations fail with a clear error (never unauthenticated)",
            )
            return UnsupportedAuth(spec.type)
        for value in fields:
            if value and not templates.names(value, single_brace=False):
                self.warn(path, "literal credential in the file: prefer a {{VAR}} bound to the environment")
        return auth

    def _operation(
        self,
        namespace: str,
        resource_path: str,
        spec: ConsumedOperationSpec,
        params: list[InputParameter],
        path: str,
    ) -> ConsumedOperation | None:
        method = spec.method.upper()
        if method not in {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}:
            self.warn(f"{path}.method", f"method {spec.method!r} is not HTTP; disabled")
            return None
        fmt = (spec.outputRawFormat or "json").lower()
        if fmt not in KNOWN_FORMATS:
            self.warn(f"{path}.outputRawFormat", f"{fmt!r} is passed through undecoded")
            fmt = "binary"
        self.ops[f"{namespace}.{spec.name}"] = _Op(namespace, spec, resource_path, params)
        builder = NaftikoRequest(method, resource_path, params, spec.body, self._body_path(spec, path))
        return ConsumedOperation(
            name=spec.name,
            method=method,
            path=resource_path,
            description=spec.description,
            request=builder,
            output_format=fmt,
        )

    def _body_path(self, spec: ConsumedOperationSpec, path: str) -> str:
        if isinstance(spec.body, dict) and spec.body.get("type") not in {
            None,
            *CONTENT_TYPES,
            "multipartForm",
            "binary",
        }:
            self.warn(f"{path}.body.type", f"body type {spec.body.get('type')!r} unknown; sent as text")
        return f"{path}.body"

    # -- exposes -------------------------------------------------------------
    def _exposes(self, adapter: Any, path: str) -> None:
        if not isinstance(adapter, dict):
            self.warn(path, "not a mapping; ignored")
            return
        kind = adapter.get("type")
        namespace = str(adapter.get("namespace") or kind or "exposes")
        if "port" in adapter:
            self.note(
                f"{path}.port",
                f"port {adapter['port']} ignored: every capability shares the host's REST and MCP ports",
            )
        if kind in {"rest", "mcp"}:
            for key in ("resources", "tools", "prompts"):
                items = adapter.get(key)
                if isinstance(items, list):
                    self.declared += sum(
                        len(i.get("operations") or []) if kind == "rest" and isinstance(i, dict) else 1
                        for i in items
                    )
        self.caller_auth = self._caller_auth(adapter.get("authentication"), f"{path}.authentication")
        if kind == "rest":
            for index, resource in enumerate(self._list(adapter, "resources", f"{path}.resources")):
                self._rest_resource(resource, namespace, f"{path}.resources[{index}]")
        elif kind == "mcp":
            stdio = adapter.get("transport") == "stdio"
            if stdio:
                self.out.stdio_namespaces.append(namespace)
                self.note(path, "stdio MCP adapter: its tools are served by `host serve --stdio FILE`")
            else:
                self.out.mcp_adapters.append((namespace, str(adapter.get("description") or "")))
            for index, tool in enumerate(self._list(adapter, "tools", f"{path}.tools")):
                self._tool(tool, namespace, f"{path}.tools[{index}]", stdio=stdio)
            for index, resource in enumerate(self._list(adapter, "resources", f"{path}.resources")):
                self._mcp_resource(resource, namespace, f"{path}.resources[{index}]")
            for index, prompt in enumerate(self._list(adapter, "prompts", f"{path}.prompts")):
                self._prompt(prompt, f"{path}.prompts[{index}]")
        elif kind in {"skill", "control"}:
            self.note(path, f"{kind} adapter loaded but not served by this host")
        else:
            self.warn(f"{path}.type", f"exposes type {kind!r} is not supported; skipped")

    def _caller_auth(self, raw: Any, path: str) -> CallerAuth | None:
        """An adapter's own inbound authentication: bearer, apikey (header) or basic."""
        if raw is None:
            return None
        spec: AuthSpec | None = self._model(AuthSpec, raw, path)
        if spec is None:
            return None
        kind = spec.type.lower()
        if kind == "bearer" and spec.token:
            return CallerAuth("bearer", spec.token, variables=tuple(self.variables))
        if kind == "apikey" and (spec.key or (spec.model_extra or {}).get("name")):
            if (spec.placement or "header").lower() == "query":
                self.warn(f"{path}.placement", "callers' keys are read from a header only, never the query")
            name = spec.key or str((spec.model_extra or {}).get("name"))
            return CallerAuth("apikey", spec.value or "", name=name, variables=tuple(self.variables))
        if kind == "basic" and spec.username is not None:
            return CallerAuth(
                "basic", spec.password or "", username=spec.username, variables=tuple(self.variables)
            )
        # An adapter that asks for authentication the host cannot check must not be served open.
        raise FileError(f"{path}: inbound {spec.type} authentication is not supported; use [[auth.keys]]")

    def _rest_resource(self, raw: Any, namespace: str, path: str) -> None:
        resource: ExposedResourceSpec | None = self._model(ExposedResourceSpec, raw, path)
        if resource is None:
            return
        if resource.forward is not None and not resource.operations:
            self.warn(f"{path}.forward", "forward is not supported; disabled")
        for index, op in enumerate(resource.operations):
            op_path = f"{path}.operations[{index}]"
            params = [*resource.inputParameters, *op.inputParameters]
            target = self._target(op, namespace, op_path, rest_path=resource.path)
            if target is None:
                continue
            operation, output = target
            declared = {p.in_: [q.name for q in params if q.in_ == p.in_] for p in params}
            self.out.rest.append(
                RestResource(
                    method=op.method.upper(),
                    path=_route_path(resource.path),
                    operation=operation,
                    description=op.description or resource.description,
                    body_argument="body",
                    query=tuple(declared.get("query", [])),
                    headers=tuple(declared.get("header", [])),
                    pass_undeclared=True,
                    input_schema=self._declared_schema(params, op_path, rest=True),
                    map_arguments=WithMapping(op.with_, namespace),
                    output=output,
                    caller_auth=self.caller_auth,
                )
            )

    def _tool(self, raw: Any, namespace: str, path: str, *, stdio: bool = False) -> None:
        tool: ToolSpec | None = self._model(ToolSpec, raw, path)
        if tool is None:
            return
        target = self._target(tool, namespace, path)
        if target is None:
            return
        operation, output = target
        if tool.inputParameters:
            schema = self._declared_schema(tool.inputParameters, path, rest=False)
        else:
            schema = self._derived_schema(tool, namespace, operation)
        hints = tool.hints or {}
        (self.out.stdio_tools if stdio else self.out.tools).append(
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
                map_arguments=WithMapping(tool.with_, namespace),
                caller_auth=self.caller_auth,
            )
        )

    def _mcp_resource(self, raw: Any, namespace: str, path: str) -> None:
        spec: McpResourceSpec | None = self._model(McpResourceSpec, raw, path)
        if spec is None:
            return
        mime = spec.mimeType or "application/json"
        if spec.call:
            if spec.call not in self.ops:
                self.warn(f"{path}.call", f"{spec.call!r} names no consumed operation; resource disabled")
                return
            output = self._output(spec.outputParameters, f"{path}.outputParameters")
            self.out.resources.append(
                McpResource(
                    uri=spec.uri,
                    name=spec.name,
                    title=spec.label,
                    description=spec.description,
                    mime_type=mime,
                    operation=spec.call,
                    output=output,
                    map_arguments=WithMapping(spec.with_, namespace),
                )
            )
        elif spec.location:
            text = self._static_file(spec.location, f"{path}.location")
            if text is not None:
                self.out.resources.append(
                    McpResource(
                        uri=spec.uri,
                        name=spec.name,
                        title=spec.label,
                        description=spec.description,
                        mime_type=spec.mimeType or "text/plain",
                        text=text,
                    )
                )
        else:
            self.warn(path, "resource has neither call nor location; disabled")

    def _prompt(self, raw: Any, path: str) -> None:
        spec: PromptSpec | None = self._model(PromptSpec, raw, path)
        if spec is None:
            return
        messages: list[tuple[str, str]] = [
            (str(m.get("role", "user")), str(m.get("content", "")))
            for m in spec.template
            if isinstance(m, dict)
        ]
        if not messages and spec.location:
            text = self._static_file(spec.location, f"{path}.location")
            if text is None:
                return
            messages = [("user", text)]
        arguments = tuple(
            PromptArgument(str(a.get("name")), str(a.get("description", "")), bool(a.get("required", False)))
            for a in spec.arguments
            if isinstance(a, dict) and a.get("name")
        )
        self.out.prompts.append(
            McpPrompt(
                name=spec.name,
                title=spec.label,
                description=spec.description,
                arguments=arguments,
                messages=tuple(messages),
            )
        )

    def _static_file(self, location: str, path: str) -> str | None:
        """A ``file:///`` text: relative forms stay inside the capability file's folder."""
        base = self.file.parent.resolve()
        if location.startswith("file:///./") or not location.startswith("file://"):
            relative = location[len("file:///./") :] if location.startswith("file:///./") else location
            target = (base / relative).resolve()
            if not target.is_relative_to(base):
                self.warn(path, f"{location!r} leaves the capability's folder; disabled")
                return None
        else:
            target = Path(unquote(urlsplit(location).path))
        try:
            return target.read_text(encoding="utf-8")
        except OSError as exc:
            self.warn(path, f"cannot read {target}: {exc.strerror or type(exc).__name__}; disabled")
            return None

    def _target(
        self, op: ExposedOperationSpec, namespace: str, path: str, rest_path: str | None = None
    ) -> tuple[str, Any] | None:
        """The operation an exposure calls (synthesising a static one for mock exposures) and its output."""
        if op.steps:
            self.warn(f"{path}.steps", "orchestrated steps are not supported; disabled")
            return None
        output = self._output(op.outputParameters, f"{path}.outputParameters")
        if op.call:
            if op.call not in self.ops:
                self.warn(f"{path}.call", f"{op.call!r} names no consumed operation; disabled")
                return None
            return op.call, output
        if not op.outputParameters:
            self.warn(path, "neither call nor static output; disabled")
            return None
        # A mock exposure: a static operation answering the mapped value of an empty document.
        name = f"static-{len(self.out.apis)}-{secrets.token_hex(3)}"
        static_ns = f"{namespace}-static"
        value = output(None) if output else None
        payload = json.dumps(value).encode()

        def answer(request: MockRequest, payload: bytes = payload) -> UpstreamResponse:
            return UpstreamResponse(200, payload)

        existing = next((api for api in self.out.apis if api.namespace == static_ns), None)
        operation = ConsumedOperation(
            name=name, method=op.method.upper() or "GET", path="/", mock=answer, static=True
        )
        if existing is None:
            self.out.apis.append(
                ConsumedApi(namespace=static_ns, base_uri="static://", operations=(operation,))
            )
        else:
            index = self.out.apis.index(existing)
            self.out.apis[index] = ConsumedApi(
                namespace=static_ns, base_uri="static://", operations=(*existing.operations, operation)
            )
        return f"{static_ns}.{name}", None

    # -- schemas -------------------------------------------------------------
    def _declared_schema(self, params: list[InputParameter], path: str, *, rest: bool) -> JsonSchema:
        properties: dict[str, Any] = {}
        required: list[str] = []
        for p in params:
            properties[p.name] = self._param_schema(p, path)
            # Generated files omit `required` on optional inputs (the schema default is true).
            if p.required or (p.required is None and self.strict):
                required.append(p.name)
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        return schema

    def _param_schema(self, p: InputParameter, path: str) -> dict[str, Any]:
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
                self.warn(f"{path}.{p.name}.pattern", f"invalid pattern {p.pattern!r}; not enforced")
        return schema

    def _derived_schema(self, tool: ToolSpec, namespace: str, operation: str) -> JsonSchema:
        """A tool without declared inputs: its inputs come from `with` and the consumed operation."""
        op = self.ops.get(operation)
        op_params = {p.name: p for p in op.params} if op else {}
        properties: dict[str, Any] = {}
        required: list[str] = []

        def add(name: str, source: InputParameter | None) -> None:
            if name in properties:
                return
            # An argument nothing declares may be any JSON value: a body template keeps arrays and numbers.
            properties[name] = (
                self._param_schema(source, "") if source else {"description": f"passed to {operation}"}
            )
            if source is not None and source.required:
                required.append(name)

        mapped_targets: set[str] = set()
        for key, value in (tool.with_ or {}).items():
            mapped_targets.add(key)
            for ref in _argument_refs(value, namespace):
                add(ref, op_params.get(key) or op_params.get(ref))
        if op is not None:
            for p in op.params:
                if p.name in mapped_targets or p.value is not None or p.in_ == "environment":
                    continue
                add(p.name, p)
            for name in templates.names(op.path):
                if name not in mapped_targets:
                    add(name.split(".", 1)[-1], None)
                    if name.split(".", 1)[-1] not in required:
                        required.append(name.split(".", 1)[-1])
            for name in _body_refs(op.spec.body):
                add(name, None)
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = sorted(set(required))
        return schema

    # -- outputs ------------------------------------------------------------
    def _output(self, outputs: list[OutputParameter], path: str) -> Callable[[Any], Any] | None:
        if not outputs:
            return None
        compiled = [self._output_one(o, f"{path}[{i}]") for i, o in enumerate(outputs)]
        mappers = [m for m in compiled if m is not None]
        if not mappers:
            return None

        def first_non_null(document: Any) -> Any:
            for mapper in mappers:
                value = mapper(document)
                if value is not None:
                    return value
            return None

        return first_non_null

    def _output_one(self, o: OutputParameter, path: str) -> Callable[[Any], Any] | None:
        kind = (o.type or "object").lower()
        expression = o.mapping
        if expression is None and isinstance(o.value, str) and o.value.strip().startswith("$"):
            expression = o.value
        if expression is None and (o.value is not None or o.const is not None):
            static = o.const if o.const is not None else o.value
            return lambda _document: static
        finder = None
        if expression is not None:
            try:
                finder = compile_path(expression).find
            except JsonPathError as exc:
                raise FileError(f"{path}.mapping: invalid JSONPath: {exc}") from None
        if kind == "array":
            item = self._output_one(o.items, f"{path}.items") if o.items else None
            if finder is None:
                return None

            def array(document: Any) -> Any:
                found = finder(document)
                if found is None:
                    return None
                elements = found if isinstance(found, list) else [found]
                return [item(element) for element in elements] if item else elements

            return array
        if kind == "object" and o.properties:
            props = {k: self._output_one(v, f"{path}.properties.{k}") for k, v in o.properties.items()}

            def obj(document: Any) -> Any:
                base = finder(document) if finder else document
                return {k: (m(base) if m else None) for k, m in props.items()}

            return obj
        if kind == "object" and o.values is not None and finder is not None:
            each = self._output_one(o.values, f"{path}.values")

            def mapped(document: Any) -> Any:
                found = finder(document)
                if not isinstance(found, dict):
                    return found
                return {k: (each(v) if each else v) for k, v in found.items()}

            return mapped
        if finder is None:
            return None
        if o.maxLength:
            limit = o.maxLength

            def trimmed(document: Any) -> Any:
                value = finder(document)
                return value[:limit] if isinstance(value, str) else value

            return trimmed
        return finder


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _route_path(path: str) -> str:
    return re.sub(r"\{\{\s*([^}\s]+)\s*\}\}", r"{\1}", path)


_PREFIXES = ("tools", "rest")


def _argument_refs(value: Any, namespace: str) -> list[str]:
    """Caller arguments a `with` value refers to: ``tools.x``, ``rest.x``, ``<ns>.x``, or ``{{tools.x}}``."""
    if not isinstance(value, str):
        return []
    ref = _reference(value, namespace)
    if ref is not None:
        return [ref]
    return [
        n.split(".", 1)[1] if n.split(".", 1)[0] in (*_PREFIXES, namespace) else n
        for n in templates.names(value, single_brace=False)
    ]


def _reference(value: str, namespace: str) -> str | None:
    prefix, _, name = value.partition(".")
    if name and prefix in (*_PREFIXES, namespace) and re.fullmatch(r"[A-Za-z0-9_\-]+", name):
        return name
    return None


def _body_refs(body: Any) -> list[str]:
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, str):
            found.extend(n.split(".", 1)[-1] for n in templates.names(node, single_brace=False))
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(body.get("data") if isinstance(body, dict) and "type" in body else body)
    return found


@dataclass(frozen=True)
class WithMapping:
    """An exposure's ``with``: the caller's arguments pass by name, then ``with`` keys are set."""

    with_: Mapping[str, Any] | None
    namespace: str

    def __call__(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        result = dict(arguments)
        for key, value in (self.with_ or {}).items():
            if isinstance(value, str):
                ref = _reference(value, self.namespace)
                if ref is not None:
                    if ref in arguments:
                        result[key] = arguments[ref]
                    else:
                        result.pop(key, None)
                    continue
                whole = templates.whole_placeholder(value)
                if whole is not None:
                    found = templates.lookup(arguments, whole)
                    if found is not None:
                        result[key] = found
                    continue
                result[key] = templates.render(value, arguments, single_brace=False)
            else:
                result[key] = value
        return result


@dataclass(frozen=True)
class NaftikoRequest:
    """Builds one consumed operation's request (spec §4.4 to §4.6)."""

    method: str
    path: str
    params: list[InputParameter]
    body: Any
    body_path: str

    def __call__(self, arguments: Mapping[str, Any], variables: Mapping[str, str]) -> OutboundRequest:
        context: dict[str, Any] = {**variables, **arguments}
        query: list[tuple[str, str]] = []
        headers: dict[str, str] = {}
        cookies: list[str] = []
        body_params: dict[str, Any] = {}
        for p in self.params:
            value = self._value(p, context, arguments)
            if value is None:
                if p.required:
                    raise MissingArgument({p.name: [f"is required ({p.in_ or 'query'} parameter)"]})
                continue
            where = p.in_ or "query"
            if where == "query":
                query.append((p.name, templates.as_text(value)))
            elif where == "header":
                text = templates.as_text(value)
                if "\r" in text or "\n" in text:
                    raise InvalidArguments({p.name: ["must not contain line breaks (header parameter)"]})
                headers[p.name] = text
            elif where == "cookie":
                cookies.append(f"{p.name}={quote(templates.as_text(value), safe='')}")
            elif where == "path":
                context[p.name] = value
            elif where == "body":
                body_params[p.name] = value
        if cookies:
            headers["Cookie"] = "; ".join(cookies)

        def missing(name: str) -> str:
            raise MissingArgument({name.split(".", 1)[-1]: ["is required (path parameter)"]})

        path = templates.render(self.path, context, on_missing=missing, encode=lambda v: quote(v, safe=""))
        data, content_type = self._body(context, arguments, body_params)
        return OutboundRequest(self.method, path, tuple(query), headers, data, content_type)

    @staticmethod
    def _value(p: InputParameter, context: Mapping[str, Any], arguments: Mapping[str, Any]) -> Any:
        if isinstance(p.value, str):
            whole = templates.whole_placeholder(p.value)
            if whole is not None:
                return templates.lookup(context, whole)
            if p.value.strip().startswith("$"):
                return arguments.get(p.name)  # an input `mapping` into the body: read by name
            return templates.render(p.value, context) if templates.names(p.value) else p.value
        if p.value is not None:
            return p.value
        if p.in_ == "environment":
            return context.get(p.name)
        return arguments.get(p.name)

    def _body(
        self, context: Mapping[str, Any], arguments: Mapping[str, Any], body_params: dict[str, Any]
    ) -> tuple[bytes | None, str | None]:
        body = self.body
        if body is not None:
            if isinstance(body, str):
                return templates.render(body, context, single_brace=False).encode(), "application/json"
            if isinstance(body, dict) and "type" in body:
                kind = str(body.get("type"))
                data = body.get("data")
                if kind == "json":
                    if isinstance(data, str):
                        return templates.render(
                            data, context, single_brace=False
                        ).encode(), "application/json"
                    return json.dumps(render_json(data, context)).encode(), "application/json"
                if kind == "formUrlEncoded":
                    if isinstance(data, dict):
                        pairs = render_json(data, context)
                        return urlencode(
                            {k: templates.as_text(v) for k, v in pairs.items()}
                        ).encode(), CONTENT_TYPES[kind]
                    return templates.render(
                        str(data or ""), context, single_brace=False
                    ).encode(), CONTENT_TYPES[kind]
                if kind == "multipartForm":
                    return _multipart(data, context)
                text = data if isinstance(data, str) else json.dumps(data)
                rendered = templates.render(text or "", context, single_brace=False).encode()
                return rendered, CONTENT_TYPES.get(kind, "text/plain")
            return json.dumps(render_json(body, context)).encode(), "application/json"
        if body_params:
            document = next(iter(body_params.values())) if len(body_params) == 1 else body_params
            return json.dumps(document).encode(), "application/json"
        if self.method in BODY_METHODS and arguments.get("body") is not None:
            return json.dumps(arguments["body"]).encode(), "application/json"  # request body passthrough
        return None, None


def render_json(node: Any, context: Mapping[str, Any]) -> Any:
    """Render every string leaf; a leaf that is one placeholder keeps the value's JSON type.

    A leaf whose only placeholder is unresolved is dropped (the reference sends ``""``).
    """
    if isinstance(node, dict):
        result = {}
        for key, value in node.items():
            rendered = render_json(value, context)
            if rendered is not _DROP:
                result[key] = rendered
        return result
    if isinstance(node, list):
        return [item for item in (render_json(v, context) for v in node) if item is not _DROP]
    if isinstance(node, str):
        whole = templates.whole_placeholder(node)
        if whole is not None:
            value = templates.lookup(context, whole)
            return _DROP if value is None else value
        return templates.render(node, context, single_brace=False)
    return node


_DROP: Any = object()


def _multipart(data: Any, context: Mapping[str, Any]) -> tuple[bytes, str]:
    boundary = "host-" + secrets.token_hex(12)
    chunks: list[bytes] = []
    for part in data if isinstance(data, list) else []:
        if not isinstance(part, dict) or "name" not in part:
            continue
        value = render_json(part.get("value", ""), context)
        if value is _DROP:
            continue
        disposition = f'form-data; name="{part["name"]}"'
        if part.get("filename"):
            disposition += f'; filename="{part["filename"]}"'
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        if part.get("contentType"):
            head += f"Content-Type: {part['contentType']}\r\n"
        chunks.append(f"{head}\r\n{templates.as_text(value)}\r\n".encode())
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"
