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


class Supervisor:
    """The worker pool: start, restart with backoff, forward a stop signal, collect exit codes."""

    def __init__(self, workers: int, worker_args: Sequence[str], environ: Mapping[str, str]) -> None:
        self.workers, self.worker_args, self.environ = workers, list(worker_args), environ
        self.stopping = False
        self.pool: dict[int, Worker] = {}
        self.pending_restart: dict[int, float] = {}  # worker number -> when to start it again
        # Input-required MCP results carry encrypted state that any worker must be able to open again, and
        # metrics from every worker are gathered from one directory, so any worker's /metrics shows them all.
        self.own_metrics_dir = METRICS_ENV not in environ
        self.shared = {
            STATE_KEYS_ENV: environ.get(STATE_KEYS_ENV) or secrets.token_urlsafe(48),
            METRICS_ENV: environ.get(METRICS_ENV) or tempfile.mkdtemp(prefix="host-metrics-"),
        }

    def stop(self, signum: int, frame: object) -> None:
        if self.stopping:
            return
        self.stopping = True
        log.info("supervisor: %s received; draining %d worker(s)", signal.Signals(signum).name, self.workers)
        for worker in self.pool.values():
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)

    def spawn(self, number: int, delay: float = RESTART_DELAY_MIN) -> None:
        env = {**self.environ, **self.shared, WORKER_ENV: str(number)}
        process = subprocess.Popen([sys.executable, "-m", "host", *self.worker_args], env=env)
        log.info("supervisor: worker %d started (pid %d)", number, process.pid)
        self.pool[number] = Worker(number, process, delay=delay)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        for number in range(1, self.workers + 1):
            self.spawn(number)
        while not (self.stopping and self.all_exited()):
            if not self.stopping:
                self.schedule_restarts()
                self.restart_due()
            time.sleep(0.1)
        if self.own_metrics_dir:
            shutil.rmtree(self.shared[METRICS_ENV], ignore_errors=True)
        return self.outcome()

    def all_exited(self) -> bool:
        return all(worker.process.poll() is not None for worker in self.pool.values())

    def schedule_restarts(self) -> None:
        for number, worker in self.pool.items():
            code = worker.process.poll()
            if code is None or number in self.pending_restart:
                continue
            lived = time.monotonic() - worker.started
            # A worker that dies young is restarted with a growing delay, so a crash loop does not spin.
            worker.delay = RESTART_DELAY_MIN if lived > 30 else min(worker.delay * 2, RESTART_DELAY_MAX)
            log.error(
                "supervisor: worker %d (pid %d) exited with %s; restarting in %.1f s",
                number,
                worker.process.pid,
                code,
                worker.delay,
            )
            self.pending_restart[number] = time.monotonic() + worker.delay

    def restart_due(self) -> None:
        for number, when in list(self.pending_restart.items()):
            if time.monotonic() >= when:
                del self.pending_restart[number]
                self.spawn(number, delay=self.pool[number].delay)

    def outcome(self) -> int:
        # A worker stopped by our SIGTERM before it could install its own handler had nothing in flight.
        codes = {number: worker.process.returncode for number, worker in self.pool.items()}
        failed = {number: code for number, code in codes.items() if code not in (0, -signal.SIGTERM)}
        if failed:
            log.error("supervisor: workers exited with errors: %s", failed)
            return 1
        log.info("supervisor: all workers stopped")
        return 0


def supervise(workers: int, worker_args: Sequence[str], environ: Mapping[str, str]) -> int:
    """Run ``workers`` worker processes until SIGTERM/SIGINT; exit 0 when they all drained cleanly."""
    return Supervisor(workers, worker_args, environ).run()


def worker_id() -> str | None:
    return os.environ.get(WORKER_ENV)
