"""The MCP SDK's server side, imported without its client.

``import mcp.server.runner`` runs ``mcp/__init__.py`` first, which imports the SDK's client
(``Client``, httpx2, the stdio client), and ``mcp/server/__init__.py``, which imports the
high-level ``MCPServer``: about 4 MiB of RSS per worker that a server never uses. This module
registers the two packages without running their ``__init__`` (their submodules import as
usual), and runs it the first time anything asks the package itself for a name
(``from mcp import Client`` in a test, a plugin), so every import keeps working.

It must be imported before anything else imports ``mcp``; when something already has, it
leaves the packages as they are.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

# The packages whose __init__ imports what the server path does not need.
CLIENT_SIDE_PACKAGES = ("mcp", "mcp.server")


def _defer_init(name: str) -> None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def complete(attribute: str) -> Any:  # PEP 562: only names the module does not have yet
        del module.__dict__["__getattr__"]
        loader.exec_module(module)
        return getattr(module, attribute)

    module.__dict__["__getattr__"] = complete
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)


def import_server_side() -> None:
    """Register the SDK's packages with their ``__init__`` deferred (once, and only if first)."""
    for name in CLIENT_SIDE_PACKAGES:
        if name in sys.modules:
            return
        _defer_init(name)


import_server_side()
