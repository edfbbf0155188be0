"""A worker imports the MCP SDK's server side only (host/adapters/mcp/_sdk.py); every SDK import still works.

Each check runs in a fresh interpreter: what a process has imported depends on everything before.
"""

from __future__ import annotations

import subprocess
import sys

# What `host serve` imports before it serves (the CLI, the server, the builder).
SERVE_IMPORTS = "import host.cli, host.server, host.app"
# Loaded only by `import mcp` / `import mcp.server` (the SDK's client, the high-level MCPServer), and
# what only OAuth (PyJWT) and input requests (the requestState boundary's cryptography) need.
NOT_NEEDED = ("mcp.client", "mcp.client.client", "httpx2", "mcp.server.mcpserver", "jwt", "cryptography")


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_serving_does_not_import_the_sdk_client() -> None:
    loaded = _run(f"import sys; {SERVE_IMPORTS}; print(sorted(set({NOT_NEEDED!r}) & set(sys.modules)))")
    assert loaded == "[]"


def test_the_sdk_packages_complete_on_first_use() -> None:
    """A test or a plugin that imports the SDK's client in a host process gets the whole package."""
    code = (
        f"{SERVE_IMPORTS}\n"
        "from mcp import Client, MCPError\n"
        "import mcp, mcp.server\n"
        "from mcp.server import MCPServer, Server\n"
        "from mcp.server.lowlevel.server import Server as Lowlevel\n"
        "assert Server is Lowlevel and mcp.Client is Client and mcp.types.Tool is not None\n"
        "assert 'Client' in mcp.__all__\n"
        "print(Client.__module__, MCPServer.__module__)\n"
    )
    assert _run(code) == "mcp.client.client mcp.server.mcpserver.server"


def test_an_sdk_imported_first_is_left_as_it_is() -> None:
    code = (
        f"import mcp, sys\nfull = sys.modules['mcp']\n{SERVE_IMPORTS}\n"
        "print(sys.modules['mcp'] is full, 'mcp.client' in sys.modules)"
    )
    assert _run(code) == "True True"
