"""A port already in use is one clear line naming the address, the setting and the fix, not a traceback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from host.testing import free_port, render_host_toml
from tests.test_serve_process import run_cli

PLUGIN = "tratta-customer-sessions"
ENV = {"HOST_LOAD_PLUGINS": PLUGIN}


@pytest.fixture
def taken() -> Iterator[int]:
    """A loopback port another program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _config(tmp_path: Path, rest_port: int, mcp_port: int) -> Path:
    config = tmp_path / "host.toml"
    config.write_text(
        render_host_toml(rest_port=rest_port, mcp_port=mcp_port, consumes={PLUGIN: {"mock": True}})
    )
    return config


def _the_error(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("host: error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def test_a_taken_port_from_host_toml_names_the_key(tmp_path: Path, taken: int) -> None:
    result = run_cli("serve", "--config", str(_config(tmp_path, free_port(), taken)), env=ENV)
    assert result.returncode == 2
    error = _the_error(result.stderr)
    assert f"127.0.0.1:{taken}" in error and "[server] mcp_port" in error
    assert "already in use" in error and "choose another port" in error


def test_a_taken_port_from_a_flag_names_the_flag(tmp_path: Path, taken: int) -> None:
    config = _config(tmp_path, free_port(), free_port())
    result = run_cli("serve", "--config", str(config), "--rest-port", str(taken), env=ENV)
    assert result.returncode == 2
    error = _the_error(result.stderr)
    assert f"127.0.0.1:{taken}" in error and "--rest-port" in error


def test_workers_are_not_started_on_a_taken_port(tmp_path: Path, taken: int) -> None:
    config = _config(tmp_path, taken, free_port())
    result = run_cli("serve", "--config", str(config), "--workers", "2", env=ENV, timeout=30)
    assert result.returncode == 2
    assert "[server] rest_port" in _the_error(result.stderr)
    assert "worker 1 started" not in result.stderr


def test_check_config_reports_a_taken_port(tmp_path: Path, taken: int) -> None:
    config = _config(tmp_path, taken, free_port())
    result = run_cli("check", "--config", str(config), env=ENV)
    assert result.returncode == 1, result.stdout
    assert f"config: error: cannot listen on 127.0.0.1:{taken} ([server] rest_port)" in result.stdout

    free = _config(tmp_path, free_port(), free_port())
    assert run_cli("check", "--config", str(free), env=ENV).stdout.strip() == "config: OK"
