"""An MCP peer: FastMCP 4.x serving the fake upstream's one operation through its OpenAPI integration.

Runs in its own virtualenv (``bash bench/peers.sh fastmcp``), never the host's: FastMCP pins its own
dependencies. ``FastMCP.from_openapi`` is given the small OpenAPI document below, which describes exactly what
the fake upstream serves, and an HTTP client with the bearer token; every ``POST`` operation becomes a tool.
Served as FastMCP documents it for HTTP: ``run_http_async(transport="http")`` under its uvicorn, stateless
with JSON responses (like the SDK anchor), FastMCP's defaults otherwise.

    bench/.peers/fastmcp/bin/python bench/fastmcp_peer.py --port 28391 --upstream http://127.0.0.1:28090/api/v1

FastMCP names the tool from the operationId with underscores (``create_customer_session``: its slug keeps
only letters, digits and underscores) and maps the JSON body's properties to top-level arguments, so the
call is ``create_customer_session`` with ``{"customer_id": "c-1"}`` (the host's and the SDK's tool is
``create-customer-session`` with ``{"body": {...}}``).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

TOOL = "create-customer-session"


def openapi_document(upstream: str) -> dict[str, Any]:
    """The fake upstream's one operation (bench/fake_upstream.py), as OpenAPI 3.1."""
    session = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "portal_url": {"type": "string"},
            "return_url": {"type": ["string", "null"]},
            "expiration": {"type": "string"},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "fake Tratta customer sessions", "version": "1.0.0"},
        "servers": [{"url": upstream.rstrip("/")}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": {
            "/customer-sessions": {
                "post": {
                    "operationId": TOOL,
                    "summary": "Create a Tratta portal login link.",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["customer_id"],
                                    "properties": {"customer_id": {"type": "string"}},
                                }
                            }
                        },
                    },
                    "responses": {
                        "201": {
                            "description": "The session.",
                            "content": {
                                "application/json": {
                                    "schema": {"type": "object", "properties": {"data": session}}
                                }
                            },
                        }
                    },
                }
            }
        },
    }


async def serve(host: str, port: int, upstream: str) -> None:
    import httpx2
    from fastmcp import FastMCP

    headers = {"Authorization": "Bearer bench-token"}
    async with httpx2.AsyncClient(base_url=upstream.rstrip("/"), headers=headers, timeout=10) as client:
        server = FastMCP.from_openapi(openapi_document(upstream), client=client, name="bench-fastmcp")
        await server.run_http_async(
            show_banner=False,
            transport="http",
            host=host,
            port=port,
            path="/mcp",
            log_level="WARNING",
            json_response=True,
            stateless_http=True,
            uvicorn_config={"access_log": False},
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="FastMCP from_openapi over the fake upstream (MCP peer)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=28391)
    parser.add_argument("--upstream", default="http://127.0.0.1:28090/api/v1")
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.upstream))


if __name__ == "__main__":
    main()
