"""The REST anchor: a minimal aiohttp reverse proxy in front of the fake upstream.

It does what the host's REST leg does at the least cost aiohttp allows: read the body, forward it with a
token to the upstream on a shared pooled session (same connector limits as the host's engine), return the
upstream status and bytes. No validation, no problem documents, no logging.

    .venv/bin/python bench/proxy.py --port 28081 --upstream http://127.0.0.1:28090/api/v1
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

SESSION = web.AppKey("session", aiohttp.ClientSession)
UPSTREAM = web.AppKey("upstream", str)


async def create_session(request: web.Request) -> web.Response:
    body = await request.read()
    headers = {"Content-Type": "application/json", "Authorization": "Bearer bench-token"}
    async with request.app[SESSION].post(
        request.app[UPSTREAM] + "/customer-sessions", data=body, headers=headers
    ) as upstream:
        payload = await upstream.read()
        return web.Response(status=upstream.status, body=payload, content_type="application/json")


def build_app(upstream: str) -> web.Application:
    app = web.Application()
    app[UPSTREAM] = upstream.rstrip("/")

    async def client(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=100, limit_per_host=50, ttl_dns_cache=300)
        timeout = aiohttp.ClientTimeout(total=10, sock_connect=3)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            app[SESSION] = session
            yield

    app.cleanup_ctx.append(client)
    app.router.add_post("/v1/customer-sessions", create_session)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="minimal aiohttp reverse proxy (REST anchor)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=28081)
    parser.add_argument("--upstream", default="http://127.0.0.1:28090/api/v1")
    args = parser.parse_args()
    web.run_app(build_app(args.upstream), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
