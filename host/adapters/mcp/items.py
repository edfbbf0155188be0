"""What the MCP service serves, each item with the caller credential it requires, as data.

A capability file's own ``authentication`` applies to every MCP item of that capability:
tools, resources, resource templates and prompts carry its :class:`CallerCheck` (or
None), and :func:`caller_refusal` is the one place that applies it, for every method
that addresses an item and for the lists (which leave out what the caller may not use).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote

from aiohttp import web
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, Tool

from host import templates
from host.engine import Target
from host.errors import Unauthorized
from host.gate import check_item
from host.inbound import CallerCheck
from host.model import McpPrompt, McpResource, McpTool

# JSON-RPC code of a refusal for want of an item's own credential (implementation-defined range).
CALLER_UNAUTHORIZED = -32003


@dataclass(frozen=True)
class ToolEntry:
    spec: McpTool
    wire: Tool
    target: Target
    param_headers: bool  # the input schema mirrors arguments into Mcp-Param-* headers
    caller_check: CallerCheck | None = None  # the tool's own credential (a capability file's exposes auth)


@dataclass(frozen=True)
class ResourceEntry:
    spec: McpResource
    target: Target | None  # None: fixed text
    caller_check: CallerCheck | None = None

    @property
    def templated(self) -> bool:
        return bool(templates.names(self.spec.uri, single_brace=True))


@dataclass(frozen=True)
class PromptEntry:
    spec: McpPrompt
    caller_check: CallerCheck | None = None


class Guarded(Protocol):
    @property
    def caller_check(self) -> CallerCheck | None: ...


G = TypeVar("G", bound=Guarded)


def caller_refusal(ctx: ServerRequestContext[Any], item: Guarded) -> MCPError | None:
    """Why this request may not use ``item`` (None: it may). Checked before anything runs."""
    request = ctx.request
    return refusal_for(item, request.headers if isinstance(request, web.Request) else {})


def refusal_for(item: Guarded, headers: Mapping[str, str]) -> MCPError | None:
    """:func:`caller_refusal` for a request with these headers (the fast path has no SDK context)."""
    if item.caller_check is None:
        return None
    try:
        check_item(item.caller_check, headers)  # the gate's one way of applying an item's policy
    except Unauthorized as exc:
        return MCPError(
            code=CALLER_UNAUTHORIZED, message=f"Unauthorized: {exc.detail}; nothing was sent upstream"
        )
    return None


def admit(ctx: ServerRequestContext[Any], item: G) -> G:
    """``item`` when this request may use it; else raise the refusal."""
    refusal = caller_refusal(ctx, item)
    if refusal is not None:
        raise refusal
    return item


def visible(ctx: ServerRequestContext[Any], items: Iterable[G]) -> list[G]:
    """The items this request may use: a list never offers what a call would refuse."""
    return [item for item in items if caller_refusal(ctx, item) is None]


def match_uri(pattern: str, uri: str) -> dict[str, str] | None:
    """Arguments (decoded) when ``uri`` matches the (possibly templated) resource ``pattern``."""
    if pattern == uri:
        return {}
    names = templates.names(pattern, single_brace=True)
    if not names:
        return None
    regex = re.escape(pattern)
    for name in names:
        for form in (re.escape("{{" + name + "}}"), re.escape("{" + name + "}")):
            regex = regex.replace(form, f"(?P<{_group(name)}>[^/]+)", 1)
    match = re.fullmatch(regex, uri)
    if match is None:
        return None
    return {name: unquote(match.group(_group(name))) for name in names}


def refuse_dot_segments(uri: str, arguments: Mapping[str, str]) -> None:
    """Raise :class:`MCPError` (invalid params) for a URI value that is a dot segment once decoded.

    Upstream it would be resolved into another path than the operation's.
    """
    for name, value in arguments.items():
        if value in _DOT_SEGMENTS:
            raise MCPError(
                code=INVALID_PARAMS,
                message=f"Invalid resource URI: {name!r} may not be '.' or '..'",
                data={"uri": uri, "parameter": name},
            )


_DOT_SEGMENTS = frozenset({".", ".."})


def _group(name: str) -> str:
    return "g_" + re.sub(r"\W", "_", name)
