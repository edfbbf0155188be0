"""Reading an OpenAPI document: Swagger 2.0, OpenAPI 3.0 and 3.1 into one normalised view.

``$ref`` s are resolved with the ``referencing`` library (the one jsonschema uses): references inside
the document, and to other local files next to it. Nothing is fetched from the network: a document
that points elsewhere is refused, naming the reference.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import yaml
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource, Unresolvable
from referencing.jsonschema import DRAFT202012

from host.openapi import OpenApiError, is_openapi

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def read_document(path: Path) -> dict[str, Any]:
    """Parse ``path`` (YAML or JSON) into a mapping, or raise :class:`OpenApiError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OpenApiError(f"{path}: cannot read the file: {exc}") from None
    try:
        document = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise OpenApiError(f"{path}: not valid YAML or JSON{where}") from None
    if not is_openapi(document):
        raise OpenApiError(f"{path}: not an OpenAPI document (no 'openapi' or 'swagger' version at the top)")
    assert isinstance(document, dict)
    return document


class Resolver:
    """``$ref`` resolution over the document and local files beside it; cycles are the caller's to bound."""

    def __init__(self, document: Mapping[str, Any], base: Path | None) -> None:
        self.base_uri = base.resolve().as_uri() if base else "urn:openapi:document"
        root = DRAFT202012.create_resource(document)
        registry: Registry[Any] = Registry(retrieve=self._retrieve)  # type: ignore[call-arg]  # attrs alias
        registry = registry.with_resource(self.base_uri, root)
        self._resolver = registry.resolver(base_uri=self.base_uri)

    @staticmethod
    def _retrieve(uri: str) -> Resource[Any]:
        parts = urlsplit(uri)
        if parts.scheme != "file":
            raise NoSuchResource(ref=uri)  # type: ignore[call-arg]
        path = Path(parts.path)
        try:
            text = path.read_text(encoding="utf-8")
            contents = json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=_Loader)
        except (OSError, ValueError, yaml.YAMLError):
            raise NoSuchResource(ref=uri) from None  # type: ignore[call-arg]
        return DRAFT202012.create_resource(contents)

    def deref(self, node: Any, *, limit: int = 32) -> tuple[Any, str | None]:
        """Follow a chain of ``$ref`` s; returns the target and the last reference followed (or None)."""
        seen: list[str] = []
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if ref in seen or len(seen) >= limit:
                raise OpenApiError(f"$ref {ref!r} refers to itself")
            seen.append(ref)
            try:
                node = self._resolver.lookup(urljoin(self.base_uri, ref)).contents
            except Unresolvable:
                raise OpenApiError(
                    f"$ref {ref!r} cannot be resolved (only this document and local files are read)"
                ) from None
        return node, (seen[-1] if seen else None)

    def value(self, node: Any) -> Any:
        return self.deref(node)[0]


@dataclass
class Parameter:
    name: str
    location: str  # query, header, path, cookie
    required: bool
    schema: Any
    description: str = ""
    style: str | None = None
    explode: bool | None = None
    swagger_format: str | None = None  # Swagger 2 collectionFormat


@dataclass
class Body:
    media_type: str
    schema: Any
    required: bool
    description: str = ""


@dataclass
class Operation:
    method: str
    path: str
    operation_id: str | None
    summary: str
    description: str
    parameters: list[Parameter]
    body: Body | None
    security: list[dict[str, Any]] | None
    raw: dict[str, Any] = field(repr=False)

    @property
    def label(self) -> str:
        origin = f"{self.method.upper()} {self.path}"
        return f"{origin} (operationId {self.operation_id})" if self.operation_id else origin


@dataclass
class Api:
    version: str
    title: str
    description: str
    servers: list[str]
    security_schemes: dict[str, dict[str, Any]]
    security: list[dict[str, Any]] | None
    operations: list[Operation]
    resolver: Resolver


def parse(document: Mapping[str, Any], base: Path | None = None) -> Api:
    """The normalised view of an OpenAPI or Swagger document."""
    resolver = Resolver(document, base)
    swagger = str(document.get("swagger", "")) == "2.0"
    info = resolver.value(document.get("info")) or {}
    if not isinstance(info, dict):
        info = {}
    components = document.get("components") if isinstance(document.get("components"), dict) else {}
    schemes = document.get("securityDefinitions") if swagger else (components or {}).get("securitySchemes")
    resolved_schemes = {str(name): resolver.value(scheme) for name, scheme in (schemes or {}).items()}
    return Api(
        version=f"Swagger {document['swagger']}" if swagger else f"OpenAPI {document.get('openapi')}",
        title=str(info.get("title") or ""),
        description=str(info.get("description") or info.get("summary") or ""),
        servers=_swagger_servers(document) if swagger else _servers(document, resolver),
        security_schemes={
            name: scheme for name, scheme in resolved_schemes.items() if isinstance(scheme, dict)
        },
        security=_security(document.get("security")),
        operations=list(_operations(document, resolver, swagger=swagger)),
        resolver=resolver,
    )


def _servers(document: Mapping[str, Any], resolver: Resolver) -> list[str]:
    urls = []
    for server in document.get("servers") or []:
        server = resolver.value(server)
        if not isinstance(server, dict) or not isinstance(server.get("url"), str):
            continue
        url = server["url"]
        for name, variable in (server.get("variables") or {}).items():
            if isinstance(variable, dict) and "default" in variable:
                url = url.replace("{" + str(name) + "}", str(variable["default"]))
        urls.append(url)
    return urls


def _swagger_servers(document: Mapping[str, Any]) -> list[str]:
    host = document.get("host")
    if not isinstance(host, str) or not host:
        base_path = str(document.get("basePath") or "")
        return [base_path] if base_path else []
    schemes = [s for s in document.get("schemes") or [] if s in ("https", "http")] or ["https"]
    scheme = "https" if "https" in schemes else schemes[0]
    return [f"{scheme}://{host}{document.get('basePath') or ''}"]


def _security(value: Any) -> list[dict[str, Any]] | None:
    if not isinstance(value, list):
        return None
    return [item if isinstance(item, dict) else {} for item in value]


def _operations(document: Mapping[str, Any], resolver: Resolver, *, swagger: bool) -> Iterator[Operation]:
    paths = document.get("paths")
    for path, item in paths.items() if isinstance(paths, dict) else []:
        item = resolver.value(item)
        if not isinstance(item, dict):
            continue
        shared = item.get("parameters") or []
        for method in METHODS:
            raw = item.get(method)
            if not isinstance(raw, dict):
                continue
            declared = _merge_parameters(shared, raw.get("parameters") or [], resolver)
            if swagger:
                parameters, body = _swagger_inputs(declared, raw, document)
            else:
                parameters = [_parameter(p) for p in declared if p.get("in") != "body"]
                body = _body(raw.get("requestBody"), resolver)
            yield Operation(
                method=method,
                path=str(path),
                operation_id=str(raw["operationId"]) if raw.get("operationId") else None,
                summary=str(raw.get("summary") or "").strip(),
                description=str(raw.get("description") or "").strip(),
                parameters=parameters,
                body=body,
                security=_security(raw.get("security")),
                raw=raw,
            )


def _merge_parameters(shared: list[Any], own: list[Any], resolver: Resolver) -> list[dict[str, Any]]:
    """Path-level parameters, overridden by the operation's own of the same name and location."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for node in [*shared, *own]:
        parameter = resolver.value(node)
        if isinstance(parameter, dict) and "name" in parameter:
            merged[(str(parameter["name"]), str(parameter.get("in")))] = parameter
    return list(merged.values())


def _parameter(raw: Mapping[str, Any]) -> Parameter:
    schema = raw.get("schema")
    content = raw.get("content")
    if schema is None and isinstance(content, dict):
        first = next(iter(content.values()), None)
        schema = first.get("schema") if isinstance(first, dict) else None
    location = str(raw.get("in"))
    return Parameter(
        name=str(raw["name"]),
        location=location,
        required=bool(raw.get("required")) or location == "path",
        schema=schema if schema is not None else {},
        description=str(raw.get("description") or "").strip(),
        style=raw.get("style"),
        explode=raw.get("explode"),
    )


def _body(node: Any, resolver: Resolver) -> Body | None:
    body = resolver.value(node)
    if not isinstance(body, dict) or not isinstance(body.get("content"), dict):
        return None
    content = body["content"]
    media = _pick_media_type(list(content))
    entry = content.get(media) if media else None
    return Body(
        media_type=media or ", ".join(content) or "(none)",
        schema=(entry or {}).get("schema", {}) if isinstance(entry, dict) else {},
        required=bool(body.get("required")),
        description=str(body.get("description") or "").strip(),
    )


def _pick_media_type(types: list[str]) -> str | None:
    """JSON first, then a URL-encoded form; anything else is returned as the first type declared."""
    for wanted in ("application/json", "+json", "*/*", "application/x-www-form-urlencoded"):
        for media in types:
            base = media.split(";", 1)[0].strip().lower()
            if base == wanted or (wanted == "+json" and base.endswith("+json")):
                return media
    return types[0] if types else None


_SWAGGER_SCHEMA_KEYS = ("type", "format", "items", "enum", "default", "minimum", "maximum", "pattern")


def _swagger_inputs(
    declared: list[dict[str, Any]], raw: Mapping[str, Any], document: Mapping[str, Any]
) -> tuple[list[Parameter], Body | None]:
    """Swagger 2 keeps the schema on the parameter itself, and the body and form fields among them."""
    consumes = [str(c) for c in raw.get("consumes") or document.get("consumes") or ["application/json"]]
    parameters = [_swagger_parameter(p) for p in declared if p.get("in") not in ("body", "formData")]
    body = next((p for p in declared if p.get("in") == "body"), None)
    if body is not None:
        media = next((c for c in consumes if "json" in c), consumes[0])
        description = str(body.get("description") or "")
        return parameters, Body(media, body.get("schema", {}), bool(body.get("required")), description)
    fields = [p for p in declared if p.get("in") == "formData"]
    return parameters, _swagger_form(fields, consumes) if fields else None


def _swagger_form(fields: list[dict[str, Any]], consumes: list[str]) -> Body:
    properties = {
        str(p["name"]): {**_swagger_schema(p), "description": p.get("description") or ""} for p in fields
    }
    required = [str(p["name"]) for p in fields if p.get("required")]
    form = {"type": "object", "properties": properties, "required": required}
    urlencoded = any("urlencoded" in c for c in consumes) or not any("multipart" in c for c in consumes)
    media = "application/x-www-form-urlencoded" if urlencoded else "multipart/form-data"
    return Body(media, form, bool(required))


def _swagger_schema(parameter: Mapping[str, Any]) -> dict[str, Any]:
    return {key: parameter[key] for key in _SWAGGER_SCHEMA_KEYS if key in parameter}


def _swagger_parameter(p: Mapping[str, Any]) -> Parameter:
    location = str(p.get("in"))
    return Parameter(
        name=str(p["name"]),
        location=location,
        required=bool(p.get("required")) or location == "path",
        schema=_swagger_schema(p),
        description=str(p.get("description") or "").strip(),
        swagger_format=str(p.get("collectionFormat") or "csv") if p.get("type") == "array" else None,
    )
