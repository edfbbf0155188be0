"""The cost of `[state] backend = "redis"` per request, against the in-memory limiter, in one run.

    .venv/bin/python bench/state_limiter.py            # about 1.5 minutes
    .venv/bin/python bench/state_limiter.py --quick    # about 30 s
    .venv/bin/python bench/state_limiter.py --no-host  # the limiter alone

It starts its own redis-server on a free loopback port (no persistence) and stops it by its PID.

1. **The limiter alone**, in this process: ``acquire()`` of the in-memory token bucket against the Redis
   sliding window (one Lua script per call), and the shared circuit's admission (``share_circuits``),
   one call at a time and 32 at once. Wall µs per call and this process's CPU µs per call.
2. **The host's REST leg** with each backend (memory, redis, redis + share_circuits): a `host serve`
   process against bench/fake_upstream.py, ``rate_limit`` high enough never to refuse, so every call pays
   for the count. p50 at one connection, and requests a second at 16 connections, from an aiohttp client.
   The legs alternate (memory, redis, ... twice) so a noisy neighbour hits each alike; the best of two counts.

Printed as a table with each cost as a ratio of the in-memory one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from host.resilience import CircuitBreaker, TokenBucket  # noqa: E402
from host.state import SharedCircuit, SharedRateLimit, SharedStore  # noqa: E402

HUGE = 10**9  # a rate limit never reached: every call is counted and granted
HOST_KEY = "bench-state-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[bytes], name: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    output = log.read_text(errors="replace")[-2000:] if log else ""
    raise SystemExit(f"{name} did not listen on {port}\n{output}")


@contextmanager
def running(
    name: str, command: list[str], port: int, logs: Path, env: dict[str, str] | None = None
) -> Iterator[None]:
    """A server process, stopped by its PID on the way out."""
    log = logs / f"{name}.log"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TRATTA_", "HOST_"))}
    environment.update(env or {})
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=environment, cwd=logs)
    try:
        wait_listening(port, process, name, log)
        yield
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


# --- 1. the limiter alone -----------------------------------------------------------------------------


async def cost(call: Callable[[], Awaitable[object]], calls: int, concurrency: int) -> tuple[float, float]:
    """Wall and CPU µs per call, ``calls`` calls made ``concurrency`` at a time."""
    each = calls // concurrency

    async def worker() -> None:
        for _ in range(each):
            await call()

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    done = each * concurrency
    return (time.perf_counter() - wall) / done * 1e6, (time.process_time() - cpu) / done * 1e6


async def limiter_costs(url: str, calls: int) -> list[tuple[str, int, float, float]]:
    store = SharedStore(url, 1, share_circuits=True)
    bucket = TokenBucket(HUGE, 60.0)
    shared = SharedRateLimit(store, f"bench-{os.getpid()}", HUGE, 60.0, TokenBucket(HUGE, 60.0))
    local_circuit = CircuitBreaker(5, 30.0)
    shared_circuit = SharedCircuit(store, f"bench-{os.getpid()}", CircuitBreaker(5, 30.0))

    async def local_admission() -> None:
        await local_circuit.enter()
        await local_circuit.settle(ok=True)

    async def shared_admission() -> None:
        await shared_circuit.enter()
        await shared_circuit.settle(ok=True)

    variants: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("rate limit, memory (token bucket)", bucket.acquire),
        ("rate limit, redis (sliding window)", shared.acquire),
        ("circuit, memory", local_admission),
        ("circuit, redis (share_circuits)", shared_admission),
    ]
    rows = []
    try:
        await shared.acquire()  # connect and load the scripts before timing
        await shared_admission()
        for concurrency in (1, 32):
            for name, call in variants:
                wall, cpu = await cost(call, calls, concurrency)
                rows.append((name, concurrency, wall, cpu))
        if store.reachable is not True:
            raise SystemExit("the Redis store did not answer: the figures would be the fallback's")
    finally:
        await store.client.delete(f"host:rate:bench-{os.getpid()}")
        await store.close()
    return rows


# --- 2. the host's REST leg -----------------------------------------------------------------------------


async def measure_host(url: str, seconds: float) -> tuple[float, float]:
    """p50 ms at one connection, and requests a second at 16."""
    import aiohttp

    body = json.dumps({"customer_id": "c-1"}).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {HOST_KEY}"}
    connector = aiohttp.TCPConnector(limit=16)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> float:
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 201:
                    raise SystemExit(f"the host answered {response.status}: {await response.text()}")
            return time.perf_counter() - started

        for _ in range(200):  # warm-up
            await one()
        latencies: list[float] = []
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            latencies.append(await one())
        p50 = statistics.median(latencies) * 1000

        count = 0
        end = time.perf_counter() + seconds

        async def loop() -> None:
            nonlocal count
            while time.perf_counter() < end:
                await one()
                count += 1

        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(16)))
        return p50, count / (time.perf_counter() - started)


def host_legs(redis_url: str, logs: Path, seconds: float, rounds: int) -> dict[str, tuple[float, float]]:
    upstream_port = free_port()
    upstream = [sys.executable, str(ROOT / "bench" / "fake_upstream.py"), "--port", str(upstream_port)]
    states = {
        "memory": "",
        "redis": '[state]\nbackend = "redis"\n',
        "redis + share_circuits": '[state]\nbackend = "redis"\nshare_circuits = true\n',
    }
    best: dict[str, tuple[float, float]] = {}
    with running("fake-upstream", upstream, upstream_port, logs):
        for _ in range(rounds):
            for name, state in states.items():
                rest, mcp = free_port(), free_port()
                config = logs / "host.toml"
                config.write_text(
                    f'[server]\nhost = "127.0.0.1"\nrest_port = {rest}\nmcp_port = {mcp}\n'
                    '[[auth.keys]]\nname = "bench"\nenv = "HOST_KEY_BENCH"\n'
                    f"[consumes.tratta-customer-sessions]\n"
                    f'base_uri = "http://127.0.0.1:{upstream_port}/api/v1"\nrate_limit = "{HUGE}/min"\n'
                    f'[logging]\nlevel = "WARNING"\n{state}'
                )
                env = {"TRATTA_API_KEY": "bench", "HOST_KEY_BENCH": HOST_KEY, "HOST_STATE_URL": redis_url}
                command = [sys.executable, "-m", "host", "serve", "--config", str(config)]
                with running(f"host-{name.split()[0]}", command, rest, logs, env):
                    p50, rps = asyncio.run(
                        measure_host(f"http://127.0.0.1:{rest}/v1/customer-sessions", seconds)
                    )
                previous = best.get(name)
                best[name] = (min(p50, previous[0]), max(rps, previous[1])) if previous else (p50, rps)
    return best


# --- report -------------------------------------------------------------------------------------------


def render(limiter: list[tuple[str, int, float, float]], host: dict[str, tuple[float, float]]) -> str:
    lines = ["## The limiter alone (this process, against redis-server on loopback)", ""]
    lines += [
        "| what | at once | wall µs/call | CPU µs/call | wall x memory | CPU x memory |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    memory = {
        (name.split(",")[0], concurrency): (wall, cpu)
        for name, concurrency, wall, cpu in limiter
        if "memory" in name
    }
    for name, concurrency, wall, cpu in limiter:
        base_wall, base_cpu = memory[(name.split(",")[0], concurrency)]
        ratios = f"{wall / base_wall:,.0f}x | {cpu / base_cpu:,.0f}x"
        lines.append(f"| {name} | {concurrency} | {wall:,.1f} | {cpu:,.1f} | {ratios} |")
    if host:
        base_p50, base_rps = host["memory"]
        lines += ["", "## The host's REST leg (rate_limit on, never reached)", ""]
        lines += [
            "| backend | p50 ms (1 conn) | Δ p50 ms | req/s (16 conns) | req/s x memory |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, (p50, rps) in host.items():
            lines.append(
                f"| {name} | {p50:.3f} | {p50 - base_p50:+.3f} | {rps:,.0f} | {rps / base_rps:.2f}x |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls, shorter host legs")
    parser.add_argument("--no-host", action="store_true", help="measure the limiter alone")
    args = parser.parse_args()
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install -y redis-server)")
    calls, seconds, rounds = (4_000, 2.0, 1) if args.quick else (20_000, 4.0, 2)
    with tempfile.TemporaryDirectory(prefix="bench-state-") as folder:
        logs = Path(folder)
        port = free_port()
        redis = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with running("redis", redis, port, logs):
            url = f"redis://127.0.0.1:{port}/0"
            limiter = asyncio.run(limiter_costs(url, calls))
            host = {} if args.no_host else host_legs(url, logs, seconds, rounds)
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.split()[2]
    print(f"Python {sys.version.split()[0]}, redis-server {version}, {os.cpu_count()} CPUs\n")
    print(render(limiter, host))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
