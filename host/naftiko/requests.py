"""Building a consumed operation's request from a caller's arguments (spec §4.4 to §4.6)."""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from host import templates
from host.errors import InvalidArguments, MissingArgument
from host.model import OutboundRequest
from host.naftiko.document import InputParameter

BODY_METHODS = {"POST", "PUT", "PATCH"}
CONTENT_TYPES = {
    "json": "application/json",
    "xml": "application/xml",
    "sparql": "application/sparql-query",
    "text": "text/plain",
    "yaml": "application/yaml",
    "formUrlEncoded": "application/x-www-form-urlencoded",
}
log = logging.getLogger("host.naftiko")

# Prefixes by which a `with` value or template names the caller's argument `x`: `tools.x`, `rest.x`.
PREFIXES = ("tools", "rest")


def argument_refs(value: Any, namespace: str) -> list[str]:
    """Caller arguments a `with` value refers to: ``tools.x``, ``rest.x``, ``<ns>.x``, or ``{{tools.x}}``."""
    if not isinstance(value, str):
        return []
    ref = reference(value, namespace)
    if ref is not None:
        return [ref]
    return [
        n.split(".", 1)[1] if n.split(".", 1)[0] in (*PREFIXES, namespace) else n
        for n in templates.names(value, single_brace=False)
    ]


def reference(value: str, namespace: str) -> str | None:
    prefix, _, name = value.partition(".")
    if name and prefix in (*PREFIXES, namespace) and re.fullmatch(r"[A-Za-z0-9_\-]+", name):
        return name
    return None


def body_refs(body: Any) -> list[str]:
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


class FileTemplate(str):
    """A ``with`` value as the capability file wrote it, naming no caller argument: the request builder
    fills it from the operator's bound variables. Only the compiled file makes one, never a caller's
    text (JSON cannot), so a caller's braces are never rendered."""


def _filled(arguments: Mapping[str, Any], variables: Mapping[str, str]) -> Mapping[str, Any]:
    """``arguments`` with each :class:`FileTemplate` rendered from ``variables``; one that names a
    variable without a value is left out, as an unresolved ``with`` value always was."""
    templated = [name for name, value in arguments.items() if isinstance(value, FileTemplate)]
    if not templated:
        return arguments
    filled = dict(arguments)
    for name in templated:
        try:
            filled[name] = templates.render(filled[name], variables, single_brace=False, on_missing=_unset)
        except KeyError:
            del filled[name]
    return filled


def _unset(name: str) -> str:
    raise KeyError(name)


def _names_an_argument(value: str, arguments: Mapping[str, Any]) -> bool:
    return any(templates.lookup(arguments, n) is not None for n in templates.names(value, single_brace=False))


@dataclass(frozen=True)
class WithMapping:
    """An exposure's ``with``: the caller's arguments pass by name, then ``with`` keys are set.

    ``body_inputs`` are exposed ``in: body`` inputs whose ``value`` is a JSONPath into the caller's
    body (the ``body_argument``, or the arguments themselves when there is none): each is read first.
    """

    with_: Mapping[str, Any] | None
    namespace: str
    body_inputs: tuple[tuple[str, Callable[[Any], Any]], ...] = ()
    body_argument: str | None = None

    def __call__(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        arguments = self._read_body_inputs(arguments)
        result = dict(arguments)
        for key, value in (self.with_ or {}).items():
            if isinstance(value, str):
                ref = reference(value, self.namespace)
                if ref is not None:
                    if ref in arguments:
                        result[key] = arguments[ref]
                    else:
                        result.pop(key, None)
                    continue
                whole = templates.whole_placeholder(value)
                found = templates.lookup(arguments, whole) if whole is not None else None
                if found is not None:
                    result[key] = found
                elif templates.names(value, single_brace=False) and not _names_an_argument(value, arguments):
                    # No caller argument in it: the file's own text, filled from the bound variables when
                    # the request is built (binds reach every template: `org_id: '{{SNYK_ORG_ID}}'`).
                    result[key] = FileTemplate(value)
                else:
                    result[key] = templates.render(value, arguments, single_brace=False)
            else:
                result[key] = value
        return result

    def _read_body_inputs(self, arguments: Mapping[str, Any]) -> Mapping[str, Any]:
        if not self.body_inputs:
            return arguments
        document = arguments.get(self.body_argument) if self.body_argument else arguments
        found = {name: find(document) for name, find in self.body_inputs}
        return {**arguments, **{name: value for name, value in found.items() if value is not None}}


def unbound_arguments(arguments: Mapping[str, Any], variables: Mapping[str, str]) -> Mapping[str, Any]:
    """``arguments`` without those named as an operator-bound variable: a bound value always wins.

    A qualified name (``env.TENANT``, ``tools.TENANT``) counts as its last part, as templates look it up.
    """
    ignored = [name for name in arguments if name in variables or name.split(".", 1)[-1] in variables]
    if not ignored:
        return arguments
    for name in ignored:  # the name only: a caller's value may be anything
        log.warning("argument %r ignored: the operator binds a variable of that name", name)
    return {name: value for name, value in arguments.items() if name not in ignored}


@dataclass(frozen=True)
class NaftikoRequest:
    """Builds one consumed operation's request (spec §4.4 to §4.6)."""

    method: str
    path: str
    params: list[InputParameter]
    body: Any

    def __call__(self, arguments: Mapping[str, Any], variables: Mapping[str, str]) -> OutboundRequest:
        arguments = _filled(unbound_arguments(arguments, variables), variables)
        context: dict[str, Any] = {**arguments, **variables}
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
        if body is None:
            if body_params:
                document = next(iter(body_params.values())) if len(body_params) == 1 else body_params
                return json.dumps(document).encode(), "application/json"
            if self.method in BODY_METHODS and arguments.get("body") is not None:
                return json.dumps(arguments["body"]).encode(), "application/json"  # request body passthrough
            return None, None
        if isinstance(body, str):  # a raw string body is a JSON template
            return templates.render_body(body, context, "json").encode(), "application/json"
        if not (isinstance(body, dict) and "type" in body):
            return json.dumps(render_json(body, context)).encode(), "application/json"
        kind, data = str(body["type"]), body.get("data")
        if kind == "multipartForm":
            return _multipart(data, context)
        content_type = CONTENT_TYPES.get(kind, "text/plain")
        if kind == "json" and not isinstance(data, str):
            return json.dumps(render_json(data, context)).encode(), content_type
        if kind == "formUrlEncoded" and isinstance(data, dict):
            pairs = render_json(data, context)
            return urlencode({k: templates.as_text(v) for k, v in pairs.items()}).encode(), content_type
        text = data if isinstance(data, str) else "" if data is None else json.dumps(data)
        return templates.render_body(text, context, kind).encode(), content_type


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
        value = templates.value_of(node, context)  # None only for an unresolved whole placeholder
        return _DROP if value is None else value
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
