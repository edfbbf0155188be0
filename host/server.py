"""``host serve``: one process, one event loop, two aiohttp sites.

Start-up runs in a fixed order so that nothing binds a port before every
problem is known: config → plugins → bind each consumed API → build both
apps → start the upstream client → listen. SIGTERM or SIGINT stops accepting,
lets requests in flight finish (``[server] shutdown_grace``), then exits 0.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from aiohttp import web
from mcp.server.stdio import stdio_server

from host.adapters.mcp import MCP_PATH, McpService, McpSettings, TransportGuard, build_mcp_app
from host.adapters.rest import RestSettings, build_rest_app
from host.config import HostConfig
from host.engine import Engine
from host.errors import StartupError
from host.inbound import Authenticator, ConcurrencyLimiter
from host.observability import PLUGIN_FAILURES, http_middleware, metrics_handler
from host.plugins import Catalog, load_catalog
from host.supervisor import worker_id

log = logging.getLogger("host")


class Prepared(NamedTuple):
    catalog: Catalog
    engine: Engine
    inbound: dict[str, Authenticator]  # per adapter; empty when MCP is served over stdio


def prepare(config: HostConfig, *, strict: bool, environ: Mapping[str, str]) -> Prepared:
    """Everything ``serve`` does before listening. Raises :class:`StartupError`."""
    catalog = load_catalog(
        only=config.plugins.load,
        strict=strict or config.plugins.strict,
        environ=environ,
        capability_files=[entry.path for entry in config.capabilities],
    )
    engine = Engine.from_catalog(catalog, config, environ)
    inbound = {} if config.server.stdio else authenticators(config, environ)
    if inbound:
        check_exposure(config, inbound)
    return Prepared(catalog, engine, inbound)


def authenticators(config: HostConfig, environ: Mapping[str, str]) -> dict[str, Authenticator]:
    """One per adapter; reads the keys from the environment (a missing one is a start-up error)."""
    return {adapter: Authenticator(config.auth, environ, adapter) for adapter in ("rest", "mcp")}


def _announce(catalog: Catalog, engine: Engine) -> None:
    for info in catalog.plugins:
        if info.error:
            log.error("plugin %s: NOT LOADED: %s", info.name, info.error)
        else:
            log.info(
                "plugin %s %s: %d consumed API(s), %d REST resource(s), %d MCP tool(s)",
                info.name,
                info.version or "(unversioned)",
                len(info.consumes),
                len(info.rest),
                len(info.mcp_tools),
            )
    for namespace, bound in engine.apis.items():
        if bound.mock:
            log.warning("%s: MOCK mode: answers come from bundled examples; no upstream is called", namespace)
        else:
            log.info("%s: upstream %s (timeout %g s)", namespace, bound.base_url, bound.timeout.total)
    if not catalog.rest and not catalog.tools:
        log.warning("no REST resources and no MCP tools: install a plugin (see `host plugins`)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_exposure(config: HostConfig, authenticators: dict[str, Authenticator]) -> None:
    """Refuse to serve an open door: a non-loopback address needs inbound auth or an explicit opt-out."""
    server = config.server
    if _is_loopback(server.host):
        return
    open_adapters = [name for name, auth in authenticators.items() if not auth.enabled]
    if not open_adapters:
        return
    if not server.allow_unauthenticated:
        raise StartupError(
            f"{config.path}: [server] host = {server.host!r} is reachable from other machines, but the "
            f"{' and '.join(open_adapters)} port(s) have no inbound authentication; add [[auth.keys]] "
            f"(or [auth.oauth] for MCP), bind 127.0.0.1, or set [server] allow_unauthenticated = true"
        )
    log.warning(
        "UNAUTHENTICATED: %s port(s) on %s accept calls from anyone who can reach them "
        "([server] allow_unauthenticated = true)",
        " and ".join(open_adapters),
        server.host,
    )


async def serve(config: HostConfig, *, strict: bool, environ: Mapping[str, str]) -> int:
    catalog, engine, inbound = prepare(config, strict=strict, environ=environ)
    _announce(catalog, engine)
    server, limits = config.server, config.limits

    draining = False

    def readiness() -> tuple[bool, dict[str, Any]]:
        upstreams = {
            ns: ("open-circuit" if bound.breaker.is_open else "ok") for ns, bound in engine.apis.items()
        }
        details = {
            "draining": draining,
            "plugin_failures": [info.name for info in catalog.failures],
            "upstreams": upstreams,
        }
        return (not draining and engine.healthy), details

    rest_app = build_rest_app(
        engine,
        catalog,
        environ=environ,
        authenticator=inbound["rest"],
        limiter=ConcurrencyLimiter(limits),
        readiness=readiness,
        settings=RestSettings(server.max_body_bytes, limits.max_json_depth, limits.request_timeout),
    )
    guard = TransportGuard.for_bind(server.host, server.allowed_hosts, server.allowed_origins)
    mcp_app = build_mcp_app(
        engine,
        catalog,
        guard=guard,
        authenticator=inbound["mcp"],
        limiter=ConcurrencyLimiter(limits),
        settings=McpSettings(server.max_body_bytes, limits.max_json_depth, limits.request_timeout),
        environ=environ,
    )

    # Request ids and metrics wrap everything else on both ports.
    rest_app.middlewares.insert(0, http_middleware("rest"))
    mcp_app.middlewares.insert(0, http_middleware("mcp"))
    rest_app.router.add_get("/metrics", metrics_handler)
    for info in catalog.failures:
        PLUGIN_FAILURES.labels(info.name).set(1)

    await engine.start()
    runners = [
        web.AppRunner(
            app,
            shutdown_timeout=server.shutdown_grace,
            access_log=None,  # host.access logs one line per request, with its request id
            # These reach aiohttp's RequestHandler; an unknown key would make aiohttp drop them all.
            max_line_size=limits.max_header_bytes,
            max_field_size=limits.max_header_bytes,
            max_headers=limits.max_headers,
        )
        for app in (rest_app, mcp_app)
    ]
    try:
        for runner in runners:
            await runner.setup()
        # Workers share the ports: the kernel spreads connections across them.
        shared = worker_id() is not None
        rest_site = web.TCPSite(runners[0], server.host, server.rest_port, reuse_port=shared)
        mcp_site = web.TCPSite(runners[1], server.host, server.mcp_port, reuse_port=shared)
        await rest_site.start()
        await mcp_site.start()
        log.info("REST listening on %s", _url(rest_site))
        log.info("MCP listening on %s%s", _url(mcp_site), MCP_PATH)

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        draining = True  # /readyz answers 503 from now on
        if server.drain_delay:
            log.info("draining: /readyz is unready; still serving for %g s", server.drain_delay)
            await asyncio.sleep(server.drain_delay)
        log.info(
            "shutting down: no new connections; waiting up to %g s for requests in flight",
            server.shutdown_grace,
        )
    finally:
        # cleanup() stops the sites, then waits for running handlers before closing.
        await asyncio.gather(*(runner.cleanup() for runner in runners))
        await engine.close()
    log.info("stopped")
    return 0


def _url(site: web.TCPSite) -> str:
    # The bound socket tells the real port when 0 was asked for.
    sockets = getattr(site._server, "sockets", None)
    if sockets:
        host, port = sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"
    return site.name


async def serve_stdio(
    config: HostConfig, file: Path | None, *, strict: bool, environ: Mapping[str, str]
) -> int:
    """MCP over stdin/stdout (``host serve --stdio FILE``, or ``[server] stdio = true``); no ports are bound.

    With a file, only that capability is served; logs go to stderr, as stdout carries the protocol.
    """
    if file is not None:
        catalog = load_catalog(
            strict=strict, environ=environ, discover=False, capability_files=[file], stdio=True
        )
        engine = Engine.from_catalog(catalog, config, environ)
    else:
        catalog, engine, _ = prepare(config, strict=strict, environ=environ)
    _announce(catalog, engine)
    service = McpService(engine, catalog)
    await engine.start()
    try:
        async with stdio_server() as (read_stream, write_stream):
            await service.server.run(
                read_stream, write_stream, service.server.create_initialization_options()
            )
    finally:
        await engine.close()
    return 0
