"""``host serve --workers N``: N processes sharing both ports, under a small supervisor.

Each worker is a full ``host serve`` process that binds the REST and MCP ports
with ``SO_REUSEPORT``, so the kernel spreads new connections across workers.
MCP is stateless, so any worker answers any request. The supervisor binds
nothing itself: it checks the configuration once (so a bad config fails fast
instead of crash-looping), starts the workers, restarts one that dies, and on
SIGTERM or SIGINT forwards the signal and waits for every worker to drain.

Everything a worker keeps in memory (rate limits, circuit breakers, metrics)
is per worker.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

log = logging.getLogger("host.supervisor")

WORKER_ENV = "HOST_WORKER_ID"
STATE_KEYS_ENV = "HOST_REQUEST_STATE_KEYS"
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"
RESTART_DELAY_MIN, RESTART_DELAY_MAX = 0.5, 10.0


@dataclass
class Worker:
    number: int
    process: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)
    delay: float = RESTART_DELAY_MIN


def supervise(workers: int, worker_args: Sequence[str], environ: Mapping[str, str]) -> int:
    """Run ``workers`` worker processes until SIGTERM/SIGINT; exit 0 when they all drained cleanly."""
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            log.info("supervisor: %s received; draining %d worker(s)", signal.Signals(signum).name, workers)
            for worker in pool.values():
                if worker.process.poll() is None:
                    worker.process.send_signal(signal.SIGTERM)

    # Input-required MCP results carry encrypted state that any worker must be able to open again, and
    # metrics from every worker are gathered from one directory, so any worker's /metrics shows them all.
    own_metrics_dir = METRICS_ENV not in environ
    metrics_dir = environ.get(METRICS_ENV) or tempfile.mkdtemp(prefix="host-metrics-")
    shared = {
        STATE_KEYS_ENV: environ.get(STATE_KEYS_ENV) or secrets.token_urlsafe(48),
        METRICS_ENV: metrics_dir,
    }

    def spawn(number: int) -> Worker:
        env = {**environ, **shared, WORKER_ENV: str(number)}
        process = subprocess.Popen([sys.executable, "-m", "host", *worker_args], env=env)
        log.info("supervisor: worker %d started (pid %d)", number, process.pid)
        return Worker(number, process)

    pool: dict[int, Worker] = {}
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for number in range(1, workers + 1):
        pool[number] = spawn(number)
    codes: dict[int, int] = {}
    pending_restart: dict[int, float] = {}
    while True:
        for number, worker in list(pool.items()):
            code = worker.process.poll()
            if code is None or number in pending_restart:
                continue
            if stopping:
                codes[number] = code
                continue
            lived = time.monotonic() - worker.started
            # A worker that dies young is restarted with a growing delay, so a crash loop does not spin.
            delay = RESTART_DELAY_MIN if lived > 30 else min(worker.delay * 2, RESTART_DELAY_MAX)
            log.error(
                "supervisor: worker %d (pid %d) exited with %s; restarting in %.1f s",
                number,
                worker.process.pid,
                code,
                delay,
            )
            pending_restart[number] = time.monotonic() + delay
            worker.delay = delay
        for number, when in list(pending_restart.items()):
            if stopping:
                codes[number] = pool[number].process.returncode or 0
                del pending_restart[number]
            elif time.monotonic() >= when:
                delay = pool[number].delay
                pool[number] = spawn(number)
                pool[number].delay = delay
                del pending_restart[number]
        if stopping and all(worker.process.poll() is not None for worker in pool.values()):
            break
        time.sleep(0.1)
    if own_metrics_dir:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    # A worker stopped by our SIGTERM before it could install its own handler had nothing in flight.
    failed = {
        n: c for n, c in ((n, w.process.returncode) for n, w in pool.items()) if c not in (0, -signal.SIGTERM)
    }
    if failed:
        log.error("supervisor: workers exited with errors: %s", failed)
        return 1
    log.info("supervisor: all workers stopped")
    return 0


def worker_id() -> str | None:
    return os.environ.get(WORKER_ENV)
