"""capability-host: serve upstream HTTP APIs as REST resources and MCP tools.

The public API for plugin authors is what this module exports; everything
else is internal and may change.
"""

from host.hookspecs import hookimpl
from host.model import (
    ANY_OBJECT,
    BearerAuth,
    ConsumedApi,
    ConsumedOperation,
    EnvVar,
    McpTool,
    MockRequest,
    RestResource,
    ToolHints,
    UpstreamResponse,
)

__version__ = "0.1.0"

__all__ = [
    "ANY_OBJECT",
    "BearerAuth",
    "ConsumedApi",
    "ConsumedOperation",
    "EnvVar",
    "McpTool",
    "MockRequest",
    "RestResource",
    "ToolHints",
    "UpstreamResponse",
    "__version__",
    "hookimpl",
]
