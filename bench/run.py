"""Benchmark the host against a fake upstream and two anchors, one leg after the other; print a table.

    .venv/bin/python bench/run.py              # full run, about 3.5 minutes on a 2-core machine
    .venv/bin/python bench/run.py --quick      # smoke run, about 1 minute
    .venv/bin/python bench/run.py --help

Legs (see bench/README.md): a. the fake upstream directly; b. a minimal aiohttp reverse proxy (REST
anchor); c. the host's REST resource; d. the host's MCP tools/call, 2026-07-28 and 2025-11-25; e. the SDK's
MCPServer under uvicorn (MCP anchor), same two requests. Each leg: warm-up, then a fixed concurrency for a
fixed time (req/s, p50, p99, errors), then concurrency 1 (p50). Then an optional memory check on the host.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import Measurement, Request, pin_to, run_python, run_wrk, wrk_version

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
API_KEY = "bench-api-key-0123456789"
TOOL = "create-customer-session"
REST_BODY = {"customer_id": "c-1"}
MODERN, LEGACY = "2026-07-28", "2025-11-25"
PROFILED = ("host", "sdk")
# "Other CPU" above this (in % of one CPU) flags a leg as disturbed by another workload.
NOISE_PCT = 10.0


# --- settings and requests -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    connections: int
    seconds: float
    c1_seconds: float
    warmup: float
    mem_requests: int
    mem_max_seconds: float
    port_base: int
    loadgen: str
    py_spy: str | None = None

    @property
    def ports(self) -> dict[str, int]:
        base = self.port_base
        return {
            "upstream": base + 90,
            "proxy": base + 81,
            "rest": base + 181,
            "mcp": base + 191,
            "sdk": base + 291,
        }


# The host is measured as deployed: inbound auth, limits and INFO logging stay on.
HOST_KEY = "bench-host-key-0123456789abcdef"
HOST_AUTH = {"X-API-Key": HOST_KEY}


def rest_request(url: str, extra: dict[str, str] | None = None) -> Request:
    return Request(
        url,
        json.dumps(REST_BODY).encode(),
        {"Content-Type": "application/json", **(extra or {})},
        '"portal_url":"https://x/y"',
    )


def mcp_request(url: str, version: str, extra: dict[str, str] | None = None) -> Request:
    params: dict[str, Any] = {"name": TOOL, "arguments": {"body": REST_BODY}}
    if version == MODERN:
        params["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
        }
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "MCP-Protocol-Version": version,
        "Mcp-Method": "tools/call",
        "Mcp-Name": TOOL,
        **(extra or {}),
    }
    return Request(url, json.dumps(body, separators=(",", ":")).encode(), headers, '"isError":false')


@dataclass
class LegResult:
    key: str
    title: str
    load: Measurement
    c1: Measurement
    # Over the measured fixed-concurrency run, in % of one CPU (None without /proc):
    server_cpu: float | None = None  # the server under test
    other_cpu: float | None = None  # processes that are not part of the bench (noise)


@dataclass
class MemoryMark:
    label: str
    served: int
    rss_mib: float


@dataclass
class Report:
    settings: dict[str, Any]
    machine: dict[str, Any]
    legs: list[LegResult] = field(default_factory=list)
    memory: list[MemoryMark] = field(default_factory=list)
    rss_after_legs: dict[str, float] = field(default_factory=dict)


# --- CPU accounting (Linux /proc; everything is None elsewhere) ---------------------------------------

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def system_busy_seconds() -> float | None:
    """CPU time spent by all CPUs outside idle and iowait since boot."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal (guest time is already inside user)
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICK


def process_cpu_seconds(pid: int) -> float | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def own_cpu_seconds() -> float:
    """This process and its reaped children (the load generator runs)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class CpuSample:
    wall: float
    busy: float | None
    pids: dict[int, float | None]
    own: float

    @classmethod
    def take(cls, pids: list[int]) -> CpuSample:
        return cls(
            time.monotonic(),
            system_busy_seconds(),
            {p: process_cpu_seconds(p) for p in pids},
            own_cpu_seconds(),
        )


def cpu_split(before: CpuSample, after: CpuSample, server: int) -> tuple[float | None, float | None]:
    """(server under test, everything outside the bench) in % of one CPU between two samples."""
    wall = after.wall - before.wall
    ours = after.own - before.own
    server_share: float | None = None
    for pid, start in before.pids.items():
        end = after.pids.get(pid)
        if start is None or end is None:
            return None, None
        ours += end - start
        if pid == server:
            server_share = 100 * (end - start) / wall
    if before.busy is None or after.busy is None or wall <= 0:
        return server_share, None
    return server_share, max(0.0, 100 * ((after.busy - before.busy) - ours) / wall)


# --- processes ----------------------------------------------------------------------------------------


def cpus() -> list[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def rss_mib(self) -> float:
        """Resident set size from /proc (Linux); 0 where unavailable."""
        try:
            for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def started(
    name: str,
    command: list[str],
    port: int,
    logs: Path,
    *,
    cpu: int | None,
    env: dict[str, str] | None = None,
) -> Iterator[Process]:
    """Start a server pinned to ``cpu``, wait until ``port`` listens, stop it by PID on the way out."""
    if port_open(port):
        raise SystemExit(f"port {port} is already in use; pick another --port-base")
    log = logs / f"{name}.log"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TRATTA_", "HOST_"))}
    environment.update(env or {})
    with log.open("wb") as out:
        popen = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=environment, cwd=ROOT, preexec_fn=pin_to(cpu)
        )
    process = Process(name, popen, log)
    try:
        deadline = time.monotonic() + 30
        while not port_open(port):
            if popen.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{name} did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)
        yield process
    finally:
        process.stop()


# --- measuring ----------------------------------------------------------------------------------------


def preflight(request: Request) -> None:
    """One request by urllib: the leg must succeed before it is measured."""
    http = urllib.request.Request(
        request.url, data=request.body, headers=dict(request.headers), method="POST"
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
    try:
        with opener.open(http, timeout=10) as response:
            status, body = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read().decode(errors="replace")
    if status >= 300 or request.expect not in body:
        raise SystemExit(f"preflight failed for {request.url}: {status} {body[:500]}")


class Bench:
    def __init__(self, settings: Settings, logs: Path) -> None:
        self.settings = settings
        self.logs = logs
        cores = cpus()
        two = len(cores) >= 2 and hasattr(os, "sched_setaffinity")
        # Core A: fake upstream and load generator. Core B: the server under test.
        self.upstream_cpu = cores[0] if two else None
        self.server_cpu = cores[1] if two else None
        self.loadgen_cpu = cores[0] if two else None
        self.run_load: Callable[..., Measurement] = run_wrk if settings.loadgen == "wrk" else run_python
        self.served: dict[str, int] = {}
        self.upstream: Process | None = None
        self.profiles: dict[str, Path] = {}

    def profile_start(self, key: str, server: Process, cpu: int | None) -> subprocess.Popen[bytes] | None:
        """With ``--py-spy``: sample the server under test during the measured run (host and SDK legs)."""
        if self.settings.py_spy is None or server.name not in PROFILED:
            return None
        out = self.logs / f"profile-{key}.raw"
        self.profiles[key] = out
        command = [self.settings.py_spy, "record", "-p", str(server.popen.pid), "-r", "100", "-f", "raw"]
        command += ["-d", str(max(1, int(self.settings.seconds))), "-o", str(out)]
        return subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=pin_to(cpu)
        )

    def load(self, request: Request, connections: int, seconds: float, *, cpu: int | None) -> Measurement:
        return self.run_load(request, connections=connections, seconds=seconds, preexec=pin_to(cpu))

    def leg(
        self, key: str, title: str, request: Request, *, server: Process, loadgen_cpu: int | None = None
    ) -> LegResult:
        cpu = self.loadgen_cpu if loadgen_cpu is None else loadgen_cpu
        s = self.settings
        preflight(request)
        warm = self.load(request, s.connections, s.warmup, cpu=cpu) if s.warmup > 0 else None
        pids = sorted({server.popen.pid, *([self.upstream.popen.pid] if self.upstream else [])})
        spy = self.profile_start(key, server, cpu)
        before = CpuSample.take(pids)
        load = self.load(request, s.connections, s.seconds, cpu=cpu)
        if spy is not None:
            spy.wait(s.seconds + 60)
        server_cpu, other_cpu = cpu_split(before, CpuSample.take(pids), server.popen.pid)
        c1 = self.load(request, 1, s.c1_seconds, cpu=cpu)
        self.served[server.name] = (
            self.served.get(server.name, 0) + 1 + (warm.requests if warm else 0) + load.requests + c1.requests
        )
        print(
            f"  {key:<3} {title:<28} {load.rps:7.0f} req/s  p50 {load.p50_ms:6.2f} ms  "
            f"p99 {load.p99_ms:7.2f} ms  errors {load.errors}  c=1 p50 {c1.p50_ms:.3f} ms  "
            f"server CPU {_pct(server_cpu)}  other CPU {_pct(other_cpu)}",
            flush=True,
        )
        return LegResult(key, title, load, c1, server_cpu, other_cpu)

    def memory(
        self, host: Process, requests: dict[str, Request], rates: dict[str, float], report: Report
    ) -> None:
        """Host RSS after the legs, then twice after ``mem_requests`` more, shared among ``requests``.

        The load generator runs by time, so each share is driven in chunks sized from the leg's measured rate;
        a mark may overshoot by a chunk's tail, and the table shows the exact count served. Each share also
        has a time budget (``mem_max_seconds`` in all), so a slow or busy machine stops short of the target
        instead of running long; the table then says so.
        """
        n = self.settings.mem_requests
        report.memory.append(MemoryMark("after the legs", self.served["host"], host.rss_mib()))
        budget = self.settings.mem_max_seconds / 2 / len(requests)
        for mark in (1, 2):
            share = max(1, n // len(requests))
            for key, request in requests.items():
                done = 0
                deadline = time.monotonic() + budget
                while done < share and (left := deadline - time.monotonic()) >= 1.0:
                    seconds = min(left, 30.0, max(1.0, (share - done) / max(rates[key], 1.0)))
                    result = self.load(request, self.settings.connections, seconds, cpu=self.loadgen_cpu)
                    if result.errors:
                        print(f"  memory check: {result.errors} errors on {request.url}", flush=True)
                    done += result.requests
                self.served["host"] += done
            rss = host.rss_mib()
            report.memory.append(MemoryMark(f"mark {mark} (target +{mark * n:,})", self.served["host"], rss))
            print(f"  memory: {self.served['host']:,} requests served, RSS {rss:.1f} MiB", flush=True)

    def run(self, report: Report) -> None:
        p = self.settings.ports
        py = sys.executable
        upstream_url = f"http://127.0.0.1:{p['upstream']}/api/v1"
        rest_path = "/v1/customer-sessions"
        upstream_cmd = [py, str(BENCH / "fake_upstream.py"), "--port", str(p["upstream"])]
        with started("upstream", upstream_cmd, p["upstream"], self.logs, cpu=self.upstream_cpu) as upstream:
            self.upstream = upstream
            # a. Nothing runs on the server core during this leg, so the load generator takes it.
            direct = rest_request(f"{upstream_url}/customer-sessions")
            report.legs.append(
                self.leg("a", "fake upstream, direct", direct, server=upstream, loadgen_cpu=self.server_cpu)
            )

            proxy_cmd = [py, str(BENCH / "proxy.py"), "--port", str(p["proxy"]), "--upstream", upstream_url]
            with started("proxy", proxy_cmd, p["proxy"], self.logs, cpu=self.server_cpu) as proxy:
                url = f"http://127.0.0.1:{p['proxy']}{rest_path}"
                report.legs.append(
                    self.leg("b", "aiohttp proxy (REST anchor)", rest_request(url), server=proxy)
                )
                report.rss_after_legs["aiohttp proxy"] = proxy.rss_mib()

            config = self.logs / "host.toml"
            config.write_text(
                f'[server]\nhost = "127.0.0.1"\nrest_port = {p["rest"]}\nmcp_port = {p["mcp"]}\n'
                f"[consumes.tratta-customer-sessions]\nbase_uri = {json.dumps(upstream_url)}\ntimeout = 10\n"
                '[[auth.keys]]\nname = "bench"\nenv = "HOST_KEY_BENCH"\n'
                '[logging]\nlevel = "INFO"\n'
            )
            host_cmd = [py, "-m", "host", "serve", "--config", str(config)]
            env = {"TRATTA_API_KEY": API_KEY, "HOST_KEY_BENCH": HOST_KEY}
            with started("host", host_cmd, p["mcp"], self.logs, cpu=self.server_cpu, env=env) as host:
                if not port_open(p["rest"]):
                    raise SystemExit("host REST port is not listening")
                rss_start = host.rss_mib()
                rest = rest_request(f"http://127.0.0.1:{p['rest']}{rest_path}", HOST_AUTH)
                mcp_url = f"http://127.0.0.1:{p['mcp']}/mcp"
                modern = mcp_request(mcp_url, MODERN, HOST_AUTH)
                legacy = mcp_request(mcp_url, LEGACY, HOST_AUTH)
                mine = {"c": rest, "d1": modern, "d2": legacy}
                titles = {"c": "host REST", "d1": f"host MCP {MODERN}", "d2": f"host MCP {LEGACY}"}
                for key, request in mine.items():
                    report.legs.append(self.leg(key, titles[key], request, server=host))
                report.rss_after_legs["host"] = host.rss_mib()
                if self.settings.mem_requests > 0:
                    report.memory.append(MemoryMark("after start-up", 0, rss_start))
                    rates = {leg.key: leg.load.rps for leg in report.legs}
                    self.memory(host, mine, rates, report)

            sdk_cmd = [py, str(BENCH / "sdk_anchor.py"), "--port", str(p["sdk"]), "--upstream", upstream_url]
            with started("sdk", sdk_cmd, p["sdk"], self.logs, cpu=self.server_cpu) as sdk:
                sdk_url = f"http://127.0.0.1:{p['sdk']}/mcp"
                for key, version in (("e1", MODERN), ("e2", LEGACY)):
                    title = f"SDK MCPServer {version}"
                    report.legs.append(self.leg(key, title, mcp_request(sdk_url, version), server=sdk))
                report.rss_after_legs["SDK MCPServer"] = sdk.rss_mib()


# --- report -------------------------------------------------------------------------------------------


def summarize_profile(path: Path, top: int) -> list[str]:
    """Top functions of a py-spy raw (collapsed stacks) file: inclusive share, then self share."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    total = 0
    try:
        text = path.read_text()
    except OSError:
        return [f"  (no profile: {path} was not written)"]
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [frame.split(" (")[0] + " " + _short(frame) for frame in stack.split(";")]
        n = int(count)
        total += n
        own[frames[-1]] += n
        packages[_package(frames[-1])] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return ["  (empty profile)"]
    # Frames present in nearly every sample (the event loop, uvicorn's serve) say nothing.
    lines = [f"  {total} samples; self time by package:"]
    lines.append("    " + ", ".join(f"{p} {100 * n / total:.0f}%" for p, n in packages.most_common(12)))
    lines.append("  inclusive (frames in under 95% of samples):")
    shown = [(f, n) for f, n in inclusive.most_common() if n < 0.95 * total][:top]
    lines += [f"    {100 * n / total:5.1f}%  {f}" for f, n in shown]
    lines.append("  self:")
    lines += [f"    {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    return lines


def _package(frame: str) -> str:
    """``name pkg/mod.py:12`` (as made by :func:`_short`) → ``pkg``; the standard library by module."""
    path = frame.split(" ", 1)[1] if " " in frame else frame
    if path.startswith("<"):
        return "<frozen or generated>"
    head = path.split("/", 1)[0]
    return head.split(".py:", 1)[0] if ".py:" in head else head


def _short(frame: str) -> str:
    """``name (path/to/site-packages/pkg/mod.py:12)`` → ``pkg/mod.py:12``."""
    where = frame.rpartition(" (")[2].rstrip(")")
    for marker in ("site-packages/", "python3.11/", "/work/main/"):
        if marker in where:
            return where.split(marker, 1)[1]
    return where


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def render(report: Report) -> str:
    legs = {leg.key: leg for leg in report.legs}
    s = report.settings
    lines = [
        "",
        f"capability-host bench: {s['connections']} connections for {s['seconds']:g} s per leg "
        f"(after {s['warmup']:g} s warm-up), then 1 connection for {s['c1_seconds']:g} s",
        f"machine: {report.machine['cpus']} CPU(s) {report.machine['cpu_model']}; "
        f"Python {report.machine['python']}; load generator: {report.machine['loadgen']}",
        f"pinning: {report.machine['pinning']}",
        f"CPU used by other processes just before the start: {_pct(report.machine.get('busy_before_pct'))}",
        "",
        f"{'leg':<4}{'':28}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}{'c=1 p50 ms':>11}"
        f"{'server CPU':>11}{'other CPU':>10}",
    ]
    for leg in report.legs:
        lines.append(
            f"{leg.key:<4}{leg.title:<28}{leg.load.rps:>8.0f}{leg.load.p50_ms:>8.2f}{leg.load.p99_ms:>8.2f}"
            f"{leg.load.errors:>7}{leg.c1.p50_ms:>11.3f}{_pct(leg.server_cpu):>11}{_pct(leg.other_cpu):>10}"
        )
    lines += [
        "server CPU: the server under test, in % of one CPU, during the measured run; other CPU: processes",
        "outside the bench (about 0% on a quiet machine; more means another workload shared the CPUs)",
    ]

    def ratio(label: str, a: str, b: str) -> None:
        if a in legs and b in legs and legs[b].load.rps > 0:
            lines.append(f"  {label:<52}{legs[a].load.rps / legs[b].load.rps:>7.2f}x")

    lines += ["", "throughput ratios (host / anchor):"]
    ratio("REST: host REST / aiohttp proxy", "c", "b")
    ratio(f"MCP {MODERN}: host / SDK MCPServer", "d1", "e1")
    ratio(f"MCP {LEGACY}: host / SDK MCPServer", "d2", "e2")
    ratio(f"host MCP {MODERN} / host REST", "d1", "c")
    ratio(f"host MCP {LEGACY} / host REST", "d2", "c")
    if "a" in legs:
        base = legs["a"].c1.p50_ms
        lines += ["", f"added latency at c=1 over the direct upstream (p50, direct = {base:.3f} ms):"]
        for key in ("b", "c", "d1", "d2", "e1", "e2"):
            if key in legs:
                lines.append(f"  {legs[key].title:<52}{legs[key].c1.p50_ms - base:>+7.3f} ms")
    if report.rss_after_legs:
        lines += [
            "",
            "RSS after its legs: " + ", ".join(f"{k} {v:.1f} MiB" for k, v in report.rss_after_legs.items()),
        ]
    if report.memory:
        lines += ["", "host memory (RSS):"]
        for mark in report.memory:
            lines.append(f"  {mark.label:<34}{mark.served:>10,} requests served{mark.rss_mib:>9.1f} MiB")
        if len(report.memory) >= 3:
            m1, m2 = report.memory[-2], report.memory[-1]
            per_10k = (m2.rss_mib - m1.rss_mib) / max(1, m2.served - m1.served) * 10_000
            growth = m2.rss_mib - m1.rss_mib
            target = 2 * int(report.settings["mem_requests"])
            if m2.served - report.memory[1].served < target:
                lines.append("  (target not reached within --mem-max-seconds: a slow or busy machine)")
            lines.append(
                f"  growth between the two marks: {growth:+.1f} MiB ({per_10k:+.2f} MiB per 10k requests)"
            )
    errors = sum(leg.load.errors + leg.c1.errors for leg in report.legs)
    if errors:
        lines += ["", f"WARNING: {errors} errors in total; see --json-out for the breakdown"]
    noisy = [leg.key for leg in report.legs if leg.other_cpu is not None and leg.other_cpu > NOISE_PCT]
    if noisy:
        lines += [
            "",
            f"WARNING: processes outside the bench used more than {NOISE_PCT:g}% of a CPU during leg(s) "
            f"{', '.join(noisy)}: those numbers are not comparable; re-run on a quiet machine",
        ]
    return "\n".join(lines)


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", "-c", type=int, default=32)
    parser.add_argument("--seconds", "-d", type=float, default=10.0, help="measured seconds per leg")
    parser.add_argument("--c1-seconds", type=float, default=3.0, help="seconds at concurrency 1 per leg")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per leg (not measured)")
    parser.add_argument(
        "--mem-requests",
        type=int,
        default=50_000,
        help="host memory check: RSS after this many more requests, twice (0 skips it)",
    )
    parser.add_argument(
        "--mem-max-seconds",
        type=float,
        default=120.0,
        help="time budget of the memory check; short of it, the marks show the counts reached",
    )
    parser.add_argument("--port-base", type=int, default=28000, help="ports used: base+81 … base+291")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument(
        "--quick", action="store_true", help="3 s legs, 1 s c=1, 1 s warm-up, 10k memory marks"
    )
    parser.add_argument("--json-out", type=Path, help="also write every number here")
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
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.c1_seconds, args.warmup = 3.0, 1.0, 1.0
        args.mem_requests = min(args.mem_requests, 10_000)
        args.mem_max_seconds = min(args.mem_max_seconds, 30.0)
    loadgen = args.loadgen
    if loadgen == "auto":
        loadgen = "wrk" if shutil.which("wrk") else "python"
    if loadgen == "wrk" and not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install -y wrk), use --loadgen python")
    if not 1024 <= args.port_base <= 65535 - 300:
        parser.error("--port-base out of range")
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
    )
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
    if args.json_out:
        data = asdict(report)
        data["wall_seconds"] = wall
        for leg in data["legs"]:
            for part in ("load", "c1"):
                leg[part]["rps"] = leg[part]["requests"] / leg[part]["seconds"] if leg[part]["seconds"] else 0
        args.json_out.write_text(json.dumps(data, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
