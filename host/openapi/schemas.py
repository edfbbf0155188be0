"""OpenAPI schemas as what a capability file can say about an input: a JSON type, a description,
required or not; and request bodies as top-level fields or one whole-body input.

``$ref`` s are followed and ``allOf`` merged, with every reference visited once per walk, so a
recursive schema (a tree of nodes) ends rather than loops.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from host.openapi import OpenApiError
from host.openapi.source import Body, Resolver

JSON_TYPES = ("string", "number", "integer", "boolean", "array", "object")
# Names a capability file can carry (the schema's IdentifierExtended).
IDENTIFIER = re.compile(r"^[A-Za-z0-9_*-]+$")
_ENUM_SHOWN = 12


class Unsupported(Exception):
    """This operation cannot be converted faithfully; the message says why."""


@dataclass(frozen=True)
class Input:
    """One input of the derived tool and REST operation, and where it goes upstream."""

    name: str
    location: str  # query, header, path, cookie, body
    type: str
    description: str
    required: bool


def merged(schema: Any, resolver: Resolver, seen: frozenset[str] = frozenset()) -> dict[str, Any]:
    """``schema`` with ``$ref`` s followed and ``allOf`` folded in (properties and required united)."""
    try:
        target, ref = resolver.deref(schema)
    except OpenApiError as exc:
        raise Unsupported(str(exc)) from None
    if ref is not None:
        if ref in seen:
            return {"description": f"(recursive: {ref})"}
        seen = seen | {ref}
    if not isinstance(target, dict):
        return {}
    result = {key: value for key, value in target.items() if key != "allOf"}
    for part in target.get("allOf") or []:
        piece = merged(part, resolver, seen)
        for key, value in piece.items():
            if key == "properties":
                result["properties"] = {**piece["properties"], **(result.get("properties") or {})}
            elif key == "required":
                result["required"] = sorted({*value, *(result.get("required") or [])})
            else:
                result.setdefault(key, value)
    return result


def json_type(schema: Any, resolver: Resolver, seen: frozenset[str] = frozenset()) -> str | None:
    """The one JSON type of a schema; ``None`` when it allows several (or says nothing)."""
    node = merged(schema, resolver, seen)
    declared = node.get("type")
    if isinstance(declared, list):  # OpenAPI 3.1: ["string", "null"]
        declared = next((t for t in declared if t != "null"), None) if len(declared) <= 2 else None
    if isinstance(declared, str):
        return declared if declared in JSON_TYPES else None
    if "properties" in node or "additionalProperties" in node:
        return "object"
    if "items" in node:
        return "array"
    alternatives = node.get("oneOf") or node.get("anyOf")
    if isinstance(alternatives, list) and alternatives:
        kinds = {json_type(alt, resolver, seen) for alt in alternatives} - {"null"}
        return kinds.pop() if len(kinds) == 1 and None not in kinds else None
    enum = node.get("enum")
    if isinstance(enum, list) and enum:
        return _value_type(enum[0])
    return None


def _value_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "object" if isinstance(value, dict) else "array" if isinstance(value, list) else "string"


def describe(schema: Any, resolver: Resolver, own: str = "") -> str:
    """The description an agent reads: the parameter's own text, else the schema's, plus its constraints."""
    node = merged(schema, resolver)
    text = own or str(node.get("description") or node.get("title") or "").strip()
    extras = []
    enum = node.get("enum")
    if isinstance(enum, list) and enum:
        shown = ", ".join(str(v) for v in enum[:_ENUM_SHOWN]) + (", ..." if len(enum) > _ENUM_SHOWN else "")
        extras.append(f"One of: {shown}.")
    if node.get("format"):
        extras.append(f"Format: {node['format']}.")
    if "default" in node:
        extras.append(f"Default: {node['default']}.")
    return " ".join(part for part in [text, *extras] if part)


def alternatives(schema: Any, resolver: Resolver) -> list[Any] | None:
    node = merged(schema, resolver)
    choices = node.get("oneOf") or node.get("anyOf")
    return choices if isinstance(choices, list) and choices else None


@dataclass(frozen=True)
class BodyPlan:
    """How the request body is built: from top-level ``fields``, or from one ``whole`` input."""

    kind: str  # json or formUrlEncoded
    fields: tuple[Input, ...] = ()
    whole: Input | None = None


def plan_body(body: Body, resolver: Resolver, taken: set[str]) -> BodyPlan:
    """Top-level properties become inputs (the reference's rule) unless their names clash with
    ``taken`` or cannot be written; then the body is one ``body`` input, sent as it is."""
    kind = _body_kind(body.media_type)
    choices = alternatives(body.schema, resolver)
    body_type = json_type(body.schema, resolver)
    if choices is not None and body_type is None:
        raise Unsupported(
            f"the request body is a oneOf/anyOf of {len(choices)} schemas of different types; "
            "one tool input cannot express it"
        )
    node = merged(body.schema, resolver)
    properties: dict[str, Any] = node["properties"] if isinstance(node.get("properties"), dict) else {}
    nameable = all(IDENTIFIER.match(name) for name in properties)
    if choices is None and properties and nameable and not taken & set(properties):
        required = set(node.get("required") or [])
        return BodyPlan(kind, fields=tuple(_fields(properties, required, body.required, resolver)))
    if kind == "formUrlEncoded":
        raise Unsupported("the form body has no fields this host can name")
    if "body" in taken:
        raise Unsupported("a parameter named 'body' clashes with the request body")
    text = body.description or describe(body.schema, resolver)
    if choices is not None:
        names = [merged(c, resolver).get("title") or resolver.deref(c)[1] or "inline" for c in choices]
        text = f"{text} One of: {', '.join(str(n).rsplit('/', 1)[-1] for n in names)}.".strip()
    description = text or "The request body."
    return BodyPlan(kind, whole=Input("body", "body", body_type or "object", description, body.required))


def _body_kind(media_type: str) -> str:
    media = media_type.split(";", 1)[0].strip().lower()
    if media.startswith("multipart/"):
        raise Unsupported(f"request body {media_type}: multipart uploads are not converted")
    if media == "application/x-www-form-urlencoded":
        return "formUrlEncoded"
    if media in ("application/json", "*/*") or media.endswith("+json"):
        return "json"
    raise Unsupported(f"request body {media_type} is not JSON or a URL-encoded form")


def _fields(
    properties: dict[str, Any], required: set[str], body_required: bool, resolver: Resolver
) -> list[Input]:
    fields = []
    for name, prop in properties.items():
        if merged(prop, resolver).get("readOnly"):
            continue  # the server sets it; a request never carries it
        fields.append(
            Input(
                name=name,
                location="body",
                type=json_type(prop, resolver) or "string",
                description=describe(prop, resolver) or f"The body's {name!r} field.",
                # The fields of an optional body are all optional.
                required=body_required and name in required,
            )
        )
    return fields
