"""Placeholders in URIs, paths, headers and bodies: ``{{name}}``, ``{{ns.name}}`` and ``{name}``.

One renderer for the whole host. A name is looked up as written, then, when
it is qualified (``env.TOKEN``, ``tools.city``), without its first segment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote_plus

MUSTACHE = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")
SINGLE = re.compile(r"(?<!\{)\{([A-Za-z0-9_.\-]+)\}(?!\})")
ANY_PLACEHOLDER = re.compile(MUSTACHE.pattern + "|" + SINGLE.pattern)


def lookup(context: Mapping[str, Any], name: str) -> Any:
    """The value of ``name`` in ``context``; ``None`` when absent."""
    if name in context:
        return context[name]
    if "." in name:
        short = name.split(".", 1)[1]
        if short in context:
            return context[short]
    return None


def names(template: str, *, single_brace: bool = True) -> list[str]:
    """Placeholder names in ``template``, in order."""
    pattern = ANY_PLACEHOLDER if single_brace else MUSTACHE
    return [next(group for group in m.groups() if group) for m in pattern.finditer(template)]


def render(
    template: str,
    context: Mapping[str, Any],
    *,
    single_brace: bool = True,
    on_missing: Callable[[str], str] | None = None,
    encode: Callable[[str], str] | None = None,
    keep_missing: bool = False,
) -> str:
    """Fill placeholders from ``context``.

    :param on_missing: called with the name of an unresolved placeholder; its
        result is used (raise to refuse). Default: the empty string, as Mustache.
    :param encode: applied to each substituted value (percent-encoding in paths).
    :param keep_missing: leave an unresolved placeholder exactly as written (prompt text).
    """
    pattern = ANY_PLACEHOLDER if single_brace else MUSTACHE

    def fill(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        value = lookup(context, name)
        if value is None:
            if keep_missing:
                return match.group(0)
            return on_missing(name) if on_missing else ""
        text = as_text(value)
        return encode(text) if encode else text

    return pattern.sub(fill, template)


def whole_placeholder(template: str) -> str | None:
    """The name when ``template`` is exactly one ``{{name}}`` (its value then keeps its JSON type)."""
    match = MUSTACHE.fullmatch(template.strip())
    return match.group(1) if match else None


def value_of(template: str, context: Mapping[str, Any]) -> Any:
    """A ``{{name}}`` template's value: exactly one placeholder keeps the value's type (``None`` when
    absent); any other text is filled as a string."""
    whole = whole_placeholder(template)
    return lookup(context, whole) if whole is not None else render(template, context, single_brace=False)


def as_text(value: Any) -> str:
    """A value as it goes into a URL, a header or a form: JSON booleans, compact JSON for containers."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def render_body(template: str, context: Mapping[str, Any], body_format: str) -> str:
    """Fill ``{{name}}`` placeholders in a string body so that each value stays one value of its format.

    JSON and YAML: inside a quoted string a value is string-escaped; elsewhere it is one JSON value (a
    numeric text stays a number). Forms: form-encoded. XML: entity-escaped. SPARQL: a string-literal
    escape. Plain text has no structure to break, and is filled as it is.
    """
    if body_format in {"json", "yaml"}:
        return _render_quoted(template, context, yaml=body_format == "yaml")
    return render(template, context, single_brace=False, encode=_BODY_ESCAPES.get(body_format))


def _render_quoted(template: str, context: Mapping[str, Any], *, yaml: bool) -> str:
    parts: list[str] = []
    quote: str | None = None
    position = 0
    for match in MUSTACHE.finditer(template):
        literal = template[position : match.start()]
        quote = _quote_after(literal, quote, yaml=yaml)
        parts.append(literal)
        value = lookup(context, match.group(1))
        if quote == '"':
            parts.append(_json_string_content("" if value is None else as_text(value)))
        elif quote == "'":  # YAML single quotes: no escapes; a line break would only be folded to a space
            text = "" if value is None else as_text(value)
            parts.append(text.replace("'", "''").replace("\r", " ").replace("\n", " "))
        else:
            parts.append(_json_value(value))
        position = match.end()
    parts.append(template[position:])
    return "".join(parts)


def _quote_after(text: str, quote: str | None, *, yaml: bool) -> str | None:
    """The quote open at the end of ``text``, given the one open at its start."""
    escaped = False
    for char in text:
        if quote == '"':
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quote = None
        elif quote == "'":
            if char == "'":  # YAML's '' closes and reopens: the state comes out right
                quote = None
        elif char == '"' or (yaml and char == "'"):
            quote = char
    return quote


def _json_string_content(text: str) -> str:
    return json.dumps(text)[1:-1]  # ASCII escapes: a lone surrogate cannot break the encoding


def _json_value(value: Any) -> str:
    """One JSON value: a text that reads as a number or a boolean keeps that type (query values are text)."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value, parse_constant=_refuse)
        except (ValueError, RecursionError):
            parsed = value
        if isinstance(parsed, bool | int | float):
            value = parsed
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return json.dumps(as_text(value))


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _xml_escape(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&apos;")
    )


_BODY_ESCAPES: dict[str, Callable[[str], str]] = {
    "formUrlEncoded": lambda text: quote_plus(text, safe=""),
    "xml": _xml_escape,
    "sparql": lambda text: _json_string_content(text).replace("'", "\\'"),
}
