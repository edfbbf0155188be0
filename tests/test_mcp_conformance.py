"""MCP conformance checked by outside tools: the official conformance suite and the MCP Inspector CLI.

``scripts/mcp_tools.sh`` installs both under ``.tools/`` (Node 24 from PyPI, then
``@modelcontextprotocol/conformance`` and ``@modelcontextprotocol/inspector`` from npm); without
them every test here is skipped.

The suite runs the server scenarios each spec revision requires (``--requirements``: the set frozen
at the revision's release, each scenario at that revision's wire) against ``host serve`` with the
conformance fixture plugin (tests/fixtures/plugins/host-conformance-plugin). Only what the
stateless design cannot do is baselined, in tests/conformance-expected-failures.yml; any other
failing check fails the test, and the assertion message names each check, its message and the
host's answer. Scenarios the revision runs but does not score (pending, extensions; see the suite's
requirements/<revision>.yaml) never fail the test; a failing *pending* one is reported as a warning.
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from host.testing import HostServer, start_host_process, write_host_toml
from tests.conftest import ROOT, pip_install

TOOLS_BIN = ROOT / ".tools" / "bin"
CONFORMANCE = TOOLS_BIN / "conformance"
INSPECTOR = TOOLS_BIN / "mcp-inspector"
REQUIREMENTS = ROOT / ".tools/npm/node_modules/@modelcontextprotocol/conformance/requirements"
EXPECTED_FAILURES = ROOT / "tests" / "conformance-expected-failures.yml"
FIXTURE_PLUGIN = ROOT / "tests" / "fixtures" / "plugins" / "host-conformance-plugin"
REVISIONS = ("2025-11-25", "2026-07-28")
PORT_RANGE = range(27000, 28000)  # the loopback ports these tests use


def _tooling_installed() -> bool:
    return all(os.access(path, os.X_OK) for path in (TOOLS_BIN / "node", CONFORMANCE, INSPECTOR))


if os.environ.get("HOST_REQUIRE_MCP_TOOLS") and not _tooling_installed():  # CI must not skip silently
    raise RuntimeError("HOST_REQUIRE_MCP_TOOLS is set but scripts/mcp_tools.sh has not installed the tooling")

pytestmark = pytest.mark.skipif(
    not _tooling_installed(),
    reason="MCP conformance tooling is not installed (.tools/bin/conformance, .tools/bin/mcp-inspector): "
    "run scripts/mcp_tools.sh once (needs PyPI and the npm registry)",
)


def _free_ports(count: int) -> list[int]:
    candidates = list(PORT_RANGE)
    random.shuffle(candidates)
    ports: list[int] = []
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            return ports
    raise RuntimeError(f"no {count} free ports in {PORT_RANGE}")


def _start(directory: Path, body: str, env: dict[str, str] | None = None) -> HostServer:
    rest, mcp = _free_ports(2)
    config = write_host_toml(directory, body, rest_port=rest, mcp_port=mcp)
    return start_host_process(config, environment=env)


def _tool_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(NO_COLOR="1", NO_UPDATE_NOTIFIER="1", npm_config_update_notifier="false")
    return env


@pytest.fixture(scope="module")
def conformance_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostServer]:
    """`host serve` with only the conformance fixture plugin, pip-installed into a directory of its own."""
    site = tmp_path_factory.mktemp("conformance-site")
    pip_install(FIXTURE_PLUGIN, target=site)
    host = _start(
        tmp_path_factory.mktemp("conformance-host"),
        '[plugins]\nload = ["conformance"]\nstrict = true\n',
        env={"PYTHONPATH": str(site)},
    )
    yield host
    assert host.stop() == 0, host.log()
    assert "Traceback" not in host.log(), host.log()


_RESULT_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _results(output: Path) -> dict[str, list[dict[str, Any]]]:
    """Checks by scenario, from the suite's ``-o`` directory."""
    found: dict[str, list[dict[str, Any]]] = {}
    for checks in sorted(output.glob("server-*/checks.json")):
        match = _RESULT_DIR.match(checks.parent.name)
        scenario = match.group("scenario") if match else checks.parent.name
        found.setdefault(scenario, []).extend(json.loads(checks.read_text()))
    return found


def _section(stdout: str, title: str) -> list[str]:
    """The indented lines under a heading of the suite's summary, such as "Unexpected failures"."""
    lines = stdout.splitlines()
    for index, line in enumerate(lines):
        if line.strip().startswith(title):
            block = []
            for entry in lines[index + 1 :]:
                if not entry.startswith("  "):
                    break
                block.append(entry.strip())
            return block
    return []


def _failing(checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [check for check in checks if check["status"] in {"FAILURE", "WARNING"}]  # both fail a baseline


def _describe(check: dict[str, Any], note: str = "") -> str:
    text = f"[{check['id']}] {check['status']}: {check.get('errorMessage') or check.get('description')}{note}"
    details = check.get("details")
    if details:
        text += "\n      " + json.dumps(details, ensure_ascii=False)[:1500]
    return text


def _not_scored(revision: str) -> dict[str, str]:
    """Server scenarios the revision runs but does not score, with the reason (pending, extension, ...)."""
    requirements = yaml.safe_load((REQUIREMENTS / f"{revision}.yaml").read_text())
    return {
        entry["scenario"]: entry["reason"]
        for entry in requirements.get("not_scored", [])
        if entry.get("leg") == "server"
    }


def _baseline() -> set[str]:
    return set(yaml.safe_load(EXPECTED_FAILURES.read_text())["server"])


@pytest.mark.parametrize("revision", REVISIONS)
def test_conformance_suite_server_scenarios(
    revision: str, conformance_host: HostServer, tmp_path: Path
) -> None:
    output = tmp_path / "results"
    run = subprocess.run(
        [
            str(CONFORMANCE),
            "server",
            "--url",
            conformance_host.mcp_url,
            "--requirements",
            revision,
            "--expected-failures",
            str(EXPECTED_FAILURES),
            "-o",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env=_tool_env(),
    )
    stdout = _ANSI.sub("", run.stdout)
    results = _results(output)
    if not results:
        pytest.fail(f"the suite wrote no results (exit {run.returncode}):\n{stdout}\n{run.stderr}")

    # Per-scenario summary (shown with -rP or -s, and on failure).
    not_scored, baseline = _not_scored(revision), _baseline()
    summary = []
    for scenario, checks in results.items():
        failing = _failing(checks)
        passed = sum(check["status"] == "SUCCESS" for check in checks)
        note = f" (not scored: {not_scored[scenario]})" if scenario in not_scored else ""
        summary.append(
            f"{'FAIL' if failing else 'pass'} {scenario}: {passed} passed, {len(failing)} failed{note}"
        )
        if not_scored.get(scenario) != "extension":
            for check in failing:
                expected = " [expected: stateless]" if f"{scenario}:{check['id']}" in baseline else ""
                summary.append(f"    {_describe(check, expected)}")
    print(f"conformance --requirements {revision} against {conformance_host.mcp_url}:\n" + "\n".join(summary))

    for scenario, reason in not_scored.items():
        failed = list(dict.fromkeys(c["id"] for c in results.get(scenario, []) if c["status"] == "FAILURE"))
        if reason == "pending" and failed:
            ids = ", ".join(failed)
            warnings.warn(f"conformance {revision}: pending scenario {scenario} fails {ids}", stacklevel=1)

    if run.returncode != 0:
        unexpected = [entry.lstrip("✗ ") for entry in _section(stdout, "Unexpected failures")]
        stale = [entry.lstrip("✓ ") for entry in _section(stdout, "Stale baseline entries")]
        details = [
            f"{scenario}:\n    " + "\n    ".join(_describe(check) for check in _failing(checks))
            for scenario, checks in results.items()
            if scenario in {entry.split(":")[0] for entry in unexpected}
        ]
        pytest.fail(
            f"conformance --requirements {revision} exited {run.returncode}\n"
            f"unexpected failures (not in {EXPECTED_FAILURES.name}): {', '.join(unexpected) or '-'}\n"
            f"stale baseline entries (now passing: delete them): {', '.join(stale) or '-'}\n\n"
            + "\n".join(details)
            + (f"\n\n{run.stderr}" if run.stderr.strip() else ""),
            pytrace=False,
        )


def _inspector(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(INSPECTOR), "--cli", url, "--transport", "http", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=_tool_env(),
    )


def test_inspector_cli_lists_and_calls_the_tratta_tool(tmp_path: Path) -> None:
    host = _start(
        tmp_path,
        '[plugins]\nload = ["tratta-customer-sessions"]\n[consumes.tratta-customer-sessions]\nmock = true\n',
    )
    try:
        listed = _inspector(host.mcp_url, "--method", "tools/list")
        assert listed.returncode == 0, listed.stdout + listed.stderr
        tools = {tool["name"]: tool for tool in json.loads(listed.stdout)["tools"]}
        assert "create-customer-session" in tools, sorted(tools)
        assert tools["create-customer-session"]["inputSchema"]["required"] == ["body"]

        called = _inspector(
            host.mcp_url,
            "--method",
            "tools/call",
            "--tool-name",
            "create-customer-session",
            "--tool-args-json",
            json.dumps({"body": {"customer_id": "c-1"}}),
        )
        assert called.returncode == 0, called.stdout + called.stderr
        result = json.loads(called.stdout)
        assert result["isError"] is False, result
        session = result["structuredContent"]["data"]
        assert session["portal_url"].startswith("https://") and session["expiration"]
        assert json.loads(result["content"][0]["text"]) == result["structuredContent"]

        # A bad argument is an isError result the Inspector reports (its exit code 5), not a crash.
        refused = _inspector(
            host.mcp_url,
            "--method",
            "tools/call",
            "--tool-name",
            "create-customer-session",
            "--tool-args-json",
            json.dumps({"body": {}}),
        )
        assert refused.returncode == 5, refused.stdout + refused.stderr
        assert json.loads(refused.stdout)["isError"] is True
        assert "body.customer_id" in refused.stdout
    finally:
        assert host.stop() == 0, host.log()
    assert "MOCK" in host.log()
