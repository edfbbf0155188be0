"""OpenTelemetry traces: off by default, and then nothing of the OpenTelemetry SDK is imported.

This module is what the rest of the host may touch at no cost: the settings a capability file declares
for its own items (:class:`FileTraces`), and the one call the MCP adapter makes once it has parsed a
message (:func:`mcp_message`). The SDK side (:mod:`host.tracing.otel`) is imported by the builder only
when ``[observability] enabled = true``: it adds a server middleware to each port, a client trace
config to each upstream session, and the exemplar hook of the request-duration histogram.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

# Request key: what the tracing middleware of the MCP port wants to hear once the message is parsed.
MCP_MESSAGE = "host.tracing.mcp_message"
# (JSON-RPC id, method, params) -> None
McpMessageHook = Callable[[Any, str, Mapping[str, Any] | None], None]

# A file's observability.traces.propagation ("Context propagation format for outgoing HTTP calls") as
# OTEL_PROPAGATORS names it: the reference maps b3 to B3's multi-header form.
FILE_PROPAGATION = {"w3c": "tracecontext", "b3": "b3multi"}


@dataclass(frozen=True)
class FileTraces:
    """A capability file's own ``observability`` block (its control adapter's), for that file's items."""

    enabled: bool = True  # false: the file's REST resources and MCP tools are never traced
    sampling: float | None = None  # ratio of the traces its items start; None: the host's [observability]
    propagation: str | None = None  # "w3c" or "b3": what its upstream calls carry; None: the host's


def mcp_message(request: web.Request, request_id: Any, method: str, params: Mapping[str, Any] | None) -> None:
    """Name the MCP message of this request for its server span (nothing when tracing is off)."""
    hook: McpMessageHook | None = request.get(MCP_MESSAGE)
    if hook is not None:
        hook(request_id, method, params)
