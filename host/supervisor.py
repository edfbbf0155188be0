"""``host serve --workers N``: N processes sharing both ports, under a small supervisor.

Each worker is a full ``host serve`` process that binds the REST and MCP ports
with ``SO_REUSEPORT``, so the kernel spreads new connections across workers.
MCP is stateless, so any worker answers any request. The supervisor binds
nothing itself: it checks the configuration once (so a bad config fails fast
instead of crash-looping), starts the workers, restarts one that dies, and on
SIGTERM or SIGINT forwards the signal and waits for every worker to drain. SIGHUP
reloads: the new configuration is checked, new workers start, then the old ones
drain; workers exit when the supervisor dies (see :mod:`host.reload`).

Rate limits and circuit breakers are per worker, unless ``[state]`` keeps them
in a shared store (:mod:`host.state`); metrics are gathered from every worker.
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

from host.reload import LIFELINE_ENV, READY_ENV, check_configuration, wait_ready

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
    ready: int | None = None  # the read end of its ready pipe, until a reload waits on it


class Supervisor:
    """The worker pool: start, restart with backoff, forward a stop signal, collect exit codes."""

    def __init__(self, workers: int, worker_args: Sequence[str], environ: Mapping[str, str]) -> None:
        self.workers, self.worker_args, self.environ = workers, list(worker_args), environ
        self.stopping = False
        self.reload_asked = False
        self.pool: dict[int, Worker] = {}
        self.retiring: list[Worker] = []  # replaced by a reload, draining
        # The kernel closes the write end when this process dies, however it dies: workers then drain.
        self.lifeline_read, self.lifeline_write = os.pipe()
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
        for worker in [*self.pool.values(), *self.retiring]:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)

    def hangup(self, signum: int, frame: object) -> None:
        self.reload_asked = True  # done by the main loop, not inside the signal handler

    def spawn(self, number: int, delay: float = RESTART_DELAY_MIN) -> None:
        ready_read, ready_write = os.pipe()
        env = {
            **self.environ,
            **self.shared,
            WORKER_ENV: str(number),
            LIFELINE_ENV: str(self.lifeline_read),
            READY_ENV: str(ready_write),
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "host", *self.worker_args],
            env=env,
            pass_fds=(self.lifeline_read, ready_write),
        )
        os.close(ready_write)
        log.info("supervisor: worker %d started (pid %d)", number, process.pid)
        previous = self.pool.get(number)
        if previous is not None and previous.ready is not None:
            os.close(previous.ready)
        self.pool[number] = Worker(number, process, delay=delay, ready=ready_read)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        signal.signal(signal.SIGHUP, self.hangup)
        for number in range(1, self.workers + 1):
            self.spawn(number)
        while not (self.stopping and self.all_exited()):
            if not self.stopping:
                self.schedule_restarts()
                self.restart_due()
                if self.reload_asked:
                    self.reload_asked = False
                    self.reload()
            self.reap_retired()
            time.sleep(0.1)
        if self.own_metrics_dir:
            shutil.rmtree(self.shared[METRICS_ENV], ignore_errors=True)
        return self.outcome()

    def all_exited(self) -> bool:
        return all(worker.process.poll() is not None for worker in [*self.pool.values(), *self.retiring])

    def reload(self) -> None:
        """Check the new configuration, start a new set of workers, then drain the old ones once every
        new one listens; on any failure the old workers keep serving."""
        log.info("supervisor: SIGHUP received; checking the configuration and the installed plugins")
        problem = check_configuration(self.worker_args, self.environ)
        if problem:
            log.error("supervisor: reload refused, the current workers keep serving: %s", problem)
            return
        old, self.pool = self.pool, {}
        self.pending_restart.clear()
        for number in range(1, self.workers + 1):
            self.spawn(number)
        ready = {number: worker.ready for number, worker in self.pool.items() if worker.ready is not None}
        for worker in self.pool.values():
            worker.ready = None  # wait_ready closes them
        if not wait_ready(ready, lambda: not self.stopping):
            log.error(
                "supervisor: reload refused: a new worker did not start; the current workers keep serving"
            )
            self.retire(list(self.pool.values()))
            self.pool = old
            if self.stopping:  # SIGTERM came during the wait and signalled only the new workers
                self.retire(list(old.values()))
            return
        self.retire(list(old.values()))
        log.info("supervisor: reloaded; %d new worker(s) serving, the old ones draining", self.workers)

    def retire(self, workers: Sequence[Worker]) -> None:
        for worker in workers:
            if worker.ready is not None:
                os.close(worker.ready)
                worker.ready = None
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
            self.retiring.append(worker)

    def reap_retired(self) -> None:
        for worker in [worker for worker in self.retiring if worker.process.poll() is not None]:
            log.info(
                "supervisor: old worker (pid %d) exited with %s",
                worker.process.pid,
                worker.process.returncode,
            )
            self.retiring.remove(worker)

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
