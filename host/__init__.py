"""capability-host: serve upstream HTTP APIs as REST resources and MCP tools.

The public API for plugin authors is what this module exports; everything
else is internal and may change.
"""

from host.errors import InvalidArguments
from host.hookspecs import hookimpl
from host.model import (
    ANY_OBJECT,
    ApiKeyAuth,
    AudioBlock,
    BasicAuth,
    BearerAuth,
    CallerAuth,
    ConsumedApi,
    ConsumedOperation,
    ContentBlock,
    DigestAuth,
    EnvVar,
    ImageBlock,
    InputHook,
    InputRequest,
    InputRequired,
    InputRound,
    McpPrompt,
    McpResource,
    McpTool,
    MockHandler,
    MockRequest,
    OutputMapping,
    PromptArgument,
    ResourceBlock,
    RestResource,
    TextBlock,
    ToolContent,
    ToolHints,
    UpstreamResponse,
)
from host.reporting import CallReport

__version__ = "0.1.0"

__all__ = [
    "ANY_OBJECT",
    "ApiKeyAuth",
    "AudioBlock",
    "BasicAuth",
    "BearerAuth",
    "CallReport",
    "CallerAuth",
    "ConsumedApi",
    "ConsumedOperation",
    "ContentBlock",
    "DigestAuth",
    "EnvVar",
    "ImageBlock",
    "InputHook",
    "InputRequest",
    "InputRequired",
    "InputRound",
    "InvalidArguments",
    "McpPrompt",
    "McpResource",
    "McpTool",
    "MockHandler",
    "MockRequest",
    "OutputMapping",
    "PromptArgument",
    "ResourceBlock",
    "RestResource",
    "TextBlock",
    "ToolContent",
    "ToolHints",
    "UpstreamResponse",
    "__version__",
    "hookimpl",
]
