"""The MCP anchor: the official SDK's ``MCPServer`` serving an equivalent tool, under uvicorn.

``create-customer-session`` takes ``{"body": {"customer_id": ...}}`` (validated by the SDK from the type
hints), POSTs the body to the fake upstream with one shared aiohttp session, and returns the upstream JSON
as the tool result (text and structured content), like the host does. Served the way the SDK documents it:
``streamable_http_app(stateless_http=True, json_response=True)`` under uvicorn with its default HTTP
implementation and SDK defaults otherwise (the OpenTelemetry middleware stays on).

    .venv/bin/python bench/sdk_anchor.py --port 28291 --upstream http://127.0.0.1:28090/api/v1
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import uvicorn
from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel, ConfigDict


class SessionRequest(BaseModel):
    """The request body: ``customer_id`` is required, other members pass through."""

    model_config = ConfigDict(extra="allow")
    customer_id: str


class Upstream:
    url = "http://127.0.0.1:28090/api/v1/customer-sessions"
    session: aiohttp.ClientSession | None = None


def build_server(upstream: str) -> MCPServer[None]:
    Upstream.url = upstream.rstrip("/") + "/customer-sessions"

    @asynccontextmanager
    async def lifespan(server: MCPServer[None]) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=100, limit_per_host=50, ttl_dns_cache=300)
        timeout = aiohttp.ClientTimeout(total=10, sock_connect=3)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            Upstream.session = session
            yield None
        Upstream.session = None

    server: MCPServer[None] = MCPServer(
        "bench-anchor", version="0.0.0", lifespan=lifespan, log_level="WARNING"
    )

    @server.tool(name="create-customer-session", description="Create a Tratta portal login link.")
    async def create_customer_session(body: SessionRequest) -> dict[str, Any]:
        assert Upstream.session is not None, "lifespan not entered"
        headers = {"Authorization": "Bearer bench-token"}
        async with Upstream.session.post(Upstream.url, json=body.model_dump(), headers=headers) as response:
            document: dict[str, Any] = await response.json()
            if response.status >= 400:
                raise RuntimeError(f"upstream answered {response.status}")
            return document

    return server


def main() -> None:
    parser = argparse.ArgumentParser(description="SDK MCPServer under uvicorn (MCP anchor)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=28291)
    parser.add_argument("--upstream", default="http://127.0.0.1:28090/api/v1")
    args = parser.parse_args()
    server = build_server(args.upstream)
    app = server.streamable_http_app(stateless_http=True, json_response=True, host=args.host)
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level="warning", access_log=False, lifespan="on"
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
