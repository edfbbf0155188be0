"""The legs of bench/run.py: which servers start, with what, and the requests each leg sends.

Legs: a. the fake upstream directly; b. the aiohttp proxy (REST anchor); c. the host's REST resource;
d1/d2. the host's MCP tools/call (2026-07-28 / 2025-11-25); e1/e2. the SDK's MCPServer; f1/f2. FastMCP's
OpenAPI integration; g2. ContextForge (2025-11-25 only). ``mem``: the host's memory marks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peers
from loadgen import Measurement, Request, pin_to, run_python, run_wrk
from peers import PEERS, Peer
from procs import CpuSample, Process, cpu_split, cpus, port_open, preflight, started
from report import ERAS, MODERN, LegResult, MemoryMark, Report, pct

BENCH = Path(__file__).resolve().parent
API_KEY = "bench-api-key-0123456789"
TOOL = "create-customer-session"
REST_BODY = {"customer_id": "c-1"}
PROFILED = ("host", "sdk")
# What --only accepts: one letter per group of legs, and the memory check.
GROUPS = ("a", "b", "c", "d", "e", *(peer.key for peer in PEERS), "mem")
# Requests per second assumed for sizing memory-check chunks when no leg measured a rate.
DEFAULT_RATE = 1000.0

# The host is measured as deployed: inbound auth, limits and INFO logging stay on.
HOST_KEY = "bench-host-key-0123456789abcdef"
HOST_AUTH = {"X-API-Key": HOST_KEY}


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
    only: frozenset[str] = frozenset(GROUPS)
    peers_dir: Path = peers.PEERS_DIR

    @property
    def ports(self) -> dict[str, int]:
        base = self.port_base
        ports = {"upstream": base + 90, "proxy": base + 81, "rest": base + 181, "mcp": base + 191}
        ports["sdk"] = base + 291
        ports.update({peer.name: base + peer.port_offset for peer in PEERS})
        return ports


def rest_request(url: str, extra: dict[str, str] | None = None) -> Request:
    return Request(
        url,
        json.dumps(REST_BODY).encode(),
        {"Content-Type": "application/json", **(extra or {})},
        '"portal_url":"https://x/y"',
    )


def mcp_request(
    url: str,
    version: str,
    extra: dict[str, str] | None = None,
    *,
    tool: str = TOOL,
    arguments: dict[str, Any] | None = None,
) -> Request:
    if arguments is None:
        arguments = {"body": REST_BODY}
    params: dict[str, Any] = {"name": tool, "arguments": arguments}
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
        "Mcp-Name": tool,
        **(extra or {}),
    }
    return Request(url, json.dumps(body, separators=(",", ":")).encode(), headers, '"isError":false')


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

    def wants(self, *groups: str) -> bool:
        return any(group in self.settings.only for group in groups)

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
        self,
        key: str,
        title: str,
        request: Request,
        *,
        server: Process,
        loadgen_cpu: int | None = None,
        connections: int | None = None,
    ) -> LegResult:
        cpu = self.loadgen_cpu if loadgen_cpu is None else loadgen_cpu
        s = self.settings
        connections = s.connections if connections is None else min(connections, s.connections)
        preflight(request)
        warm = self.load(request, connections, s.warmup, cpu=cpu) if s.warmup > 0 else None
        pids = sorted({server.popen.pid, *([self.upstream.popen.pid] if self.upstream else [])})
        spy = self.profile_start(key, server, cpu)
        before = CpuSample.take(pids)
        load = self.load(request, connections, s.seconds, cpu=cpu)
        if spy is not None:
            spy.wait(s.seconds + 60)
        server_cpu, other_cpu = cpu_split(before, CpuSample.take(pids), server.popen.pid)
        c1 = self.load(request, 1, s.c1_seconds, cpu=cpu)
        self.served[server.name] = (
            self.served.get(server.name, 0) + 1 + (warm.requests if warm else 0) + load.requests + c1.requests
        )
        print(
            f"  {key:<3} {title:<32} {load.rps:7.0f} req/s  p50 {load.p50_ms:6.2f} ms  "
            f"p99 {load.p99_ms:7.2f} ms  errors {load.errors}  c=1 p50 {c1.p50_ms:.3f} ms  "
            f"server CPU {pct(server_cpu)}  other CPU {pct(other_cpu)}",
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
        report.memory.append(MemoryMark("after the legs", self.served.get("host", 0), host.rss_mib()))
        self.served.setdefault("host", 0)
        budget = self.settings.mem_max_seconds / 2 / len(requests)
        for mark in (1, 2):
            share = max(1, n // len(requests))
            for key, request in requests.items():
                done = 0
                deadline = time.monotonic() + budget
                rate = max(rates.get(key, DEFAULT_RATE), 1.0)
                while done < share and (left := deadline - time.monotonic()) >= 1.0:
                    seconds = min(left, 30.0, max(1.0, (share - done) / rate))
                    result = self.load(request, self.settings.connections, seconds, cpu=self.loadgen_cpu)
                    if result.errors:
                        print(f"  memory check: {result.errors} errors on {request.url}", flush=True)
                    done += result.requests
                self.served["host"] += done
            rss = host.rss_mib()
            report.memory.append(MemoryMark(f"mark {mark} (target +{mark * n:,})", self.served["host"], rss))
            print(f"  memory: {self.served['host']:,} requests served, RSS {rss:.1f} MiB", flush=True)

    # --- the servers, one after the other ---------------------------------------------------------------

    def run(self, report: Report) -> None:
        p = self.settings.ports
        upstream_url = f"http://127.0.0.1:{p['upstream']}/api/v1"
        upstream_cmd = [sys.executable, str(BENCH / "fake_upstream.py"), "--port", str(p["upstream"])]
        logs, cpu = self.logs, self.upstream_cpu
        with started("upstream", upstream_cmd, p["upstream"], logs, cpu=cpu) as upstream:
            self.upstream = upstream
            if self.wants("a"):
                # Nothing runs on the server core during this leg, so the load generator takes it.
                direct = rest_request(f"{upstream_url}/customer-sessions")
                title, cpu = "fake upstream, direct", self.server_cpu
                report.legs.append(self.leg("a", title, direct, server=upstream, loadgen_cpu=cpu))
            if self.wants("b"):
                self.proxy(upstream_url, report)
            if self.wants("c", "d", "mem"):
                self.host(upstream_url, report)
            if self.wants("e"):
                self.sdk(upstream_url, report)
            for peer in PEERS:
                if self.wants(peer.key):
                    self.peer_or_failure(peer, upstream_url, report)

    def proxy(self, upstream_url: str, report: Report) -> None:
        port = self.settings.ports["proxy"]
        command = [sys.executable, str(BENCH / "proxy.py"), "--port", str(port), "--upstream", upstream_url]
        with started("proxy", command, port, self.logs, cpu=self.server_cpu) as proxy:
            request = rest_request(f"http://127.0.0.1:{port}/v1/customer-sessions")
            report.legs.append(self.leg("b", "aiohttp proxy (REST anchor)", request, server=proxy))
            report.rss_after_legs["aiohttp proxy"] = proxy.rss_mib()

    def host(self, upstream_url: str, report: Report) -> None:
        p = self.settings.ports
        config = self.logs / "host.toml"
        config.write_text(
            f'[server]\nhost = "127.0.0.1"\nrest_port = {p["rest"]}\nmcp_port = {p["mcp"]}\n'
            f"[consumes.tratta-customer-sessions]\nbase_uri = {json.dumps(upstream_url)}\ntimeout = 10\n"
            '[[auth.keys]]\nname = "bench"\nenv = "HOST_KEY_BENCH"\n'
            '[logging]\nlevel = "INFO"\n'
        )
        command = [sys.executable, "-m", "host", "serve", "--config", str(config)]
        env = {"TRATTA_API_KEY": API_KEY, "HOST_KEY_BENCH": HOST_KEY}
        with started("host", command, p["mcp"], self.logs, cpu=self.server_cpu, env=env) as host:
            if not port_open(p["rest"]):
                raise SystemExit("host REST port is not listening")
            rss_start = host.rss_mib()
            rest = rest_request(f"http://127.0.0.1:{p['rest']}/v1/customer-sessions", HOST_AUTH)
            mcp_url = f"http://127.0.0.1:{p['mcp']}/mcp"
            mine = {"c": rest}
            mine.update({f"d{suffix}": mcp_request(mcp_url, era, HOST_AUTH) for suffix, era in ERAS})
            titles = {"c": "host REST", **{f"d{suffix}": f"host MCP {era}" for suffix, era in ERAS}}
            for key, request in mine.items():
                if self.wants(key[0]):
                    report.legs.append(self.leg(key, titles[key], request, server=host))
            report.rss_after_legs["host"] = host.rss_mib()
            if self.settings.mem_requests > 0 and self.wants("mem"):
                report.memory.append(MemoryMark("after start-up", 0, rss_start))
                rates = {leg.key: leg.load.rps for leg in report.legs}
                for key, request in mine.items():
                    if key not in rates:  # --only mem: a 1 s probe sizes the chunks (and counts as served)
                        probe = self.load(request, self.settings.connections, 1.0, cpu=self.loadgen_cpu)
                        rates[key] = probe.rps
                        self.served["host"] = self.served.get("host", 0) + probe.requests
                self.memory(host, mine, rates, report)

    def sdk(self, upstream_url: str, report: Report) -> None:
        port = self.settings.ports["sdk"]
        command = [sys.executable, str(BENCH / "sdk_anchor.py"), "--port", str(port)]
        command += ["--upstream", upstream_url]
        with started("sdk", command, port, self.logs, cpu=self.server_cpu) as sdk:
            url = f"http://127.0.0.1:{port}/mcp"
            for suffix, era in ERAS:
                request = mcp_request(url, era)
                report.legs.append(self.leg(f"e{suffix}", f"SDK MCPServer {era}", request, server=sdk))
            report.rss_after_legs["SDK MCPServer"] = sdk.rss_mib()

    def peer_or_failure(self, peer: Peer, upstream_url: str, report: Report) -> None:
        """A peer that fails (start, set-up or a leg) is reported as failed; the run and its table go on."""
        try:
            self.peer(peer, upstream_url, report)
        except SystemExit as exc:
            if not isinstance(exc.code, str):  # SIGTERM or Ctrl-C: stop the whole run
                raise
            self.peer_failed(peer, exc.code, report)
        except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as exc:
            self.peer_failed(peer, f"{type(exc).__name__}: {exc}", report)

    @staticmethod
    def peer_failed(peer: Peer, reason: str, report: Report) -> None:
        print(f"  {peer.key}   {peer.title} failed: {reason}", flush=True)
        report.peers[peer.title] = f"failed: {reason.splitlines()[0] if reason else '?'}"

    def peer(self, peer: Peer, upstream_url: str, report: Report) -> None:
        """A peer's legs, in its own venv; skipped (with how to create the venv) when it is not there."""
        root = self.settings.peers_dir
        installed = peers.version(peer, root)
        if installed is None:
            report.peers[peer.title] = peers.missing(peer, root)
            print(f"  {peer.key}   {peer.title}: {report.peers[peer.title]}", flush=True)
            return
        report.peers[peer.title] = installed
        port = self.settings.ports[peer.name]
        state = Path(tempfile.mkdtemp(prefix=f"{peer.name}-", dir=self.logs))
        command = peers.command(peer, port, upstream_url, state, root)
        with started(
            peer.name, command, port, self.logs, cpu=self.server_cpu, timeout=peer.start_timeout
        ) as server:
            extra = peers.prepare(peer, port, upstream_url, state, root)
            url = f"http://127.0.0.1:{port}/mcp"
            for suffix, era in ERAS:
                key, title = f"{peer.key}{suffix}", f"{peer.title} {era}"
                if era not in peer.eras:
                    print(f"  {key:<3} {title}: not measured: {peer.unsupported}", flush=True)
                    continue
                request = mcp_request(url, era, extra, tool=peer.tool, arguments=peer.arguments)
                connections = peer.max_connections
                if connections is not None and connections < self.settings.connections:
                    title += f" (c={connections})"
                leg = self.leg(key, title, request, server=server, connections=connections)
                report.legs.append(leg)
            report.rss_after_legs[peer.title] = server.rss_mib()
