"""Plugin discovery through real entry-point metadata: distributions installed with pip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from mcp import Client

from host.testing import start_host_process, write_host_toml
from tests.conftest import ROOT, pip_install

FIXTURES = ROOT / "tests" / "fixtures" / "plugins"


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory with the example and broken plugin distributions pip-installed into it."""
    target = tmp_path_factory.mktemp("site")
    for name in ("host-example-plugin", "host-broken-plugin"):
        pip_install(FIXTURES / name, target=target)
    yield target


def host_env(site: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRATTA_", "HOST_"))}
    env["PYTHONPATH"] = str(site)
    env.update(extra)
    return env


def plugins_json(site: Path, *args: str, **env: str) -> dict[str, dict[str, object]]:
    result = subprocess.run(
        [sys.executable, "-m", "host", "plugins", "--json", *args],
        capture_output=True,
        text=True,
        env=host_env(site, **env),
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    return {p["name"]: p for p in json.loads(result.stdout)["plugins"]}


def test_installed_plugins_are_listed_and_a_broken_one_is_reported(site_dir: Path) -> None:
    plugins = plugins_json(site_dir)
    example = plugins["example"]
    assert example["dist"] == "host-example-plugin" and example["version"] == "1.2.3"
    assert example["contributes"] == {
        "consumes": ["example-echo"],
        "rest": ["GET /v1/echo"],
        "mcp_tools": ["echo"],
        "capability_files": [],
    }
    assert example["error"] is None
    broken = plugins["broken"]
    assert broken["version"] == "0.0.1"
    assert "a_module_that_does_not_exist" in str(broken["error"])
    assert plugins["tratta-customer-sessions"]["error"] is None  # the others still load


def test_load_selection_from_config_and_environment(site_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "host.toml"
    config.write_text('[plugins]\nload = ["example"]\n')
    assert set(plugins_json(site_dir, "--config", str(config))) == {"example"}
    assert set(plugins_json(site_dir, HOST_LOAD_PLUGINS="")) == set()
    assert "broken" not in plugins_json(site_dir, HOST_DISABLE_PLUGINS="broken")


async def test_serve_skips_the_broken_plugin_and_serves_the_others(site_dir: Path, tmp_path: Path) -> None:
    config = write_host_toml(
        tmp_path,
        """
[consumes.tratta-customer-sessions]
mock = true
[consumes.example-echo]
mock = true
""",
    )
    env = {"PYTHONPATH": str(site_dir)}
    host = start_host_process(config, environment=env)
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(host.rest_url + "/v1/echo?text=hi") as resp,
        ):
            assert resp.status == 200
            assert await resp.json() == {"echo": "hi"}
        async with Client(host.mcp_url) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert names == {"echo", "create-customer-session"}
            result = await client.call_tool("echo", {"text": "yo"})
            assert result.structured_content == {"echo": "yo"}
    finally:
        assert host.stop() == 0
    assert "plugin broken: NOT LOADED" in host.log()


def test_strict_mode_refuses_to_start_with_a_broken_plugin(site_dir: Path, tmp_path: Path) -> None:
    config = write_host_toml(tmp_path, "[consumes.tratta-customer-sessions]\nmock = true\n")
    result = subprocess.run(
        [sys.executable, "-m", "host", "serve", "--config", str(config), "--strict"],
        capture_output=True,
        text=True,
        env=host_env(site_dir),
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 2
    assert "broken" in result.stderr and "strict" in result.stderr
    config.write_text(config.read_text().replace("[consumes.", "[plugins]\nstrict = true\n[consumes.", 1))
    result = subprocess.run(
        [sys.executable, "-m", "host", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        env=host_env(site_dir),
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 2 and "broken" in result.stderr
