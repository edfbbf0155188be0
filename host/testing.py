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
import json as jsonlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import aiohttp
    from aiohttp import web
    from mcp import Client

    from host.plugins import Catalog

try:  # rest_client and mcp_client are async: they need pytest-asyncio (the plugin template's test extra)
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # pragma: no cover - without pytest-asyncio only the async fixtures are unusable
    _async_fixture = pytest.fixture  # type: ignore[assignment]

__all__ = [
    "FakeResponse",
    "FakeUpstream",
    "HostServer",
    "RecordedRequest",
]

INI_PLUGINS = "host_plugins"
MARKER = "host_plugins"
START_TIMEOUT = 30.0
_MISSING: Any = object()


# --- the fake upstream ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake upstream received."""

    method: str
    path: str
    query: Mapping[str, str]  # a multidict: .getall(name) for a repeated parameter
    headers: Mapping[str, str]  # case-insensitive (a multidict)
    body: bytes
    path_params: Mapping[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body decoded as JSON; ``None`` for an empty body."""
        return jsonlib.loads(self.body) if self.body else None


@dataclass(frozen=True)
class FakeResponse:
    """What the fake upstream answers. A route ``handler`` may return one."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def of_json(
        cls, document: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> FakeResponse:
        return cls(status, jsonlib.dumps(document).encode(), "application/json", dict(headers or {}))


Handler = Callable[[RecordedRequest], "FakeResponse | Any"]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    respond: Handler


def _path_pattern(path: str) -> re.Pattern[str]:
    """``*`` matches any path; ``{name}`` matches one path segment."""
    if path == "*":
        return re.compile(r"(?s).*")
    parts = re.split(r"(\{[A-Za-z_][A-Za-z0-9_]*\})", path)
    regex = "".join(
        f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") and part.endswith("}") else re.escape(part)
        for part in parts
    )
    return re.compile(regex)


def _fixed(response: FakeResponse) -> Handler:
    return lambda _request: response


def _delayed(handler: Handler, delay: float) -> Handler:
    if not delay:
        return handler

    def respond(request: RecordedRequest) -> FakeResponse:
        answer = handler(request)
        answer = answer if isinstance(answer, FakeResponse) else FakeResponse.of_json(answer)
        return FakeResponse(answer.status, answer.body, answer.content_type, answer.headers, delay)

    return respond


class FakeUpstream:
    """A scriptable upstream API on a real loopback port.

    It runs its own event loop in a thread, so a ``host serve`` process (or any
    client, sync or async) can reach it. Requests without a scripted route get
    404 with a JSON body saying so; every request is recorded.
    """

    def __init__(self) -> None:
        self._routes: list[_Route] = []
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:<port>`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def route(
        self,
        method: str,
        path: str,
        *,
        status: int = 200,
        json: Any = _MISSING,
        text: str | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        handler: Handler | None = None,
    ) -> None:
        """Answer ``method path`` (``*`` for any method or any path; ``{name}`` for a segment).

        Give at most one of ``json``, ``text``, ``body`` and ``handler``. A handler is
        called with the :class:`RecordedRequest` and returns a :class:`FakeResponse`,
        or any other value to be sent as JSON with status 200. ``delay`` (seconds)
        holds the answer back, to exercise timeouts. The latest matching route wins,
        so a test can override an earlier one.
        """
        given = [
            name
            for name, present in (
                ("json", json is not _MISSING),
                ("text", text is not None),
                ("body", body is not None),
                ("handler", handler is not None),
            )
            if present
        ]
        if len(given) > 1:
            raise ValueError(
                f"route(): give at most one of json, text, body, handler (got {', '.join(given)})"
            )
        extra = dict(headers or {})
        if handler is not None:
            respond = _delayed(handler, delay)
        elif text is not None:
            respond = _fixed(FakeResponse(status, text.encode(), content_type or "text/plain", extra, delay))
        elif body is not None:
            respond = _fixed(
                FakeResponse(status, body, content_type or "application/octet-stream", extra, delay)
            )
        else:
            document = jsonlib.dumps({} if json is _MISSING else json).encode()
            respond = _fixed(FakeResponse(status, document, content_type or "application/json", extra, delay))
        with self._lock:
            self._routes.append(_Route(method.upper(), _path_pattern(path), respond))

    def reset(self) -> None:
        """Forget every route and recorded request."""
        with self._lock:
            self._routes.clear()
            self._requests.clear()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web
        from multidict import CIMultiDict, MultiDict

        body = await request.read()
        with self._lock:
            routes = list(reversed(self._routes))
        for candidate in routes:
            match = candidate.pattern.fullmatch(request.path)
            if match and candidate.method in ("*", request.method):
                route: _Route | None = candidate
                params = match.groupdict()
                break
        else:
            route, params = None, {}
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=MultiDict(request.query),
            headers=CIMultiDict(request.headers),
            body=body,
            path_params=params,
        )
        with self._lock:
            self._requests.append(record)
        if route is None:
            return web.json_response(
                {
                    "error": f"fake_upstream: no route for {request.method} {request.path}; script one "
                    "with fake_upstream.route(method, path, json=...)"
                },
                status=404,
            )
        try:
            answer = route.respond(record)
        except Exception as exc:  # a broken handler is the test's bug: say so instead of hanging
            return web.json_response({"error": f"fake_upstream handler raised {exc!r}"}, status=500)
        if not isinstance(answer, FakeResponse):
            answer = FakeResponse.of_json(answer)
        if answer.delay:
            await asyncio.sleep(answer.delay)
        response = web.Response(status=answer.status, body=answer.body, headers=dict(answer.headers))
        response.content_type = answer.content_type
        return response

    def start(self) -> None:
        from aiohttp import web

        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, shutdown_timeout=1, access_log=None)

        async def setup() -> None:
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = int(runner.addresses[0][1])

        def run() -> None:
            try:
                loop.run_until_complete(setup())
            except BaseException as exc:
                failure.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()

        self._loop, self._runner = loop, runner
        self._thread = threading.Thread(target=run, name="fake_upstream", daemon=True)
        self._thread.start()
        if not started.wait(10) or failure:
            raise RuntimeError(f"fake_upstream did not start: {failure[0] if failure else 'timeout'}")

    def stop(self) -> None:
        loop, runner, thread = self._loop, self._runner, self._thread
        if loop is None or runner is None or thread is None:
            return

        async def cleanup() -> None:
            await runner.cleanup()
            current = asyncio.current_task()
            pending = [task for task in asyncio.all_tasks() if task is not current]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        self._loop = self._runner = self._thread = None


# --- the host process -------------------------------------------------------------------------------


@dataclass
class HostServer:
    """A running ``host serve`` process."""

    process: subprocess.Popen[bytes]
    rest_port: int
    mcp_port: int
    config_path: Path
    log_path: Path
    plugins: tuple[str, ...]

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def mcp_url(self) -> str:
        return f"http://127.0.0.1:{self.mcp_port}/mcp"

    def log(self) -> str:
        """Everything the process wrote so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, then wait for the exit code (SIGKILL after ``timeout`` seconds)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else jsonlib.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return jsonlib.dumps(value)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to host.toml: {value!r}")


def render_host_toml(
    *,
    rest_port: int,
    mcp_port: int,
    consumes: Mapping[str, Mapping[str, Any]],
    extra: str = "",
) -> str:
    """The host.toml ``host_server`` writes: loopback ports, one table per consumed namespace."""
    lines = [
        "[server]",
        'host = "127.0.0.1"',
        f"rest_port = {rest_port}",
        f"mcp_port = {mcp_port}",
        "shutdown_grace = 5",
        "",
    ]
    for namespace, settings in consumes.items():
        lines.append(f"[consumes.{_toml_key(namespace)}]")
        lines += [f"{_toml_key(key)} = {_toml_value(value)}" for key, value in settings.items()]
        lines.append("")
    return "\n".join(lines) + (extra.strip() + "\n" if extra.strip() else "")


def host_process_environment(plugins: Sequence[str], extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without ``HOST_*`` switches, loading only ``plugins``, plus ``extra``."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("HOST_")}
    environment["HOST_LOAD_PLUGINS"] = ",".join(plugins)
    environment.update(extra)
    return environment


def start_host_server(
    directory: Path,
    plugins: Sequence[str],
    consumes: Mapping[str, Mapping[str, Any]],
    *,
    environment: Mapping[str, str] | None = None,
    toml_extra: str = "",
    timeout: float = START_TIMEOUT,
) -> HostServer:
    """Write host.toml in ``directory``, start ``host serve`` and wait until both ports listen.

    Raises ``RuntimeError`` with the process's output when it exits or does not listen in time.
    """
    rest_port, mcp_port = _free_port(), _free_port()
    config = directory / "host.toml"
    config.write_text(
        render_host_toml(rest_port=rest_port, mcp_port=mcp_port, consumes=consumes, extra=toml_extra)
    )
    log_path = directory / f"host-{rest_port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "host", "serve", "--config", str(config)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=host_process_environment(plugins, environment or {}),
            cwd=directory,
        )
    server = HostServer(process, rest_port, mcp_port, config, log_path, tuple(plugins))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"host serve exited with {process.returncode}:\n{server.log()}")
        if _listening(rest_port) and _listening(mcp_port):
            return server
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"host serve did not listen within {timeout:g} s:\n{server.log()}")


def load_plugins_catalog(plugins: Sequence[str], environment: Mapping[str, str]) -> Catalog:
    """Load only ``plugins``, in this process, as ``host serve`` would (nothing is bound or served)."""
    from host.plugins import load_catalog

    environ = {key: value for key, value in os.environ.items() if not key.startswith("HOST_")}
    environ.update(environment)
    return load_catalog(only=list(plugins), environ=environ)


def consumed_namespaces(catalog: Catalog, plugins: Sequence[str]) -> list[str]:
    """The namespaces the plugins consume, their capability files' included."""
    names = [namespace for info in catalog.plugins if info.name in plugins for namespace in info.consumes]
    names += [api.namespace for report in catalog.files if report.plugin in plugins for api in report.apis]
    return list(dict.fromkeys(names))


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
    fake = FakeUpstream()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


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
