"""Reload without loss, and no orphans: the pipes between the ``--workers`` supervisor and its workers.

Two pipes tie a worker to its supervisor:

- the **lifeline**: one pipe whose write end only the supervisor holds; every worker watches the read
  end. When the supervisor dies, for any reason including SIGKILL, the kernel closes the write end, the
  workers read end-of-file and drain as on SIGTERM. A pipe rather than Linux's ``PR_SET_PDEATHSIG``:
  it works on every POSIX system, it has no race (a worker started after its supervisor died reads
  end-of-file at once, where a parent-death signal set too late never fires), and it fires on the death
  of the supervisor *process*, where a parent-death signal fires when the spawning *thread* exits;
- the **ready pipe**, one per worker: the worker writes one byte once both ports listen, so a reload
  drains the old workers only after the new ones serve.

``SIGHUP`` to the supervisor reloads: the new host.toml and plugins are checked in a fresh process
(``python -m host.reload <serve arguments>``; a fresh process, so a newly pip-installed plugin is
discovered and no module of the old one lingers), then new workers start, and only once all of them
listen are the old ones drained. A bad configuration, or a new worker that fails to start, is refused
and logged; the old workers keep serving. A single ``host serve`` process cannot swap its apps and
refuses ``SIGHUP`` with a warning; it never dies of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence

log = logging.getLogger("host.supervisor")

LIFELINE_ENV = "HOST_SUPERVISOR_FD"  # the read end of the lifeline, in a worker
READY_ENV = "HOST_READY_FD"  # the write end of this worker's ready pipe
CHECK_TIMEOUT = 60.0  # the new configuration's check (plugins load, capability files parse)
READY_TIMEOUT = 60.0  # new workers listening
_CHECK_OUTPUT_LIMIT = 4000  # characters of the check's error kept for the log


def check_configuration(serve_args: Sequence[str], environ: Mapping[str, str]) -> str | None:
    """Build the host as ``host serve <serve_args>`` would, in a fresh process; the problem, or ``None``."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "host.reload", *serve_args],
            env=dict(environ),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=CHECK_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"the check did not finish within {CHECK_TIMEOUT:g} s"
    if done.returncode == 0:
        return None
    output = done.stderr.decode(errors="replace").strip() or f"exit code {done.returncode}"
    return output[-_CHECK_OUTPUT_LIMIT:]


def wait_ready(ready: Mapping[int, int], alive: Callable[[], bool], timeout: float = READY_TIMEOUT) -> bool:
    """Wait until every ready pipe (worker number -> read end) has its byte; ``False`` when one closes
    without it (the worker died), ``alive()`` turns false, or ``timeout`` passes. Closes every read end."""
    waiting = dict(ready)
    deadline = time.monotonic() + timeout
    try:
        while waiting and alive() and time.monotonic() < deadline:
            readable, _, _ = select.select(list(waiting.values()), [], [], 0.1)
            for fd in readable:
                if not os.read(fd, 1):
                    return False
                number = next(number for number, value in waiting.items() if value == fd)
                os.close(waiting.pop(number))
        return not waiting
    finally:
        for fd in waiting.values():
            os.close(fd)


def announce_ready() -> None:
    """In a worker: tell the supervisor both ports listen (nothing when not started by a supervisor)."""
    fd = _inherited_fd(READY_ENV)
    if fd is None:
        return
    with contextlib.suppress(OSError):  # the supervisor stopped waiting: nothing to tell
        os.write(fd, b"1")
    with contextlib.suppress(OSError):
        os.close(fd)


def watch(loop: asyncio.AbstractEventLoop, stop: Callable[[], None]) -> None:
    """In ``host serve``: drain when the supervisor dies; refuse ``SIGHUP`` unless a supervisor reloads."""
    fd = _inherited_fd(LIFELINE_ENV)
    if fd is None:
        loop.add_signal_handler(signal.SIGHUP, _refuse_hangup)
        return
    # A worker: the supervisor gets SIGHUP and replaces this worker; a SIGHUP sent here (a closed terminal
    # signals the whole group) changes nothing.
    loop.add_signal_handler(signal.SIGHUP, lambda: None)

    def lifeline() -> None:
        try:
            alive = bool(os.read(fd, 1))
        except OSError:
            alive = False
        if not alive:
            loop.remove_reader(fd)
            log.warning("worker: the supervisor is gone; draining and exiting")
            stop()

    loop.add_reader(fd, lifeline)


def _refuse_hangup() -> None:
    log.warning(
        "SIGHUP ignored: a single host serve process cannot reload; it keeps serving its current "
        "configuration. Restart it, or run host serve --workers 2 or more, whose supervisor reloads on SIGHUP"
    )


def _inherited_fd(name: str) -> int | None:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() else None


def main(argv: Sequence[str]) -> int:
    """``python -m host.reload serve ...``: build the host as a worker would, bind nothing; 2 on a problem."""
    from host.app import build
    from host.cli import ADDRESS_KEYS, _parser
    from host.config import load_config, override_server
    from host.errors import StartupError

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    args = _parser().parse_args(argv)
    try:
        config = override_server(load_config(args.config), {key: getattr(args, key) for key in ADDRESS_KEYS})
        build(config, os.environ, strict=args.strict)
    except StartupError as exc:
        print(f"host: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
