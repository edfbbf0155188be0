"""bench/run.py without load: its options, the peer legs' skipping, and the targets computed from legs.

Nothing here starts a server or sends a request; the benchmark itself is run by hand (bench/README.md).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _bench_module(name: str) -> ModuleType:
    # bench/ is a folder of scripts that import one another by plain name.
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCH))


run = _bench_module("run")
legs = _bench_module("legs")
peers = _bench_module("peers")
report = _bench_module("report")
loadgen = _bench_module("loadgen")


def test_quick_and_only_are_parsed() -> None:
    args, settings = run.parse_settings(["--quick", "--only", "c, d,mem", "--loadgen", "python", "--all"])
    assert args.all and args.quick
    assert (settings.seconds, settings.c1_seconds, settings.warmup) == (3.0, 1.0, 1.0)
    assert settings.mem_requests == 10_000
    assert settings.only == frozenset({"c", "d", "mem"})


def test_what_standalone_benches_import_from_run_is_still_there() -> None:
    # bench/tracing_cost.py imports these from run (they moved to legs.py and procs.py).
    names = ["API_KEY", "BENCH", "HOST_AUTH", "HOST_KEY", "MODERN", "ROOT", "cpus", "mcp_request"]
    names += ["preflight", "rest_request", "started"]
    assert [name for name in names if not hasattr(run, name)] == []
    assert run.BENCH == BENCH


def test_memory_requests_is_an_alias_and_all_groups_run_by_default() -> None:
    _, settings = run.parse_settings(["--memory-requests", "0", "--loadgen", "python"])
    assert settings.mem_requests == 0
    assert settings.only == frozenset(legs.GROUPS)
    assert {"f", "g"} <= settings.only


@pytest.mark.parametrize("argv", [["--only", "c,zz"], ["--only", ","], ["--port-base", "80"], ["-c", "0"]])
def test_bad_options_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run.parse_settings([*argv, "--loadgen", "python"])
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def _settings(tmp_path: Path, only: str) -> object:
    _, settings = run.parse_settings(
        ["--only", only, "--loadgen", "python", "--peers-dir", str(tmp_path / "peers")]
    )
    return settings


def test_a_peer_without_its_venv_is_skipped_with_how_to_create_it(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "f,g")
    bench = legs.Bench(settings, tmp_path)
    result = report.Report(settings={}, machine={})
    for peer in peers.PEERS:
        bench.peer(peer, "http://127.0.0.1:9/api/v1", result)  # returns before starting anything
    assert result.legs == []
    assert "bash bench/peers.sh fastmcp" in result.peers["FastMCP from_openapi"]
    assert "bash bench/peers.sh contextforge" in result.peers["ContextForge"]


def test_a_peer_that_fails_to_start_is_reported_and_the_run_goes_on(tmp_path: Path) -> None:
    root = tmp_path / "peers"
    python = peers.python(peers.FASTMCP, root)
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\nexit 3\n")  # a broken venv: its python exits at once
    python.chmod(0o755)
    (root / "fastmcp" / peers.READY).write_text("4.2.3\n")
    _, settings = run.parse_settings(
        ["--only", "f", "--loadgen", "python", "--peers-dir", str(root), "--port-base", "31000"]
    )
    result = report.Report(settings={}, machine={})
    legs.Bench(settings, tmp_path).peer_or_failure(peers.FASTMCP, "http://127.0.0.1:9/api/v1", result)
    assert result.legs == []
    assert result.peers["FastMCP from_openapi"].startswith("failed: ")  # did not start (or port taken)


def test_a_half_built_venv_does_not_count_until_its_marker_is_written(tmp_path: Path) -> None:
    root = tmp_path / "peers"
    python = peers.python(peers.FASTMCP, root)
    python.parent.mkdir(parents=True)
    python.write_text("")
    assert peers.version(peers.FASTMCP, root) is None
    (root / "fastmcp" / peers.READY).write_text("4.2.3\n")
    assert peers.version(peers.FASTMCP, root) == "4.2.3"
    assert peers.version(peers.CONTEXTFORGE, root) is None


def _leg(key: str, rps: float, c1_p50: float) -> object:
    load = loadgen.Measurement(requests=int(rps * 10), seconds=10.0, p50_ms=1.0, p99_ms=2.0, errors=0)
    c1 = loadgen.Measurement(requests=100, seconds=1.0, p50_ms=c1_p50, p99_ms=c1_p50, errors=0)
    return report.LegResult(key, key, load, c1)


SETTINGS = {"connections": 32, "seconds": 10.0, "warmup": 2.0, "c1_seconds": 3.0}
MACHINE = {"cpus": 2, "cpu_model": "?", "python": "3.11", "loadgen": "wrk", "pinning": "none"}


def test_targets_are_computed_from_the_legs_of_one_run() -> None:
    result = report.Report(settings={**SETTINGS, "mem_requests": 50_000}, machine=MACHINE)
    result.legs = [_leg("b", 1000, 0.50), _leg("c", 850, 0.70), _leg("d1", 800, 1.10), _leg("d2", 700, 0.90)]
    result.memory = [
        report.MemoryMark("after start-up", 0, 60.0),
        report.MemoryMark("after the legs", 40_000, 75.0),
        report.MemoryMark("mark 1 (target +50,000)", 90_000, 78.0),
        report.MemoryMark("mark 2 (target +100,000)", 140_000, 78.5),
    ]
    verdicts = {t.label: (t.measured, t.met) for t in report.targets(result)}
    assert verdicts["host MCP 2026-07-28 / host REST ≥ 0.85x"] == ("0.94x", True)
    assert verdicts["host MCP 2025-11-25 / host REST ≥ 0.85x"] == ("0.82x", False)
    assert verdicts["host REST / aiohttp proxy ≥ 0.8x"] == ("0.85x", True)
    assert verdicts["added p50 at c=1 over the proxy, REST ≤ 0.3 ms"] == ("+0.200 ms", True)
    assert verdicts["added p50 at c=1 over the proxy, MCP 2026-07-28 ≤ 0.5 ms"] == ("+0.600 ms", False)
    assert verdicts["RSS per worker after 100k requests ≤ 80 MiB"] == ("78.5 MiB", True)
    assert verdicts["no growth between the memory marks (≤ 1 MiB)"] == ("+0.5 MiB", True)
    table = report.markdown(result)
    assert "| c. c | 850 |" in table and "0.85x the proxy" in table and "0.94x own REST" in table
    assert "| host REST / aiohttp proxy ≥ 0.8x | 0.85x | yes |" in table
    printed = report.render(result)
    assert "host MCP 2026-07-28 / host REST" in printed
    assert "host / FastMCP from_openapi" not in printed  # a peer that did not run: no ratio


def test_a_short_memory_check_does_not_meet_the_100k_target() -> None:
    result = report.Report(settings={**SETTINGS, "mem_requests": 10_000}, machine=MACHINE)
    result.memory = [
        report.MemoryMark("after the legs", 5_000, 70.0),
        report.MemoryMark("mark 1 (target +10,000)", 15_000, 70.0),
        report.MemoryMark("mark 2 (target +20,000)", 25_000, 70.0),
    ]
    verdicts = {t.label: (t.measured, t.met) for t in report.targets(result)}
    measured, met = verdicts["RSS per worker after 100k requests ≤ 80 MiB"]
    assert met is False and "after only 20,000" in measured
