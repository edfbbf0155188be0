"""What a new user meets first: ``host serve`` flags, ``--help`` texts and the README's examples, run."""

from __future__ import annotations

import glob
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator

import aiohttp
import pytest

from host.testing import HostServer, free_port, host_process_environment
from tests.conftest import ROOT
from tests.test_serve_process import run_cli

README = (ROOT / "README.md").read_text()


def _readme_bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README, re.DOTALL)


@pytest.mark.parametrize("command", [(), ("serve",), ("check",), ("plugins",), ("new-plugin",)])
def test_help_has_no_rest_markup(command: tuple[str, ...]) -> None:
    result = run_cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "``" not in result.stdout, result.stdout


def test_serve_help_shows_the_address_flags() -> None:
    result = run_cli("serve", "--help")
    for flag, key in (("--host", "host"), ("--rest-port", "rest_port"), ("--mcp-port", "mcp_port")):
        assert flag in result.stdout
        assert f"[server] {key}" in result.stdout  # says which host.toml key it overrides


@pytest.mark.parametrize(
    ("flag", "value"), [("--rest-port", "70000"), ("--mcp-port", "-1"), ("--rest-port", "http")]
)
def test_a_bad_port_flag_is_one_clear_error(flag: str, value: str) -> None:
    result = run_cli("serve", "--config", "host.toml", flag, value)
    assert result.returncode == 2
    assert flag in result.stderr and "Traceback" not in result.stderr


def test_address_flags_reach_every_worker() -> None:
    from host.cli import _parser, worker_args

    args = _parser().parse_args(
        ["serve", "--config", "h.toml", "--host", "127.0.0.2", "--rest-port", "1", "--mcp-port", "2"]
    )
    forwarded = worker_args(args)
    assert forwarded[:3] == ["serve", "--config", "h.toml"]
    assert " ".join(forwarded).endswith("--host 127.0.0.2 --rest-port 1 --mcp-port 2")


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The repository's own host.toml, served on free ports chosen with the flags (8080 may be busy)."""
    rest_port, mcp_port = free_port(), free_port()
    flags = ["--host", "127.0.0.1", "--rest-port", str(rest_port), "--mcp-port", str(mcp_port)]
    log = tmp_path_factory.mktemp("quickstart") / "host.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "host", "serve", "--config", "host.toml", *flags],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=host_process_environment(["tratta-customer-sessions"], {}),
            cwd=ROOT,
        )
    host = HostServer(process, rest_port, mcp_port, ROOT / "host.toml", log, ("tratta-customer-sessions",))
    try:
        host.wait_until_listening()
        yield rest_port
    finally:
        host.stop()


async def test_flags_override_host_toml(quickstart: int) -> None:
    assert quickstart != 8080
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{quickstart}/healthz") as resp,
    ):
        assert resp.status == 200


def test_readme_curl_example_prints_what_its_comment_promises(quickstart: int) -> None:
    block = next(b for b in _readme_bash_blocks() if b.lstrip().startswith("curl"))
    command = "\n".join(line for line in block.splitlines() if not line.startswith("#"))
    promised = [line.removeprefix("# ") for line in block.splitlines() if line.startswith("#")]
    command = command.replace("127.0.0.1:8080", f"127.0.0.1:{quickstart}")
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
    printed = result.stdout.strip().splitlines()
    assert len(printed) == len(promised), (printed, promised)
    for shown, expected in zip(printed, promised, strict=True):
        if expected.startswith("{"):
            assert set(json.loads(shown)["data"]) == set(json.loads(expected.replace("...", ""))["data"])
        else:
            assert shown == expected


def test_readme_host_check_example_points_to_real_files() -> None:
    line = next(
        line
        for block in _readme_bash_blocks()
        for line in block.splitlines()
        if line.startswith(".venv/bin/host check ") and "*" in line
    )
    pattern = shlex.split(line.split("#")[0])[2]
    files = sorted(glob.glob(pattern, root_dir=ROOT))
    assert files, f"the README's `host check {pattern}` matches nothing in the repository"
    result = run_cli("check", *files)
    assert result.returncode == 0, result.stdout
