"""Do connections fail while `host serve --workers N` reloads on SIGHUP? A new connection per request.

    .venv/bin/python bench/reload_resets.py                 # 5 reloads, 2 workers, 8 clients
    .venv/bin/python bench/reload_resets.py --reloads 10 --clients 16

With SO_REUSEPORT every worker has its own accept queue. A retiring worker closes its listening socket
after drain_delay; a connection the kernel had already queued on that socket (handshake done, not yet
accepted) is reset, unless the kernel migrates it to another listener of the group
(``net.ipv4.tcp_migrate_req = 1``, Linux 5.14+). Keep-alive clients (tests/test_reload.py) rarely open a
connection at that instant; this opens one per request, to count the failures per reload. Prints the
calls made, the failures by kind, and the kernel's tcp_migrate_req. The host and the fake upstream are
started here and stopped by their PIDs.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def load(url: str, clients: int, stop: asyncio.Event, outcomes: collections.Counter[str]) -> None:
    import aiohttp

    body = b'{"customer_id": "c-1"}'
    headers = {"Content-Type": "application/json"}

    async def client() -> None:
        connector = aiohttp.TCPConnector(force_close=True)  # a new connection for every request
        async with aiohttp.ClientSession(connector=connector) as session:
            for _ in range(1_000_000):  # bounded; stopped by the event long before
                if stop.is_set():
                    return
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        outcomes[str(response.status)] += 1
                except (aiohttp.ClientError, OSError) as exc:
                    outcomes[type(exc).__name__] += 1

    await asyncio.gather(*(client() for _ in range(clients)))


async def measure(args: argparse.Namespace, folder: Path) -> collections.Counter[str]:
    upstream_port, rest, mcp = free_port(), free_port(), free_port()
    upstream = subprocess.Popen(  # noqa: ASYNC220 (started once, before the load)
        [sys.executable, str(ROOT / "bench" / "fake_upstream.py"), "--port", str(upstream_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    config = folder / "host.toml"
    config.write_text(
        f'[server]\nhost = "127.0.0.1"\nrest_port = {rest}\nmcp_port = {mcp}\n'
        f"drain_delay = {args.drain_delay}\nshutdown_grace = 5\n[consumes.tratta-customer-sessions]\n"
        f'base_uri = "http://127.0.0.1:{upstream_port}/api/v1"\n[logging]\nlevel = "WARNING"\n'
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TRATTA_", "HOST_"))}
    environment["TRATTA_API_KEY"] = "bench"
    log = (folder / "host.log").open("wb")
    host = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", "host", "serve", "--config", str(config), "--workers", str(args.workers)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=environment,
        cwd=folder,
    )
    outcomes: collections.Counter[str] = collections.Counter()
    try:
        wait_for(lambda: listening(upstream_port) and listening(rest), 60, "the host")
        stop = asyncio.Event()
        running = asyncio.create_task(
            load(f"http://127.0.0.1:{rest}/v1/customer-sessions", args.clients, stop, outcomes)
        )
        await asyncio.sleep(1)
        host_log = folder / "host.log"
        for number in range(1, args.reloads + 1):
            host.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 60
            while host_log.read_text().count("reloaded;") < number and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            await asyncio.sleep(args.drain_delay + 1.5)  # the old workers drain and close their sockets
        stop.set()
        await running
    finally:
        for process in (host, upstream):
            if process.poll() is None:
                process.terminate()
                process.wait(30)
        log.close()
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reloads", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--drain-delay", type=float, default=0.5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-reload-") as folder:
        outcomes = asyncio.run(measure(args, Path(folder)))
    migrate = Path("/proc/sys/net/ipv4/tcp_migrate_req")
    setting = migrate.read_text().strip() if migrate.exists() else "absent"
    total = sum(outcomes.values())
    failed = total - outcomes.get("201", 0)
    print(f"{args.reloads} reloads, {args.workers} workers, {args.clients} clients, a connection per request")
    print(f"net.ipv4.tcp_migrate_req = {setting}")
    print(f"calls: {total}, failed: {failed} ({failed / max(total, 1):.4%}), by outcome: {dict(outcomes)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
