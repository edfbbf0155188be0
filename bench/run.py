"""Benchmark the host against a fake upstream, a REST anchor and MCP peers, one leg after the other.

    .venv/bin/python bench/run.py              # full run, about 5 minutes on a 2-core machine
    .venv/bin/python bench/run.py --quick      # smoke run, about 2 minutes
    .venv/bin/python bench/run.py --only c,d   # some legs only (quick iteration)
    bash bench/peers.sh                        # once: the peers' venvs (FastMCP, ContextForge)

Legs (see bench/README.md): a. the fake upstream directly; b. a minimal aiohttp reverse proxy (REST
anchor); c. the host's REST resource; d. the host's MCP tools/call, 2026-07-28 and 2025-11-25; e. the SDK's
MCPServer under uvicorn; f. FastMCP's OpenAPI integration; g. ContextForge with a REST tool (the MCP peers,
f and g in their own venvs, skipped when absent). Each leg: warm-up, then a fixed concurrency for a fixed
time (req/s, p50, p99, errors), then concurrency 1 (p50). Then the host's memory marks. The report gives
the ratios issue 13 asks for, from this one run, and whether each target is met.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from legs import (
    API_KEY,
    BENCH,
    GROUPS,
    HOST_AUTH,
    HOST_KEY,
    REST_BODY,
    TOOL,
    Bench,
    Settings,
    mcp_request,
    rest_request,
)
from loadgen import wrk_version
from procs import ROOT, CpuSample, Process, cpu_split, cpus, port_open, preflight, started
from report import (
    LEGACY,
    MODERN,
    NOISE_PCT,
    LegResult,
    MemoryMark,
    Report,
    markdown,
    render,
    summarize_profile,
    targets,
)

# Standalone benches (bench/tracing_cost.py, ...) import these from run, as before the split.
__all__ = [
    "API_KEY",
    "BENCH",
    "HOST_AUTH",
    "HOST_KEY",
    "LEGACY",
    "MODERN",
    "REST_BODY",
    "ROOT",
    "TOOL",
    "Bench",
    "CpuSample",
    "LegResult",
    "MemoryMark",
    "Process",
    "Report",
    "Settings",
    "cpus",
    "main",
    "mcp_request",
    "port_open",
    "preflight",
    "rest_request",
    "started",
]

# Standalone benchmarks that --all runs after the legs, each in its own process, when they are present.
STANDALONE = ("tracing_cost.py", "state_limiter.py")
STANDALONE_TIMEOUT_S = 600.0
QUICK = {"seconds": 3.0, "c1_seconds": 1.0, "warmup": 1.0, "mem_requests": 10_000, "mem_max_seconds": 30.0}


def wait_quiet(limit: float) -> float | None:
    """CPU used by everything else (in % of one CPU) over 2 s; with ``limit`` > 0, retry until quiet."""
    deadline = time.monotonic() + limit
    while True:
        before = CpuSample.take([])
        time.sleep(2.0)
        _, other = cpu_split(before, CpuSample.take([]), 0)
        if other is None or other <= NOISE_PCT or time.monotonic() >= deadline:
            return other
        print(f"bench: waiting for a quiet machine (other processes use {other:.0f}% of one CPU)", flush=True)


def machine_info(settings: Settings, bench: Bench) -> dict[str, Any]:
    model = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if bench.server_cpu is None:
        pinning = "none (fewer than 2 CPUs or no sched_setaffinity): every process floats"
    else:
        pinning = (
            f"fake upstream + load generator on CPU {bench.upstream_cpu}, server under test on CPU "
            f"{bench.server_cpu} (leg a: load generator on CPU {bench.server_cpu})"
        )
    loadgen = wrk_version() if settings.loadgen == "wrk" else "python aiohttp (bench/loadgen.py)"
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "loadgen": f"{loadgen}, 1 thread" if settings.loadgen == "wrk" else f"{loadgen}, 1 process",
        "pinning": pinning,
    }


def run_standalone(quick: bool) -> None:
    """``--all``: each standalone benchmark in turn (with ``--quick`` where it has it), bounded in time."""
    for name in STANDALONE:
        path = BENCH / name
        if not path.is_file():
            print(f"\n--all: bench/{name} is not in this checkout; skipped", flush=True)
            continue
        command = [sys.executable, str(path)]
        if quick and '"--quick"' in path.read_text():
            command.append("--quick")
        print(f"\n--all: bench/{name}{' --quick' if '--quick' in command else ''}", flush=True)
        popen = subprocess.Popen(command, cwd=ROOT)
        try:
            popen.wait(STANDALONE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            print(f"--all: bench/{name} still running after {STANDALONE_TIMEOUT_S:g} s; stopped", flush=True)
        finally:
            # SIGTERM first, so that it stops the servers it started by their PIDs.
            if popen.poll() is None:
                popen.terminate()
                try:
                    popen.wait(30)
                except subprocess.TimeoutExpired:
                    popen.kill()
                    popen.wait(5)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--connections", "-c", type=int, default=32)
    parser.add_argument("--seconds", "-d", type=float, default=10.0, help="measured seconds per leg")
    parser.add_argument("--c1-seconds", type=float, default=3.0, help="seconds at concurrency 1 per leg")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per leg (not measured)")
    parser.add_argument(
        "--mem-requests",
        "--memory-requests",
        dest="mem_requests",
        type=int,
        default=50_000,
        help="host memory marks: RSS after this many more requests, twice (100k in all; 0 skips it)",
    )
    parser.add_argument(
        "--mem-max-seconds",
        type=float,
        default=120.0,
        help="time budget of the memory check; short of it, the marks show the counts reached",
    )
    parser.add_argument("--port-base", type=int, default=28000, help="ports used: base+81 … base+491")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 s legs, 1 s c=1, 1 s warm-up, memory marks of 10k requests (not issue 13's 100k)",
    )
    parser.add_argument(
        "--only",
        metavar="LEGS",
        help=f"comma-separated groups to run, of {','.join(GROUPS)} (mem: the host's memory marks)",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help=f"then run the standalone benchmarks too ({', '.join(STANDALONE)}), each bounded to 10 minutes",
    )
    parser.add_argument("--peers-dir", type=Path, help="the peers' venvs (default bench/.peers)")
    parser.add_argument("--json-out", type=Path, help="also write every number here")
    parser.add_argument(
        "--markdown-out", type=Path, help="also write the results and targets tables for docs/benchmarks.md"
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' logs (path printed)")
    parser.add_argument(
        "--py-spy",
        metavar="PATH",
        help="profile the host and SDK legs with this py-spy binary (perturbs the numbers a little)",
    )
    parser.add_argument("--profile-top", type=int, default=20, help="functions to print per profile")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to this long for other processes to use under 10%% of a CPU",
    )
    return parser


def parse_settings(argv: list[str] | None = None) -> tuple[argparse.Namespace, Settings]:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.c1_seconds, args.warmup = QUICK["seconds"], QUICK["c1_seconds"], QUICK["warmup"]
        args.mem_requests = min(args.mem_requests, int(QUICK["mem_requests"]))
        args.mem_max_seconds = min(args.mem_max_seconds, QUICK["mem_max_seconds"])
    only = frozenset(GROUPS)
    if args.only is not None:
        only = frozenset(part.strip() for part in args.only.split(",") if part.strip())
        unknown = sorted(only - set(GROUPS))
        if unknown or not only:
            given = ", ".join(unknown) or "(none given)"
            parser.error(f"--only: unknown group(s) {given}; choose of {','.join(GROUPS)}")
    loadgen = args.loadgen
    if loadgen == "auto":
        loadgen = "wrk" if shutil.which("wrk") else "python"
    if loadgen == "wrk" and not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install -y wrk), use --loadgen python")
    if not 1024 <= args.port_base <= 65535 - 500:
        parser.error("--port-base out of range")
    if args.connections < 1 or args.seconds <= 0 or args.c1_seconds <= 0 or args.mem_requests < 0:
        parser.error("--connections, --seconds and --c1-seconds must be positive, --mem-requests ≥ 0")
    settings = Settings(
        connections=args.connections,
        seconds=args.seconds,
        c1_seconds=args.c1_seconds,
        warmup=args.warmup,
        mem_requests=args.mem_requests,
        mem_max_seconds=args.mem_max_seconds,
        port_base=args.port_base,
        loadgen=loadgen,
        py_spy=args.py_spy,
        only=only,
        **({"peers_dir": args.peers_dir} if args.peers_dir else {}),
    )
    return args, settings


def main(argv: list[str] | None = None) -> int:
    args, settings = parse_settings(argv)
    # SIGTERM unwinds like Ctrl-C, so every server started is stopped by its PID on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    began = time.monotonic()
    logs = Path(tempfile.mkdtemp(prefix="capability-host-bench-"))
    bench = Bench(settings, logs)
    report = Report(settings=asdict(settings), machine=machine_info(settings, bench))
    print(f"bench: {report.machine['loadgen']}; {report.machine['pinning']}", flush=True)
    busy = wait_quiet(args.wait_quiet)
    report.machine["busy_before_pct"] = busy
    if busy is not None:
        print(f"bench: CPU used by other processes before the start: {busy:.0f}% of one CPU", flush=True)
    profiles: dict[str, list[str]] = {}
    try:
        bench.run(report)
        profiles = {key: summarize_profile(path, args.profile_top) for key, path in bench.profiles.items()}
    finally:
        if args.keep_logs or args.py_spy:
            print(f"logs{' and profiles' if args.py_spy else ''} in {logs}")
        else:
            shutil.rmtree(logs, ignore_errors=True)
    print(render(report))
    titles = {leg.key: leg.title for leg in report.legs}
    for key, lines in profiles.items():
        print(f"\npy-spy profile of leg {key} ({titles.get(key, '?')}), measured run:")
        print("\n".join(lines))
    wall = time.monotonic() - began
    print(f"\nwall time: {wall:.0f} s")
    if args.all:
        run_standalone(args.quick)
    if args.json_out:
        args.json_out.write_text(json.dumps(to_json(report, wall), indent=1, default=str))
    if args.markdown_out:
        args.markdown_out.write_text(markdown(report))
    return 0


def to_json(report: Report, wall: float) -> dict[str, Any]:
    data = asdict(report)
    data["wall_seconds"] = wall
    data["settings"]["only"] = sorted(report.settings["only"])
    for leg in data["legs"]:
        for part in ("load", "c1"):
            leg[part]["rps"] = leg[part]["requests"] / leg[part]["seconds"] if leg[part]["seconds"] else 0
    data["targets"] = [asdict(target) for target in targets(report)]
    return data


if __name__ == "__main__":
    raise SystemExit(main())
