"""``host new-plugin``: bake the template, install the result, run its own tests, see it listed.

Each baked plugin goes into a fresh virtual environment (``--system-site-packages``,
plus a ``.pth`` file adding this interpreter's site-packages, so the host, pytest
and every dependency are there without network), is pip-installed the way a user
would, and its generated tests run with that environment's pytest: they use the
fixtures ``host.testing`` ships (fake_upstream, host_server, rest_client, mcp_client).
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from host import scaffold
from host.cli import main
from host.testing import FakeResponse, FakeUpstream, RecordedRequest
from tests.conftest import ROOT, pip_install

TRATTA_FILE = (
    ROOT / "plugins/tratta_customer_sessions/tratta_customer_sessions/data/tratta-customer-sessions.yaml"
)


def clean_env(**extra: str) -> dict[str, str]:
    """No HOST_* switches, no PYTHONPATH, no pytest settings from the outer run."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HOST_", "PYTEST_", "TRATTA_")) and key != "PYTHONPATH"
    }
    env.update(extra)
    return env


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    """A new virtual environment that sees this interpreter's packages (host, pytest, aiohttp, mcp)."""
    target = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(target)],
        check=True,
        timeout=60,
    )
    python = target / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    # --system-site-packages reaches the base interpreter's site-packages, not this venv's: add ours,
    # through site.addsitedir so that their .pth files (editable installs) are processed too.
    ours = [path for path in site.getsitepackages() if Path(path).is_dir()]
    lines = "".join(f"import site; site.addsitedir({path!r})\n" for path in ours)
    (Path(purelib) / "_capability_host_tests.pth").write_text(lines)
    return python


def bake(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "host", "new-plugin", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
        cwd=ROOT,
    )


def pip_install_into(python: Path, project: Path) -> None:
    pip_install(project, python=str(python), env=clean_env())


def run_plugin_tests(python: Path, project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(),
        cwd=project,
    )


def plugins_json(python: Path, cwd: Path, **env: str) -> dict[str, dict[str, Any]]:
    result = subprocess.run(
        [str(python), "-m", "host", "plugins", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(**env),
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr
    return {plugin["name"]: plugin for plugin in json.loads(result.stdout)["plugins"]}


def test_example_plugin_is_ready_to_install_test_and_serve(tmp_path: Path, venv: Path) -> None:
    result = bake("acme-weather", "--directory", str(tmp_path))
    assert result.returncode == 0, result.stderr
    project = tmp_path / "acme-weather"
    assert "host-acme-weather" in result.stdout
    written = sorted(str(path.relative_to(project)) for path in project.rglob("*") if path.is_file())
    assert written == [
        ".gitignore",
        "README.md",
        "host_acme_weather/__init__.py",
        "host_acme_weather/py.typed",
        "pyproject.toml",
        "tests/test_host_acme_weather.py",
    ]
    pyproject = (project / "pyproject.toml").read_text()
    assert '[project.entry-points."host.plugins"]\nacme-weather = "host_acme_weather"' in pyproject
    assert "test = [" in pyproject and scaffold.host_requirement() in pyproject

    pip_install_into(venv, project)
    tests = run_plugin_tests(venv, project)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "4 passed" in tests.stdout, tests.stdout

    plugin = plugins_json(venv, tmp_path)["acme-weather"]
    assert plugin["dist"] == "host-acme-weather" and plugin["version"] == "0.1.0"
    assert plugin["error"] is None
    assert plugin["hooks"] == [
        "host_register_consumes",
        "host_register_mcp_tools",
        "host_register_rest_resources",
    ]
    assert plugin["contributes"] == {
        "consumes": ["acme-weather"],
        "rest": ["GET /v1/acme-weather/items/{item_id}"],
        "mcp_tools": ["acme-weather-get-item"],
        "capability_files": [],
    }


def test_capability_plugin_wraps_the_file(tmp_path: Path, venv: Path) -> None:
    result = bake("tratta-portal", "--from-capability", str(TRATTA_FILE), "--directory", str(tmp_path))
    assert result.returncode == 0, result.stderr
    project = tmp_path / "tratta-portal"
    packaged = project / "host_tratta_portal" / "data" / TRATTA_FILE.name
    assert packaged.read_bytes() == TRATTA_FILE.read_bytes()
    assert "host_register_capability_files" in (project / "host_tratta_portal" / "__init__.py").read_text()

    pip_install_into(venv, project)
    tests = run_plugin_tests(venv, project)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "3 passed" in tests.stdout, tests.stdout  # listed, tools served, a tool call reaches the upstream

    # The file serves what the installed Tratta plugin serves: the two clash, so leave that one out.
    plugins = plugins_json(venv, tmp_path, HOST_DISABLE_PLUGINS="tratta-customer-sessions")
    plugin = plugins["tratta-portal"]
    assert plugin["dist"] == "host-tratta-portal" and plugin["error"] is None
    assert plugin["hooks"] == ["host_register_capability_files"]
    [installed] = plugin["contributes"]["capability_files"]
    assert Path(installed).name == TRATTA_FILE.name and Path(installed).is_file()  # shipped as package data
    assert Path(installed).read_bytes() == TRATTA_FILE.read_bytes()


def test_fixture_selection_by_marker_and_a_clear_error_without_one(tmp_path: Path, venv: Path) -> None:
    (tmp_path / "test_selection.py").write_text(
        "import pytest\n"
        "\n"
        "@pytest.mark.host_plugins('tratta-customer-sessions')\n"
        "def test_marker(host_plugin_info, host_namespaces):\n"
        "    assert host_plugin_info['tratta-customer-sessions']['error'] is None\n"
        "    assert host_namespaces == ['tratta-customer-sessions']\n"
        "\n"
        "def test_unnamed(host_plugin_info):\n"
        "    pass\n"
        "\n"
        "@pytest.mark.host_plugins('not-installed')\n"
        "def test_missing(host_plugin_info):\n"
        "    pass\n"
    )
    result = subprocess.run(
        [str(venv), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rE", "test_selection.py"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
        cwd=tmp_path,
    )
    assert "1 passed, 2 errors" in result.stdout, result.stdout
    assert "name the plugin under test" in result.stdout
    assert "no plugin named not-installed is installed" in result.stdout


@pytest.mark.parametrize("name", ["Weather", "9lives", "my_plugin", "my plugin", "weather!", ""])
def test_invalid_name_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    assert main(["new-plugin", name, "--directory", str(tmp_path)]) == 2
    assert "invalid plugin name" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_existing_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "weather").mkdir()
    (tmp_path / "weather" / "notes.txt").write_text("mine")
    result = bake("weather", "--directory", str(tmp_path))
    assert result.returncode == 2
    assert "already exists" in result.stderr
    assert [path.name for path in (tmp_path / "weather").iterdir()] == ["notes.txt"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("naftiko: 1.0.0-alpha2\ncapability: [unclosed\n", "not valid YAML"),
        ("naftiko: 0.4\ninfo: {label: old}\ncapability: {}\n", "not supported"),
        ("- just\n- a list\n", "not a mapping"),
    ],
)
def test_capability_file_host_check_rejects_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, reason: str
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(content)
    out = tmp_path / "out"
    assert main(["new-plugin", "weather", "--from-capability", str(broken), "--directory", str(out)]) == 2
    err = capsys.readouterr().err
    assert "host check reports ERROR" in err and reason in err
    assert not out.exists()


def test_missing_capability_file_is_refused(tmp_path: Path) -> None:
    result = bake("weather", "--from-capability", str(tmp_path / "nope.yaml"), "--directory", str(tmp_path))
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_every_template_marker_is_filled() -> None:
    names = scaffold.PluginNames.of("x1")
    for files in (
        scaffold.render("example", scaffold.example_variables(names)),
        scaffold.render("capability", scaffold.capability_variables(names, TRATTA_FILE)[0]),
    ):
        for path, data in files.items():
            assert "{{" not in path and "__package__" not in path
            assert b"{{ " not in data, path
    with pytest.raises(KeyError, match="unknown"):
        scaffold.fill("{{ unknown }}", {})
    assert scaffold.host_requirement("0.1.0") == "capability-host>=0.1,<0.2"
    assert scaffold.host_requirement("1.4.2") == "capability-host>=1.4,<2"


async def test_fake_upstream_routes_and_records() -> None:
    fake = FakeUpstream()
    fake.start()
    try:
        fake.route("GET", "/items/{item_id}", json={"first": True})
        fake.route("GET", "/items/{item_id}", status=201, json={"second": True})  # the latest wins
        fake.route("*", "/echo", handler=lambda r: FakeResponse.of_json({"got": r.json()}, status=202))
        fake.route("POST", "/text", text="plain", headers={"X-Fake": "1"})
        async with aiohttp.ClientSession(base_url=fake.url) as session:
            async with session.get("/items/42?q=1", headers={"Authorization": "Bearer t"}) as response:
                assert (response.status, await response.json()) == (201, {"second": True})
            async with session.put("/echo", json={"a": 1}) as response:
                assert (response.status, await response.json()) == (202, {"got": {"a": 1}})
            async with session.post("/text") as response:
                assert await response.text() == "plain" and response.headers["X-Fake"] == "1"
            async with session.delete("/nowhere") as response:
                assert response.status == 404
                assert "no route for DELETE /nowhere" in (await response.json())["error"]
        first: RecordedRequest = fake.requests[0]
        assert (first.method, first.path, dict(first.query)) == ("GET", "/items/42", {"q": "1"})
        assert first.headers["authorization"] == "Bearer t" and first.path_params == {"item_id": "42"}
        assert [r.method for r in fake.requests] == ["GET", "PUT", "POST", "DELETE"]
        with pytest.raises(ValueError, match="at most one"):
            fake.route("GET", "/x", json={}, text="both")
        fake.reset()
        assert fake.requests == []
    finally:
        fake.stop()
