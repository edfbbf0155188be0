"""Placeholders in URIs, paths, headers and bodies: ``{{name}}``, ``{{ns.name}}`` and ``{name}``.

One renderer for the whole host. A name is looked up as written, then, when
it is qualified (``env.TOKEN``, ``tools.city``), without its first segment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

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
) -> str:
    """Fill placeholders from ``context``.

    :param on_missing: called with the name of an unresolved placeholder; its
        result is used (raise to refuse). Default: the empty string, as Mustache.
    :param encode: applied to each substituted value (percent-encoding in paths).
    """
    pattern = ANY_PLACEHOLDER if single_brace else MUSTACHE

    def fill(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        value = lookup(context, name)
        if value is None:
            return on_missing(name) if on_missing else ""
        text = as_text(value)
        return encode(text) if encode else text

    return pattern.sub(fill, template)


def whole_placeholder(template: str) -> str | None:
    """The name when ``template`` is exactly one ``{{name}}`` (its value then keeps its JSON type)."""
    match = MUSTACHE.fullmatch(template.strip())
    return match.group(1) if match else None


def as_text(value: Any) -> str:
    """A value as it goes into a URL, a header or a form: JSON booleans, compact JSON for containers."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
