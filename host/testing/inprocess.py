"""The host built in this process (``host.app.build``) and served by aiohttp's test utilities.

No process to start: a test builds the host in milliseconds, in its own event loop, and reaches both apps
through :class:`aiohttp.test_utils.TestClient` (loopback, a free port each). What is served is exactly what
``host serve`` serves (the same builder), minus the process: signals, workers and plugin discovery from
the environment stay with the ``host_server`` tests.
"""

from __future__ import annotations

import contextlib
import tomllib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from host.testing.process import render_host_toml

if TYPE_CHECKING:
    from aiohttp import web
    from aiohttp.test_utils import TestClient
    from mcp import Client

    from host.app import Host
    from host.config import HostConfig


@dataclass
class InProcessHost:
    """A built host whose REST and MCP apps are served in this process and event loop."""

    host: Host
    rest: TestClient[web.Request, web.Application]  # relative URLs: await rest.get("/healthz")
    mcp: TestClient[web.Request, web.Application]  # await mcp.post("/mcp", json=...)
    environ: Mapping[str, str]

    @property
    def rest_url(self) -> str:
        return str(self.rest.make_url("")).rstrip("/")

    @property
    def mcp_url(self) -> str:
        return str(self.mcp.make_url("/mcp"))

    def mcp_client(self, **options: Any) -> Client:
        """The official SDK client over Streamable HTTP: the whole MCP port (Host/Origin checks,
        authentication, limits). ``async with in_process.mcp_client() as client: ...``"""
        from mcp import Client

        return Client(self.mcp_url, **options)

    def in_memory_mcp_client(self, **options: Any) -> Client:
        """The SDK client connected to the host's MCP server object in memory (as FastMCP's in-memory
        client): no HTTP, so no Host/Origin check, no inbound authentication, no limits; the same tools,
        resources and prompts on the same engine. For what a tool does, not for how the port guards it."""
        from mcp import Client

        from host.adapters.mcp import McpService

        return Client(McpService(self.host.engine, self.host.catalog, environ=self.environ).server, **options)


def host_config(
    config: HostConfig | Mapping[str, Any] | str | None = None, *, plugins: Sequence[str] | None = None
) -> HostConfig:
    """A :class:`host.config.HostConfig` from a model, the mapping host.toml would parse to, or TOML
    text; ``plugins`` (entry-point names) replaces ``[plugins] load``."""
    from host.config import HostConfig

    if config is None:
        config = HostConfig()
    elif isinstance(config, str):
        config = HostConfig.model_validate(tomllib.loads(config))
    elif not isinstance(config, HostConfig):
        config = HostConfig.model_validate(dict(config))
    if plugins is not None:
        config = config.model_copy(
            update={"plugins": config.plugins.model_copy(update={"load": tuple(plugins)})}
        )
    return config


@contextlib.asynccontextmanager
async def serve_in_process(
    config: HostConfig | Mapping[str, Any] | str | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    plugins: Sequence[str] | None = None,
    extra_plugins: Iterable[tuple[str, object]] = (),
    discover: bool = True,
    strict: bool = False,
    mcp_fast_path: bool = True,
) -> AsyncIterator[InProcessHost]:
    """Build the host (``host.app.build``) and serve both apps until the block ends.

    ``environ`` is all the host sees (``{}`` by default: nothing leaks in from the developer's shell).
    ``plugins`` loads only those installed plugins; ``extra_plugins`` adds ``(name, module)`` pairs that
    are not installed, and ``discover=False`` skips the installed ones. A start-up problem raises
    :class:`host.errors.StartupError`, as ``host serve`` would exit 2. ``mcp_fast_path=False``: every MCP
    request goes through the SDK kernel.
    """
    from aiohttp.test_utils import TestClient, TestServer

    from host.app import build

    environment = dict(environ or {})
    built = build(
        host_config(config, plugins=plugins),
        environment,
        strict=strict,
        extra_plugins=extra_plugins,
        discover=discover,
        mcp_fast_path=mcp_fast_path,
    )
    async with (
        TestClient(TestServer(built.rest, host="127.0.0.1")) as rest,
        TestClient(TestServer(built.mcp, host="127.0.0.1")) as mcp,
    ):
        yield InProcessHost(built, rest, mcp, environment)


def fixture_config(consumes: Mapping[str, Mapping[str, Any]], toml_extra: str) -> str:
    """The host.toml text the ``host_server`` fixture would write, for the in-process fixture (the ports
    are not used: each app gets a free one from its TestServer)."""
    return render_host_toml(rest_port=0, mcp_port=0, consumes=consumes, extra=toml_extra)
