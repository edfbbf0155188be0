"""pytest fixtures for plugin authors, shipped with the host.

The host distribution registers this module under the ``pytest11`` entry point
(as ``host.testing``), so in an environment where the host is installed every
pytest run can use these fixtures. Nothing happens unless a test asks for one:
there are no autouse fixtures and no side effects at import.

``fake_upstream``
    A scriptable HTTP server on 127.0.0.1 standing in for the upstream API:
    ``fake_upstream.route("GET", "/items/{id}", json={...})``, then inspect
    ``fake_upstream.requests``.
``host_server``
    ``host serve`` as a real process with only the plugins under test loaded
    (``HOST_LOAD_PLUGINS``) and every namespace they consume pointed at
    ``fake_upstream`` (``[consumes.<namespace>] base_uri``).
``rest_client``, ``mcp_client``
    An :class:`aiohttp.ClientSession` on the REST port (relative URLs work) and a
    connected official MCP SDK :class:`mcp.Client`.
``host_in_process``
    The same host built in the test's own process and event loop
    (``host.app.build``), no process to start: ``host_in_process.rest`` is an
    aiohttp ``TestClient`` (``await host_in_process.rest.get("/v1/...")``);
    ``async with host_in_process.mcp_client() as client:`` talks to the MCP
    port; ``in_memory_mcp_client()`` skips HTTP altogether.
``host_plugin_info``
    What ``host plugins --json`` says about the plugins under test, keyed by name.

Name the plugin under test (its ``host.plugins`` entry-point name) with the ini
option ``host_plugins`` (``[tool.pytest.ini_options] host_plugins = "my-plugin"``),
the marker ``@pytest.mark.host_plugins("my-plugin")``, or by overriding the
``host_plugins`` fixture. Override ``host_environment`` for the environment
variables the plugin needs (API keys), ``host_consumes`` for the
``[consumes.<namespace>]`` tables, and ``host_toml_extra`` for anything else in
host.toml.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from host.testing.inprocess import InProcessHost, fixture_config, host_config, serve_in_process
from host.testing.process import (
    START_TIMEOUT,
    HostServer,
    consumed_namespaces,
    free_port,
    host_process_environment,
    load_plugins_catalog,
    render_host_toml,
    start_host_process,
    start_host_server,
    stop_hosts,
    write_host_toml,
)
from host.testing.upstream import FakeResponse, FakeUpstream, Handler, RecordedRequest

if TYPE_CHECKING:
    import aiohttp
    from mcp import Client

    from host.catalog import Catalog

try:  # rest_client and mcp_client are async: they need pytest-asyncio (the plugin template's test extra)
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # pragma: no cover - without pytest-asyncio only the async fixtures are unusable
    _async_fixture = pytest.fixture  # type: ignore[assignment]

__all__ = [
    "START_TIMEOUT",
    "FakeResponse",
    "FakeUpstream",
    "Handler",
    "HostServer",
    "InProcessHost",
    "RecordedRequest",
    "consumed_namespaces",
    "free_port",
    "host_config",
    "host_process_environment",
    "load_plugins_catalog",
    "render_host_toml",
    "serve_in_process",
    "start_host_process",
    "start_host_server",
    "stop_hosts",
    "write_host_toml",
]

INI_PLUGINS = "host_plugins"
MARKER = "host_plugins"


# --- pytest wiring ----------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        INI_PLUGINS,
        "capability-host: entry-point names of the plugins under test (host_server loads only these)",
        type="args",
        default=[],
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(*names): capability-host plugins (entry-point names) host_server loads for this test",
    )


@pytest.fixture
def host_plugins(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """Entry-point names of the plugins under test: the marker, else the ini option."""
    marker = request.node.get_closest_marker(MARKER)
    if marker is not None and marker.args:
        return tuple(str(name) for name in marker.args)
    configured = request.config.getini(INI_PLUGINS)
    if configured:
        return tuple(str(name) for name in configured)
    pytest.fail(
        "capability-host: name the plugin under test (its host.plugins entry-point name): "
        f'{INI_PLUGINS} = "my-plugin" under [tool.pytest.ini_options], '
        f'@pytest.mark.{MARKER}("my-plugin"), or override the host_plugins fixture',
        pytrace=False,
    )


@pytest.fixture
def host_environment() -> dict[str, str]:
    """Extra environment variables for the host (API keys and the like). Override it."""
    return {}


@pytest.fixture
def host_toml_extra() -> str:
    """TOML text appended to host_server's host.toml (e.g. a ``[logging]`` table). Override it."""
    return ""


@pytest.fixture
def _host_catalog(host_plugins: tuple[str, ...], host_environment: dict[str, str]) -> Catalog:
    from host.errors import StartupError

    try:
        catalog = load_plugins_catalog(host_plugins, host_environment)
    except StartupError as exc:
        pytest.fail(
            f"capability-host: the plugins {', '.join(host_plugins)} do not load: {exc}", pytrace=False
        )
    missing = sorted(set(host_plugins) - {info.name for info in catalog.plugins})
    if missing:
        pytest.fail(
            f"capability-host: no plugin named {', '.join(missing)} is installed in this environment "
            f"(entry-point group host.plugins); install it, e.g. pip install -e '.[test]'",
            pytrace=False,
        )
    return catalog


@pytest.fixture
def host_plugin_info(_host_catalog: Catalog, host_plugins: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``host plugins --json`` entries of the plugins under test, by name."""
    return {info.name: info.as_json() for info in _host_catalog.plugins if info.name in host_plugins}


@pytest.fixture
def host_namespaces(_host_catalog: Catalog, host_plugins: tuple[str, ...]) -> list[str]:
    """Namespaces the plugins under test consume (capability files included)."""
    return consumed_namespaces(_host_catalog, host_plugins)


@pytest.fixture
def fake_upstream() -> Iterator[FakeUpstream]:
    """A scriptable upstream on 127.0.0.1 that records every request."""
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def host_consumes(fake_upstream: FakeUpstream, host_namespaces: list[str]) -> dict[str, dict[str, Any]]:
    """``[consumes.<namespace>]`` tables: every namespace at ``fake_upstream``, no retries. Override it."""
    return {
        namespace: {"base_uri": fake_upstream.url, "timeout": 5, "retries": 0}
        for namespace in host_namespaces
    }


@pytest.fixture
def host_server(
    host_plugins: tuple[str, ...],
    host_consumes: dict[str, dict[str, Any]],
    host_environment: dict[str, str],
    host_toml_extra: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[HostServer]:
    """``host serve`` with only the plugins under test, their upstreams at ``fake_upstream``."""
    directory = tmp_path_factory.mktemp("host_server")
    try:
        server = start_host_server(
            directory, host_plugins, host_consumes, environment=host_environment, toml_extra=host_toml_extra
        )
    except RuntimeError as exc:
        pytest.fail(f"capability-host: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@_async_fixture
async def rest_client(host_server: HostServer) -> AsyncIterator[aiohttp.ClientSession]:
    """An aiohttp session on the host's REST port: ``await rest_client.get("/v1/...")``."""
    import aiohttp

    async with aiohttp.ClientSession(base_url=host_server.rest_url) as session:
        yield session


@_async_fixture
async def mcp_client(host_server: HostServer) -> AsyncIterator[Client]:
    """The official MCP SDK client, connected to the host's MCP endpoint."""
    from mcp import Client

    # The SDK's client holds an anyio task group, which must be left by the task that entered it;
    # pytest-asyncio may tear a fixture down in another task, so one task holds the client throughout.
    connected: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
    finished = asyncio.Event()

    async def hold() -> None:
        try:
            async with Client(host_server.mcp_url) as client:
                connected.set_result(client)
                await finished.wait()
        except BaseException as exc:
            if not connected.done():
                connected.set_exception(exc)
                return
            raise

    holder = asyncio.create_task(hold(), name="mcp_client")
    try:
        yield await connected
    finally:
        finished.set()
        await holder


@_async_fixture
async def host_in_process(
    host_plugins: tuple[str, ...],
    host_consumes: dict[str, dict[str, Any]],
    host_environment: dict[str, str],
    host_toml_extra: str,
) -> AsyncIterator[InProcessHost]:
    """What ``host_server`` serves, built and served in this process (aiohttp's TestServer): fast."""
    from host.errors import StartupError

    environment = host_process_environment(host_plugins, host_environment)
    config = fixture_config(host_consumes, host_toml_extra)
    async with contextlib.AsyncExitStack() as stack:
        try:
            served = await stack.enter_async_context(
                serve_in_process(config, environment, plugins=host_plugins)
            )
        except StartupError as exc:
            pytest.fail(
                f"capability-host: the plugins {', '.join(host_plugins)} do not start: {exc}", pytrace=False
            )
        yield served
