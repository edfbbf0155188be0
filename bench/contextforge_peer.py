"""An MCP peer: IBM's ContextForge gateway with its embedded defaults, one REST tool on the fake upstream.

Runs in its own virtualenv (``bash bench/peers.sh contextforge``), never the host's: ContextForge pins an mcp
1.x SDK. Two commands, both given the same ``--state`` folder:

    PY=bench/.peers/contextforge/bin/python
    $PY bench/contextforge_peer.py serve --port 28491 --state /tmp/cf        # the gateway (mcpgateway CLI)
    $PY bench/contextforge_peer.py register --port 28491 --state /tmp/cf \\
        --upstream http://127.0.0.1:28090/api/v1                               # prints {"token": ...}

``serve`` runs the ``mcpgateway`` console script (uvicorn, one process) with ContextForge's defaults: SQLite
in the state folder, the database as its cache, no Redis, no UI, no observability. Only what a first start
needs is set: secrets and the platform admin (ContextForge refuses its placeholder values), and three
settings a loopback benchmark cannot do without, each explained below. ``register`` signs an admin JWT
with the gateway's own helper, registers ``create-customer-session`` (integration type REST, POST to the
fake upstream with a bearer token) through the admin API (``POST /tools``), and prints the token for the
MCP leg's ``Authorization`` header. MCP calls then go to ``/mcp`` (stateless, JSON answers: its defaults).
Everything is loopback: nothing is fetched at run time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from pathlib import Path
from typing import Any

TOOL = "create-customer-session"
ADMIN = "admin@example.com"
SECRET = "bench-jwt-secret-key-0123456789abcdef"


def environment(state: Path, port: int) -> dict[str, str]:
    return {
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{state / 'mcp.db'}",
        "JWT_SECRET_KEY": SECRET,
        "AUTH_ENCRYPTION_SECRET": "bench-encryption-secret-0123456789abcdef",
        "PLATFORM_ADMIN_EMAIL": ADMIN,
        "PLATFORM_ADMIN_PASSWORD": "Bench-Admin-2026!x",
        "BASIC_AUTH_PASSWORD": "Bench-Basic-2026!x",
        # The fake upstream listens on 127.0.0.1, which ContextForge's SSRF guard refuses by default.
        "SSRF_ALLOW_LOCALHOST": "true",
        # Embedded, no Redis: its limiter would otherwise try redis://localhost:6379 before falling back.
        "RATE_LIMITING_REDIS_ENABLED": "false",
        # The limiter stays on (like the host's), with a ceiling a benchmark does not reach: the default
        # of 100 MCP requests per minute would turn the leg into a measure of 429 answers.
        "RATE_LIMIT_MEDIUM_RPM": "100000000",
        "RATE_LIMIT_MEDIUM_BURST": "100000000",
    }


def serve(port: int, state: Path) -> None:
    state.mkdir(parents=True, exist_ok=True)
    os.environ.update(environment(state, port))
    os.chdir(state)  # anything it writes next to its working directory stays in the state folder
    from mcpgateway.cli import main as gateway

    sys.argv = ["mcpgateway", "--host", "127.0.0.1", "--port", str(port)]
    gateway()


def register(port: int, state: Path, upstream: str) -> dict[str, Any]:
    os.environ.update(environment(state, port))
    from mcpgateway.utils.create_jwt_token import _create_jwt_token

    token = _create_jwt_token({"username": ADMIN}, 120, SECRET)
    tool = {
        "name": TOOL,
        "url": upstream.rstrip("/") + "/customer-sessions",
        "description": "Create a Tratta portal login link.",
        "integration_type": "REST",
        "request_type": "POST",
        "headers": {"Authorization": "Bearer bench-token"},
        "inputSchema": {
            "type": "object",
            "required": ["customer_id"],
            "properties": {"customer_id": {"type": "string"}},
        },
        "visibility": "public",
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/tools",
        data=json.dumps({"tool": tool}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
    with opener.open(request, timeout=30) as response:
        created = json.loads(response.read())
    return {"token": token, "tool": created.get("name"), "id": created.get("id")}


def main() -> None:
    parser = argparse.ArgumentParser(description="ContextForge gateway with one REST tool (MCP peer)")
    parser.add_argument("command", choices=("serve", "register"))
    parser.add_argument("--port", type=int, default=28491)
    parser.add_argument("--state", type=Path, required=True, help="folder for its SQLite database")
    parser.add_argument("--upstream", default="http://127.0.0.1:28090/api/v1")
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.port, args.state.resolve())
    else:
        print(json.dumps(register(args.port, args.state.resolve(), args.upstream)), flush=True)


if __name__ == "__main__":
    main()
