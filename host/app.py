"""The one builder: configuration → catalog, engine and the two aiohttp apps.

``host serve``, ``--workers``, ``--stdio``, ``host check --config``, the test kit
and the tests all build the host here, so that what a test serves in process is
what production serves. Building binds nothing and starts nothing: the engine
starts and closes with the apps (``cleanup_ctx``), so an aiohttp ``TestServer``
over :attr:`Host.rest` or :attr:`Host.mcp` works with no extra call.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from host.adapters.mcp import MCP_PORT, McpSettings, build_mcp_app
from host.adapters.rest import REST_PORT, RestSettings, build_rest_app
from host.config import HostConfig
from host.engine import Engine
from host.errors import StartupError
from host.gate import Gate, authenticators
from host.inbound import Adapter, Authenticator
from host.observability import PLUGIN_FAILURES, metrics_handler
from host.plugins import Catalog, load_catalog
from host.resilience import Circuit
from host.state import SharedStore, open_store, share_state

__all__ = ["Core", "Host", "announce", "authenticators", "build", "build_core", "check_exposure"]

log = logging.getLogger("host")

Plugins = Iterable[tuple[str, object]]


@dataclass
class Core:
    """What every way of serving needs: the capabilities and the engine that calls their upstreams."""

    config: HostConfig
    catalog: Catalog
    engine: Engine
    store: SharedStore | None = None  # [state] backend = "redis"


def _circuit_state(circuit: Circuit) -> str:
    """/readyz's word for one upstream: "probe-due" is open but ready, as the next call probes it."""
    if not circuit.is_open:
        return "ok"
    return "open-circuit" if circuit.refusing else "probe-due"


@dataclass
class Host(Core):
    """A built host: its two apps share one engine, which runs while either app runs."""

    rest: web.Application = field(init=False)
    mcp: web.Application = field(init=False)
    draining: bool = False  # set on SIGTERM: /readyz answers 503 from then on

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        upstreams = {ns: _circuit_state(bound.breaker) for ns, bound in self.engine.apis.items()}
        details = {
            "draining": self.draining,
            "plugin_failures": [info.name for info in self.catalog.failures],
            "upstreams": upstreams,
            "state": self.store.describe() if self.store is not None else {"backend": "memory"},
        }
        return (not self.draining and self.engine.healthy), details


def build_core(
    config: HostConfig,
    environ: Mapping[str, str],
    *,
    strict: bool = False,
    only_file: Path | None = None,
    extra_plugins: Plugins = (),
    discover: bool = True,
) -> Core:
    """Load the plugins and capability files, and bind each consumed API. Raises :class:`StartupError`.

    ``only_file`` serves that one capability file and nothing else (``host serve --stdio FILE``).
    """
    if only_file is not None:
        catalog = load_catalog(
            strict=strict, environ=environ, discover=False, capability_files=[only_file], stdio=True
        )
    else:
        catalog = load_catalog(
            only=config.plugins.load,
            strict=strict or config.plugins.strict,
            extra_plugins=extra_plugins,
            discover=discover,
            environ=environ,
            capability_files=[entry.path for entry in config.capabilities],
            resource_dirs={entry.path: entry.resource_dirs for entry in config.capabilities},
        )
    engine = Engine.from_catalog(catalog, config, environ)
    store = open_store(config, environ)
    if store is not None:
        share_state(engine, store)
    return Core(config, catalog, engine, store)


def build(
    config: HostConfig,
    environ: Mapping[str, str],
    *,
    strict: bool = False,
    extra_plugins: Plugins = (),
    discover: bool = True,
    mcp_fast_path: bool = True,
) -> Host:
    """Everything ``serve`` does before listening. Raises :class:`StartupError`.

    ``mcp_fast_path=False`` sends every MCP request through the SDK kernel (the fast path's reference).
    """
    core = build_core(config, environ, strict=strict, extra_plugins=extra_plugins, discover=discover)
    host = Host(config, core.catalog, core.engine, core.store)
    gate = Gate(config, environ)  # the one inbound policy of both ports
    check_exposure(config, gate.authenticators)
    server, limits = config.server, config.limits
    host.rest = build_rest_app(
        host.engine,
        host.catalog,
        environ=environ,
        readiness=host.readiness,
        settings=RestSettings(server.max_body_bytes, limits.max_json_depth),
    )
    host.rest.middlewares.insert(0, gate.middleware(REST_PORT))
    oauth = gate.authenticators["mcp"].oauth
    host.mcp = build_mcp_app(
        host.engine,
        host.catalog,
        settings=McpSettings(server.max_body_bytes, limits.max_json_depth, mcp_fast_path),
        environ=environ,
        oauth_metadata=oauth.metadata() if oauth is not None else None,
    )
    host.mcp.middlewares.insert(0, gate.middleware(MCP_PORT))
    host.rest.router.add_get("/metrics", metrics_handler)
    if core.store is not None:
        store = core.store

        async def close_store(app: web.Application) -> None:
            await store.close()

        host.rest.on_cleanup.append(close_store)
    for info in host.catalog.failures:
        PLUGIN_FAILURES.labels(info.name).set(1)
    if config.observability.enabled:
        from host.tracing.otel import install  # the OpenTelemetry SDK is imported only when tracing is on

        tracing = install(config, environ, host.catalog, {"rest": host.rest, "mcp": host.mcp})
        host.engine.client_traces = tracing.client_traces if tracing is not None else None
    lifecycle = _SharedLifecycle(host.engine)
    for app in (host.rest, host.mcp):
        app.cleanup_ctx.insert(0, lifecycle.context)  # first in, last out: the engine outlives the app
    return host


class _SharedLifecycle:
    """Starts the engine with the first app that starts, closes it with the last one that stops."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.users = 0

    async def context(self, app: web.Application) -> AsyncIterator[None]:
        if self.users == 0:
            await self.engine.start()
        self.users += 1
        try:
            yield
        finally:
            self.users -= 1
            if self.users == 0:
                await self.engine.close()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_exposure(config: HostConfig, inbound: Mapping[Adapter, Authenticator]) -> None:
    """Refuse to serve an open door: a non-loopback address needs inbound auth or an explicit opt-out."""
    server = config.server
    if _is_loopback(server.host):
        return
    open_adapters = [name for name, auth in inbound.items() if not auth.enabled]
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


def announce(core: Core) -> None:
    """What start-up loaded: plugins, their failures, each upstream (or MOCK)."""
    catalog, engine = core.catalog, core.engine
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
