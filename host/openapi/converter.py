"""One OpenAPI document → one capability document.

Every operation becomes one consumed operation, which the MCP tool and the REST operation both call
(``call: ns.op``), so the two sides cannot drift. An operation that cannot be converted faithfully is
not converted: it is returned as a :class:`Refusal` naming the operation and the reason.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from host.openapi import ALPHA3
from host.openapi.names import UniqueNames, env_name, kebab, operation_name, resource_name
from host.openapi.schemas import IDENTIFIER, BodyPlan, Input, Unsupported, describe, json_type, plan_body
from host.openapi.source import Api, Operation, Parameter

PLACEHOLDER_BASE_URI = "https://api.example.com"  # the reference's, for documents without servers
CALLABLE = ("get", "post", "put", "patch", "delete")
# OpenAPI: header parameters with these names SHALL be ignored (the host sets them).
_IGNORED_HEADERS = {"accept", "content-type", "authorization"}
# A repeated parameter (?status=a&status=b): the tool takes one value, a request the API accepts.
_ONE_VALUE = "One value (the API accepts this parameter repeated; this host sends it once)."
_PATH_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


@dataclass
class Options:
    namespace: str | None = None
    mcp: bool = True
    rest: bool = False
    version: str = ALPHA3


@dataclass(frozen=True)
class Refusal:
    operation: str
    reason: str

    def __str__(self) -> str:
        return f"{self.operation}: {self.reason}"


@dataclass
class Conversion:
    document: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    explanations: list[str] = field(default_factory=list)
    variables: list[str] = field(default_factory=list)

    @property
    def operations(self) -> int:
        return len(self.explanations)


@dataclass
class _Converted:
    op: Operation
    name: str
    inputs: list[Input]
    body: BodyPlan | None
    scheme: str | None


def convert(api: Api, options: Options) -> Conversion:
    warnings: list[str] = []
    base = options.namespace or kebab(api.title)
    if not base:
        base = "unknown-api"
        warnings.append("No info.title: the namespace is 'unknown-api' (pass --namespace)")
    names = UniqueNames()
    converted: list[_Converted] = []
    refusals: list[Refusal] = []
    for op in api.operations:
        name = names.take(operation_name(op.operation_id, op.method, op.path))
        try:
            item = _operation(op, name, api)
        except Unsupported as exc:
            refusals.append(Refusal(op.label, str(exc)))
            continue
        converted.append(item)
        warnings += [
            f"{op.label}: parameter {i.name!r} is sent once (the API accepts it repeated)"
            for i in item.inputs
            if i.description.endswith(_ONE_VALUE)
        ]
    groups = _namespaces(base, converted)
    conversion = Conversion(document={}, warnings=warnings, refusals=refusals)
    consumes = [_consumes(ns, scheme, items, api, conversion) for (ns, scheme), items in groups.items()]
    namespace_of = {id(item): ns for (ns, _), items in groups.items() for item in items}
    exposes: list[dict[str, Any]] = []
    if options.rest:
        exposes.append(_rest(base, converted, namespace_of))
    if options.mcp:
        exposes.append(_mcp(base, api, converted, namespace_of))
    for item in converted:
        conversion.explanations.append(_explain(item, namespace_of[id(item)]))
    description = api.description or api.title or base
    conversion.document = {
        "naftiko": options.version,
        "info": {"label": api.title or base, "description": description},
        "capability": {"consumes": consumes, "exposes": exposes},
    }
    if conversion.variables:
        conversion.document["binds"] = [
            {
                "namespace": f"{base}-env",
                "description": "Upstream credentials, read from these environment variables.",
                "keys": {name: name for name in conversion.variables},
            }
        ]
    return conversion


# -- one operation ------------------------------------------------------------------------------


def _operation(op: Operation, name: str, api: Api) -> _Converted:
    if op.method not in CALLABLE:
        raise Unsupported(f"method {op.method.upper()} cannot be called by a capability file")
    if op.raw.get("callbacks"):
        raise Unsupported("callbacks: the API calls back a URL the caller registers; a capability cannot")
    inputs: list[Input] = []
    seen: dict[str, str] = {}
    for parameter in op.parameters:
        entry = _parameter(parameter, api)
        if entry is None:
            continue
        if entry.name in seen:
            raise Unsupported(
                f"parameters {entry.name!r} in {seen[entry.name]} and in {entry.location} share a name"
            )
        seen[entry.name] = entry.location
        inputs.append(entry)
    for placeholder in _PATH_PLACEHOLDER.findall(op.path):
        if placeholder not in seen:  # undeclared in the document: still needed to build the URL
            if not IDENTIFIER.match(placeholder):
                raise Unsupported(f"path placeholder {{{placeholder}}} cannot be named in a capability")
            seen[placeholder] = "path"
            inputs.append(Input(placeholder, "path", "string", f"The {placeholder} path segment.", True))
    body = plan_body(op.body, api.resolver, set(seen)) if op.body is not None else None
    if body is not None:
        inputs += [*body.fields, *([body.whole] if body.whole else [])]
    requirements = op.security if op.security is not None else api.security
    return _Converted(op, name, inputs, body, _scheme(requirements, api.security_schemes))


def _parameter(parameter: Parameter, api: Api) -> Input | None:
    where = parameter.location
    if where == "header" and parameter.name.lower() in _IGNORED_HEADERS:
        return None
    if where not in ("query", "header", "path", "cookie"):
        raise Unsupported(f"parameter {parameter.name!r} is in {where!r}, which a capability cannot send")
    if not IDENTIFIER.match(parameter.name):
        raise Unsupported(
            f"parameter {parameter.name!r} ({where}): a capability file names parameters with letters, "
            "digits, '-' and '_' only"
        )
    kind = json_type(parameter.schema, api.resolver) or "string"
    text = describe(parameter.schema, api.resolver, parameter.description)
    if kind == "array":
        kind, note = "string", _array_style(parameter)
        text = f"{text} {note}".strip()
    elif kind == "object":
        raise Unsupported(
            f"parameter {parameter.name!r} ({where}) is an object; its serialisation is not kept"
        )
    return Input(
        parameter.name, where, kind, text or f"The {parameter.name} {where} parameter.", parameter.required
    )


def _array_style(parameter: Parameter) -> str:
    """Arrays travel as one comma-separated value; any other serialisation cannot be sent faithfully."""
    if parameter.swagger_format is not None:
        if parameter.swagger_format == "multi":
            return _ONE_VALUE
        if parameter.swagger_format != "csv":
            raise Unsupported(
                f"parameter {parameter.name!r}: collectionFormat {parameter.swagger_format!r} is not sent "
                "by this host (csv or multi only)"
            )
        return "Comma-separated values."
    style = parameter.style or ("form" if parameter.location in ("query", "cookie") else "simple")
    explode = parameter.explode if parameter.explode is not None else style == "form"
    if style == "simple" or (style == "form" and not explode):
        return "Comma-separated values."
    if style == "form":
        return _ONE_VALUE
    raise Unsupported(
        f"parameter {parameter.name!r} ({parameter.location}) is an array sent as style={style}"
    )


# -- authentication -----------------------------------------------------------------------------


def _scheme(requirements: list[dict[str, Any]] | None, schemes: dict[str, dict[str, Any]]) -> str | None:
    """The security scheme this operation is called with: the first alternative the host can perform."""
    if not requirements:
        return None
    reasons = []
    for alternative in requirements:
        if not alternative:
            return None  # {} : anonymous access is one of the alternatives
        if len(alternative) > 1:
            reasons.append(f"{' and '.join(alternative)} together")
            continue
        name = next(iter(alternative))
        problem = _scheme_problem(name, schemes.get(name))
        if problem is None:
            return name
        reasons.append(problem)
    raise Unsupported("security: " + "; ".join(reasons))


def _scheme_problem(name: str, scheme: dict[str, Any] | None) -> str | None:
    if scheme is None:
        return f"scheme {name!r} is not defined"
    kind = str(scheme.get("type") or "")
    if kind == "apiKey":
        where = str(scheme.get("in") or "header")
        if where == "cookie":
            return (
                f"{name!r} is cookie authentication (a session flow); a capability sends header or query keys"
            )
        return (
            None if where in ("header", "query") and scheme.get("name") else f"{name!r}: apiKey in {where!r}"
        )
    if kind == "http":
        http = str(scheme.get("scheme") or "").lower()
        return (
            None if http in ("bearer", "basic", "digest") else f"{name!r}: HTTP {http or '?'} authentication"
        )
    if kind in ("basic", "oauth2", "openIdConnect"):
        return None
    return f"{name!r}: {kind or 'missing type'} authentication is not supported"


def _authentication(ns: str, scheme: dict[str, Any], conversion: Conversion) -> dict[str, Any]:
    kind = str(scheme.get("type"))
    http = str(scheme.get("scheme") or "").lower()

    def var(suffix: str) -> str:
        name = env_name(ns, suffix)
        if name not in conversion.variables:
            conversion.variables.append(name)
        return "{{" + name + "}}"

    if kind == "apiKey":
        placement = str(scheme.get("in") or "header")
        return {"type": "apikey", "key": str(scheme["name"]), "value": var("api-key"), "placement": placement}
    if kind == "basic" or http in ("basic", "digest"):
        if http == "digest":
            conversion.warnings.append(f"{ns}: Digest authentication mapped to username and password binds")
        return {"type": http or "basic", "username": var("username"), "password": var("password")}
    if kind in ("oauth2", "openIdConnect"):
        conversion.warnings.append(
            f"{ns}: {kind}: the host runs no OAuth flow; it sends the access token you set as a bearer token"
        )
        return {"type": "bearer", "token": var("access-token")}
    return {"type": "bearer", "token": var("token")}


# -- consumes -----------------------------------------------------------------------------------


def _namespaces(base: str, items: list[_Converted]) -> dict[tuple[str, str | None], list[_Converted]]:
    """One consumed namespace per security scheme in use (a namespace has one authentication);
    the most used one is named ``base``."""
    counts = Counter(item.scheme for item in items)
    order = sorted(counts, key=lambda scheme: -counts[scheme])
    names = {
        scheme: base if i == 0 else f"{base}-{kebab(scheme or 'public')}" for i, scheme in enumerate(order)
    }
    groups: dict[tuple[str, str | None], list[_Converted]] = {}
    for item in items:
        groups.setdefault((names[item.scheme], item.scheme), []).append(item)
    return groups or {(base, None): []}


def _consumes(
    ns: str, scheme: str | None, items: list[_Converted], api: Api, conversion: Conversion
) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "http", "namespace": ns, "baseUri": _base_uri(api, conversion)}
    if api.description:
        block["description"] = api.description
    if scheme is not None:
        block["authentication"] = _authentication(ns, api.security_schemes[scheme], conversion)
    resources: dict[str, dict[str, Any]] = {}
    for item in items:
        resource = resources.setdefault(
            item.op.path,
            {
                "name": resource_name(item.op.path),
                "path": _PATH_PLACEHOLDER.sub(r"{{\1}}", item.op.path),
                "operations": [],
            },
        )
        resource["operations"].append(_consumed_operation(item))
    block["resources"] = list(resources.values())
    return block


def _base_uri(api: Api, conversion: Conversion) -> str:
    url = api.servers[0].rstrip("/") if api.servers else ""
    if url.startswith(("http://", "https://")):
        return url
    message = (
        f"No servers defined: the base URI is {PLACEHOLDER_BASE_URI}"
        if not url
        else f"The server URL {url!r} is relative: the base URI is {PLACEHOLDER_BASE_URI}{url}"
    )
    if message + "; set [consumes.<namespace>] base_uri" not in conversion.warnings:
        conversion.warnings.append(message + "; set [consumes.<namespace>] base_uri")
    return PLACEHOLDER_BASE_URI + url


def _consumed_operation(item: _Converted) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": item.name, "method": item.op.method.upper()}
    if item.op.summary:
        spec["label"] = item.op.summary
    if item.op.description:
        spec["description"] = item.op.description
    params = [{"name": i.name, "in": i.location} for i in item.inputs if i.location != "body"]
    body = item.body
    if body is not None and body.whole is not None:
        params.append({"name": body.whole.name, "in": "body"})  # the one body input is the whole body
    elif body is not None:
        params += [{"name": i.name, "in": "body"} for i in body.fields]
        data = {i.name: "{{" + i.name + "}}" for i in body.fields}
        spec["body"] = {"type": body.kind, "data": data}
    if params:
        spec["inputParameters"] = params
    return spec


# -- exposes ------------------------------------------------------------------------------------


def _description(op: Operation) -> str:
    text = "\n\n".join(part for part in (op.summary, op.description) if part)
    return text or f"{op.method.upper()} {op.path}"


def _hints(method: str) -> dict[str, bool]:
    """HTTP's own semantics (RFC 9110): GET is safe, PUT and DELETE idempotent, DELETE destroys."""
    return {
        "get": {"readOnly": True, "idempotent": True},
        "put": {"readOnly": False, "idempotent": True},
        "delete": {"readOnly": False, "destructive": True, "idempotent": True},
    }.get(method, {"readOnly": False, "idempotent": False})


def _mcp(base: str, api: Api, items: list[_Converted], namespace_of: dict[int, str]) -> dict[str, Any]:
    tools = []
    for item in items:
        tool: dict[str, Any] = {"name": item.name}
        if item.op.summary:
            tool["label"] = item.op.summary
        tool["description"] = _description(item.op)
        tool["call"] = f"{namespace_of[id(item)]}.{item.name}"
        tool["hints"] = _hints(item.op.method)
        if item.inputs:
            tool["inputParameters"] = [
                {"name": i.name, "type": i.type, "description": i.description, "required": i.required}
                for i in item.inputs
            ]
        tools.append(tool)
    adapter: dict[str, Any] = {"type": "mcp", "namespace": f"{base}-mcp", "port": 9090}
    adapter["description"] = api.description or api.title or base
    adapter["tools"] = tools
    return adapter


def _rest(base: str, items: list[_Converted], namespace_of: dict[int, str]) -> dict[str, Any]:
    resources: dict[str, dict[str, Any]] = {}
    for item in items:
        resource = resources.setdefault(
            item.op.path, {"path": item.op.path, "name": resource_name(item.op.path), "operations": []}
        )
        operation: dict[str, Any] = {"method": item.op.method.upper(), "name": item.name}
        if item.op.summary:
            operation["label"] = item.op.summary
        operation["description"] = _description(item.op)
        operation["call"] = f"{namespace_of[id(item)]}.{item.name}"
        if item.inputs:
            operation["inputParameters"] = [
                {"name": i.name, "in": i.location, "type": i.type, "description": i.description}
                for i in item.inputs
            ]
        resource["operations"].append(operation)
    return {"type": "rest", "namespace": f"{base}-rest", "port": 8080, "resources": list(resources.values())}


def _explain(item: _Converted, ns: str) -> str:
    inputs = ", ".join(
        f"{i.name} ({i.location}, {i.type}, {'required' if i.required else 'optional'})" for i in item.inputs
    )
    auth = f"; authenticated with {item.scheme!r}" if item.scheme else ""
    return f"tool {item.name}: from {item.op.label}, calls {ns}.{item.name}; inputs: {inputs or 'none'}{auth}"
