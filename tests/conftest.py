"""Shared fixtures: a fake Tratta upstream on a real port, and `host serve` as a real process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "tk_test_5ecret_DO_NOT_LOG_9f3a1c"
ORG_UUID = "0b6f3e2a-1111-4c4c-8d8d-123456789abc"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeTratta:
    """A Tratta look-alike. The body's customer_id picks the scenario (see `_handle`)."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    jwks: dict[str, Any] = field(default_factory=lambda: {"keys": []})

    @property
    def base_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def calls_for(self, customer_id: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if _customer(r) == customer_id]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/jwks.json":
            return web.json_response(self.jwks)
        body = await request.read()
        record = Received(request.method, request.path_qs, dict(request.headers), body)
        with self.lock:
            self.received.append(record)
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            return web.json_response({"message": "Unauthenticated."}, status=401)
        scenario = _customer(record) or ""
        if scenario == "status-422":
            return web.json_response(
                {
                    "message": "The selected customer id is invalid.",
                    "errors": {"customer_id": ["The selected customer id is invalid."]},
                },
                status=422,
            )
        if scenario == "status-429":
            return web.json_response(
                {"message": "Too Many Attempts."}, status=429, headers={"Retry-After": "7"}
            )
        if scenario.startswith("status-5"):
            return web.json_response({"message": "Server Error"}, status=int(scenario[7:]))
        if scenario == "status-401":
            return web.json_response({"message": "Unauthenticated."}, status=401)
        if scenario == "slow":
            await asyncio.sleep(5)
        if scenario == "hang":
            await asyncio.sleep(60)
        if scenario == "invalid-json":
            return web.Response(status=201, body=b'{"data": {"id": ', content_type="application/json")
        if scenario == "huge":
            return web.Response(status=201, body=b" " * (3 * 1024 * 1024), content_type="application/json")
        if scenario == "endless":
            stream = web.StreamResponse(status=201, headers={"Content-Type": "application/json"})
            await stream.prepare(request)
            chunk = b" " * 65536
            for _ in range(2048):  # bounded: 128 MiB at most, the host gives up long before
                await stream.write(chunk)
            return stream
        if scenario == "reset":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        return web.json_response(
            {
                "data": {
                    "id": "sess-1",
                    "portal_url": f"https://portal.example/login/{scenario}-SECRETLINK",
                    "return_url": None,
                    "expiration": "2026-12-01T00:00:00Z",
                }
            },
            status=201,
        )


def _customer(record: Received) -> str | None:
    try:
        return str(record.json().get("customer_id"))
    except (ValueError, AttributeError):
        return None


@pytest.fixture(scope="session")
def fake_tratta() -> Iterator[FakeTratta]:
    """Runs in its own thread and loop, so host processes of any test can reach it."""
    fake = FakeTratta(port=free_port())
    loop = asyncio.new_event_loop()
    started = threading.Event()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake._handle)
    runner = web.AppRunner(app, shutdown_timeout=1)

    async def start() -> None:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", fake.port).start()
        started.set()

    thread = threading.Thread(
        target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True
    )
    thread.start()
    assert started.wait(10), "fake Tratta did not start"
    yield fake

    async def stop() -> None:
        await runner.cleanup()
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@dataclass
class HostProcess:
    process: subprocess.Popen[bytes]
    rest_port: int
    mcp_port: int
    log_path: Path

    @property
    def rest(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def mcp(self) -> str:
        return f"http://127.0.0.1:{self.mcp_port}/mcp"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def write_config(
    directory: Path, *, consumes: str, extra: str = "", ports: tuple[int, int] | None = None
) -> tuple[Path, int, int]:
    rest_port, mcp_port = ports or (free_port(), free_port())
    config = directory / "host.toml"
    config.write_text(f"""
[server]
host = "127.0.0.1"
rest_port = {rest_port}
mcp_port = {mcp_port}
shutdown_grace = 10
{extra}
{consumes}
""")
    return config, rest_port, mcp_port


def start_host(
    config: Path,
    rest_port: int,
    mcp_port: int,
    *,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    wait: bool = True,
) -> HostProcess:
    log_path = config.parent / f"host-{rest_port}.log"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TRATTA_", "HOST_"))}
    environment.update(env or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "host", "serve", "--config", str(config), *args],
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        env=environment,
        cwd=ROOT,
    )
    host = HostProcess(process, rest_port, mcp_port, log_path)
    if wait:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"host exited with {process.returncode}:\n{host.log()}")
            if all(_listening(port) for port in (rest_port, mcp_port)):
                return host
            time.sleep(0.1)
        host.stop()
        raise AssertionError(f"host did not listen within 30 s:\n{host.log()}")
    return host


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def tratta_host(fake_tratta: FakeTratta, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    """`host serve` with the Tratta plugin pointed at the fake, token in the environment."""
    directory = tmp_path_factory.mktemp("tratta-host")
    config, rest_port, mcp_port = write_config(
        directory,
        consumes=f"""
[consumes.tratta-customer-sessions]
base_uri = "{fake_tratta.base_uri}"
timeout = 1
""",
    )
    host = start_host(config, rest_port, mcp_port, env={"TRATTA_API_KEY": API_KEY})
    yield host
    assert host.stop() == 0, host.log()
    assert API_KEY not in host.log(), "the API key leaked into the host's output"
    assert "SECRETLINK" not in host.log(), "a portal URL leaked into the host's output"


def pip_install(
    project: Path,
    *,
    target: Path | None = None,
    python: str = sys.executable,
    env: dict[str, str] | None = None,
) -> None:
    """Install a local distribution offline: no dependencies, no build isolation (the venv has setuptools)."""
    command = [
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--disable-pip-version-check",
    ]
    if target is not None:
        command += ["--target", str(target)]
    subprocess.run([*command, str(project)], check=True, timeout=180, env=env, cwd=project.parent)
