"""The MCP adapter: registered tools, resources and prompts over Streamable HTTP, stateless.

- :mod:`.transport`: the aiohttp handler (inbound checks, protocol eras, headers) and the app;
- :mod:`.fastpath`: plain ``tools/call`` and ``tools/list`` answered beside the kernel, identically;
- :mod:`.stream`: one exchange as the SDK kernel sees it, and its answer as Server-Sent Events;
- :mod:`.service`: the SDK server's handlers for tools, resources, prompts and completion;
- :mod:`.interaction`: progress and log reports, client capabilities, input requests;
- :mod:`.sealing`: the requestState of input requests (the SDK's boundary, built when needed);
- :mod:`.content`: outcomes and prompt content as MCP wire types;
- :mod:`.state`: the typed per-request state shared by the transport and the service.

Each POST is answered with one JSON response, unless the call sends the client
notifications (progress, log messages: see :mod:`host.reporting`) and the client
accepts ``text/event-stream``: then the response switches to Server-Sent Events
at the first notification, and the result is the stream's last event. Nothing
is kept between requests: the multi-round ``requestState`` of 2026-07-28 input
requests travels encrypted with the client.
"""

# First: the SDK's packages register before any of its modules imports them (see _sdk).
from host.adapters.mcp import _sdk  # noqa: F401
from host.adapters.mcp.items import CALLER_UNAUTHORIZED, PromptEntry, ResourceEntry, ToolEntry, caller_refusal
from host.adapters.mcp.sealing import SERVER_NAME, STATE_KEYS_ENV, request_state_security
from host.adapters.mcp.service import DEFAULT_INSTRUCTIONS, McpService
from host.adapters.mcp.state import Exchange, exchange_of
from host.adapters.mcp.stream import MOCK_HEADER, SSE_HEADERS, SSE_PING_INTERVAL
from host.adapters.mcp.transport import (
    FAST_PATH,
    LOOPBACK_HOSTS,
    LOOPBACK_ORIGINS,
    MCP_PATH,
    MCP_PORT,
    PRM_PATH,
    SERVICE,
    McpSettings,
    TransportGuard,
    build_mcp_app,
)

__all__ = [
    "CALLER_UNAUTHORIZED",
    "DEFAULT_INSTRUCTIONS",
    "FAST_PATH",
    "LOOPBACK_HOSTS",
    "LOOPBACK_ORIGINS",
    "MCP_PATH",
    "MCP_PORT",
    "MOCK_HEADER",
    "PRM_PATH",
    "SERVER_NAME",
    "SERVICE",
    "SSE_HEADERS",
    "SSE_PING_INTERVAL",
    "STATE_KEYS_ENV",
    "Exchange",
    "McpService",
    "McpSettings",
    "PromptEntry",
    "ResourceEntry",
    "ToolEntry",
    "TransportGuard",
    "build_mcp_app",
    "caller_refusal",
    "exchange_of",
    "request_state_security",
]
