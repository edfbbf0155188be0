"""Processes and CPU accounting for bench/run.py: start a server pinned to a CPU and stop it by PID, read
its RSS and CPU time from /proc, and check that a leg answers before it is measured."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from loadgen import Request, pin_to

ROOT = Path(__file__).resolve().parent.parent


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
    timeout: float = 30.0,
) -> Iterator[Process]:
    """Start a server pinned to ``cpu``, wait up to ``timeout`` s until ``port`` listens, stop it by PID
    on the way out."""
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
        deadline = time.monotonic() + timeout
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
