"""``host serve`` as a real process, and the host.toml it reads."""

from __future__ import annotations

import json as jsonlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from host.catalog import Catalog

START_TIMEOUT = 30.0


@dataclass
class HostServer:
    """A running ``host serve`` process."""

    process: subprocess.Popen[bytes]
    rest_port: int
    mcp_port: int
    config_path: Path
    log_path: Path
    plugins: tuple[str, ...] | None  # what HOST_LOAD_PLUGINS named; None: every installed plugin
    _signalled: bool = field(default=False, init=False, repr=False)

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def mcp_url(self) -> str:
        return f"http://127.0.0.1:{self.mcp_port}/mcp"

    def log(self) -> str:
        """Everything the process wrote so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")

    def wait_until_listening(self, timeout: float = START_TIMEOUT) -> None:
        """Return once both ports accept connections; ``RuntimeError`` with the output if the process
        exits first or does not listen within ``timeout`` seconds (the process is then left running)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"host serve exited with {self.process.returncode}:\n{self.log()}")
            if _listening(self.rest_port) and _listening(self.mcp_port):
                return
            time.sleep(0.05)
        raise RuntimeError(f"host serve did not listen within {timeout:g} s:\n{self.log()}")

    def terminate(self) -> None:
        """SIGTERM without waiting (``stop`` waits): to stop several hosts at once. Sent once: a second
        SIGTERM during the graceful shutdown would cut the requests still in flight."""
        if self.process.poll() is None and not self._signalled:
            self.process.send_signal(signal.SIGTERM)
            self._signalled = True

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, then wait for the exit code (SIGKILL after ``timeout`` seconds: -9)."""
        self.terminate()
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout)


def stop_hosts(hosts: Sequence[HostServer], timeout: float = 20) -> list[int]:
    """Stop several hosts at once: SIGTERM to each, then each one's exit code (as ``HostServer.stop``)."""
    for host in hosts:
        host.terminate()
    return [host.stop(timeout) for host in hosts]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
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
    shutdown_grace: float = 5,
) -> str:
    """The host.toml ``host_server`` writes: loopback ports, one table per consumed namespace."""
    lines = [
        "[server]",
        'host = "127.0.0.1"',
        f"rest_port = {rest_port}",
        f"mcp_port = {mcp_port}",
        f"shutdown_grace = {shutdown_grace:g}",
        "",
    ]
    for namespace, settings in consumes.items():
        lines.append(f"[consumes.{_toml_key(namespace)}]")
        lines += [f"{_toml_key(key)} = {_toml_value(value)}" for key, value in settings.items()]
        lines.append("")
    return "\n".join(lines) + (extra.strip() + "\n" if extra.strip() else "")


def write_host_toml(
    directory: Path,
    body: str = "",
    *,
    rest_port: int | None = None,
    mcp_port: int | None = None,
    shutdown_grace: float = 5,
) -> Path:
    """Write ``directory/host.toml``: a loopback ``[server]`` table on free ports (unless given), then
    ``body`` (any TOML: ``[consumes.<ns>]``, ``[auth]``, ``[[capabilities]]`` ...). Returns its path."""
    config = directory / "host.toml"
    config.write_text(
        render_host_toml(
            rest_port=rest_port or free_port(),
            mcp_port=mcp_port or free_port(),
            consumes={},
            extra=body,
            shutdown_grace=shutdown_grace,
        )
    )
    return config


def host_process_environment(
    plugins: Sequence[str] | None, extra: Mapping[str, str], *, drop: Sequence[str] = ("HOST_",)
) -> dict[str, str]:
    """This process's environment without the variables starting with ``drop`` (the ``HOST_*`` switches),
    loading only ``plugins`` (every installed plugin when ``None``), plus ``extra``."""
    prefixes = tuple(drop)
    environment = {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}
    if plugins is not None:
        environment["HOST_LOAD_PLUGINS"] = ",".join(plugins)
    environment.update(extra)
    return environment


def start_host_process(
    config: Path,
    *,
    plugins: Sequence[str] | None = None,
    environment: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    wait: bool = True,
    timeout: float = START_TIMEOUT,
) -> HostServer:
    """Start ``host serve --config <config> <args>`` (ports from the file's ``[server]`` table), its output
    in a log beside the file. With ``wait``, return once both ports listen (``RuntimeError`` with the
    output otherwise); without, call ``wait_until_listening`` later (to start several hosts at once)."""
    server_table = tomllib.loads(config.read_text()).get("server", {})
    rest_port, mcp_port = int(server_table["rest_port"]), int(server_table["mcp_port"])
    log_path = config.parent / f"host-{rest_port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "host", "serve", "--config", str(config), *args],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=host_process_environment(plugins, environment or {}),
            cwd=config.parent,
        )
    server = HostServer(
        process, rest_port, mcp_port, config, log_path, None if plugins is None else tuple(plugins)
    )
    if wait:
        try:
            server.wait_until_listening(timeout)
        except RuntimeError:
            server.stop()
            raise
    return server


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
    config = directory / "host.toml"
    config.write_text(
        render_host_toml(rest_port=free_port(), mcp_port=free_port(), consumes=consumes, extra=toml_extra)
    )
    return start_host_process(config, plugins=plugins, environment=environment, timeout=timeout)


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
