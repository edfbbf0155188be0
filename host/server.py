"""``host serve``: one process, one event loop, two aiohttp sites.

Start-up runs in a fixed order so that nothing binds a port before every
problem is known: config → plugins → bind each consumed API → build both
apps (:func:`host.app.build`) → start the upstream client → listen. SIGTERM or
SIGINT stops accepting, lets requests in flight finish, then exits 0, all within
``[server] drain_delay + shutdown_grace`` (see :mod:`host.shutdown`).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Mapping
from pathlib import Path

from aiohttp import web

from host.adapters.mcp import MCP_PATH, McpService
from host.app import announce, authenticators, build, build_core, check_exposure
from host.config import HostConfig
from host.connections import guarded_sites
from host.reload import announce_ready, watch
from host.shutdown import FORCED_STOP, finish_in_flight
from host.stdio_drain import answer_before_eof
from host.supervisor import worker_id

__all__ = ["authenticators", "check_exposure", "serve", "serve_stdio"]  # the first two moved to host.app

log = logging.getLogger("host")


async def serve(config: HostConfig, *, strict: bool, environ: Mapping[str, str]) -> int:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until watch() answers it: never die of it
    host = build(config, environ, strict=strict)
    announce(host)
    server, limits = config.server, config.limits
    runners = [
        web.AppRunner(
            app,
            # finish_in_flight keeps the shutdown budget; this is only aiohttp's last wait before cancelling.
            shutdown_timeout=FORCED_STOP,
            access_log=None,  # host.access logs one line per request, with its request id
            # These reach aiohttp's RequestHandler; an unknown key would make aiohttp drop them all.
            max_line_size=limits.max_header_bytes,
            max_field_size=limits.max_header_bytes,
            max_headers=limits.max_headers,
            keepalive_timeout=limits.idle_timeout,  # idle kept-alive connections are closed
        )
        for app in (host.rest, host.mcp)
    ]
    try:
        for runner in runners:
            await runner.setup()  # starts the engine (the apps' cleanup_ctx)
        # Workers share the ports: the kernel spreads connections across them.
        shared = worker_id() is not None
        pools = sum(bound.settings.pool_size for bound in host.engine.apis.values())
        rest_site, mcp_site = guarded_sites(
            config, {"rest": runners[0], "mcp": runners[1]}, reuse_port=shared, upstream_connections=pools
        )
        await rest_site.start()
        await mcp_site.start()
        log.info("REST listening on %s", _url(runners[0]))
        log.info("MCP listening on %s%s", _url(runners[1]), MCP_PATH)

        gc.freeze()  # start-up objects live until exit: keep them out of every collection (and exit fast)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        watch(loop, stop.set)  # SIGHUP, and the supervisor's death
        announce_ready()
        await stop.wait()
        deadline = loop.time() + server.drain_delay + server.shutdown_grace  # the whole budget
        host.draining = True  # /readyz answers 503 from now on
        if server.drain_delay:
            log.info("draining: /readyz is unready; still serving for %g s", server.drain_delay)
            await asyncio.sleep(server.drain_delay)
        await finish_in_flight((rest_site, mcp_site), deadline)
    finally:
        # cleanup() cancels what finish_in_flight left running, then closes the apps (and the engine).
        await asyncio.gather(*(runner.cleanup() for runner in runners))
    log.info("stopped")
    return 0


def _url(runner: web.AppRunner) -> str:
    """The first bound address (the real port when 0 was asked for)."""
    host, port = runner.addresses[0][:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve_stdio(
    config: HostConfig, file: Path | None, *, strict: bool, environ: Mapping[str, str]
) -> int:
    """MCP over stdin/stdout (``host serve --stdio FILE``, or ``[server] stdio = true``); no ports are bound.

    With a file, only that capability is served; logs go to stderr, as stdout carries the protocol.
    """
    from mcp.server.stdio import stdio_server  # here: importing it first would load the SDK's client too

    core = build_core(config, environ, strict=strict, only_file=file)
    announce(core)
    engine = core.engine
    service = McpService(engine, core.catalog)
    await engine.start()
    try:
        async with (
            stdio_server() as (stdin, stdout),
            answer_before_eof(stdin, stdout, grace=config.limits.request_timeout) as (
                read_stream,
                write_stream,
            ),
        ):
            await service.server.run(
                read_stream, write_stream, service.server.create_initialization_options()
            )
    finally:
        await engine.close()
    return 0
