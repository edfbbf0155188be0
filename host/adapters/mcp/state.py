"""What one MCP exchange carries between the transport and the service: one typed object.

The transport creates it when the request passes the inbound checks; the SDK handlers
reach it through ``ctx.request`` (the aiohttp request the transport hands the kernel).
It lives under a single key of the aiohttp request (``web.RequestKey`` arrives with
aiohttp 3.14, which this project cannot take yet), read only through :func:`exchange_of`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from host.adapters.mcp.stream import EventStream

_KEY = "host.mcp.exchange"


@dataclass
class Exchange:
    """The per-request state of one MCP POST."""

    principal: str | None = None  # the authenticated caller; None on an open host
    request_id: Any = None  # the JSON-RPC id being answered
    stream: EventStream | None = None  # the SSE answer, when the client accepts one
    mocked: bool = False  # a mock answered the call (the response says so in a header)


def exchange_of(request: web.Request) -> Exchange:
    """The request's exchange state, created empty on first use."""
    state = request.get(_KEY)
    if not isinstance(state, Exchange):
        state = Exchange()
        request[_KEY] = state
    return state


def exchange_of_context(request: object) -> Exchange | None:
    """The exchange state behind an SDK context's ``request`` (None outside the HTTP transport)."""
    return exchange_of(request) if isinstance(request, web.Request) else None
