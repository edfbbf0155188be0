"""Shutdown on SIGTERM within one budget: ``[server] drain_delay + shutdown_grace``.

aiohttp's own shutdown waits ``shutdown_timeout`` for a request in flight, then as long again
after asking it to stop, so a host given a grace of 25 s could take 50. Here the host does the
waiting itself, against a deadline fixed when the signal arrives: stop accepting, close idle
connections, let busy ones finish their answer until the deadline, and only then let aiohttp
cancel what is left (``FORCED_STOP`` per phase). The process is gone by the deadline plus
``SHUTDOWN_MARGIN``, which is what a platform's kill timeout must leave room for;
``host check --config`` warns when a Kubernetes manifest next to the config does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from host.config import HostConfig
from host.connections import GuardedSite

log = logging.getLogger("host")

# aiohttp's wait per shutdown phase (it has two) once the budget is spent: handlers are cancelled after it.
FORCED_STOP = 0.1
# Seconds past drain_delay + shutdown_grace the process may take to cancel, close and exit.
SHUTDOWN_MARGIN = 2.0
# Seconds between closing the listeners and closing idle connections (bench/reload_resets.py).
ACCEPTED_GRACE = 0.05
# Kubernetes' default terminationGracePeriodSeconds.
KUBERNETES_DEFAULT_GRACE = 30
_WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


async def finish_in_flight(sites: Sequence[GuardedSite], deadline: float) -> None:
    """Stop accepting, close idle connections, and wait until ``deadline`` (loop time) for busy ones."""
    for site in sites:
        await site.stop()
    # A connection accepted just before the listener closed may hold a request the loop has not read yet:
    # let the loop read what has arrived, so that request counts as busy and is answered, not cut off.
    await asyncio.sleep(ACCEPTED_GRACE)
    for site in sites:
        site.guard.close_idle()
        site.server.pre_shutdown()  # a busy connection closes once its answer is sent
    loop = asyncio.get_running_loop()
    log.info(
        "shutting down: no new connections; waiting up to %.3g s for requests in flight",
        max(0.0, deadline - loop.time()),
    )
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(
            asyncio.gather(*(site.guard.empty.wait() for site in sites)), max(0.0, deadline - loop.time())
        )
    busy = sum(len(site.guard.open) for site in sites)
    if busy:
        log.warning(
            "shutdown budget (drain_delay + shutdown_grace) spent: cancelling %d connection(s) "
            "still in flight",
            busy,
        )


def budget(config: HostConfig) -> float:
    """Seconds from SIGTERM to exit, at most."""
    return config.server.drain_delay + config.server.shutdown_grace + SHUTDOWN_MARGIN


def manifest_warnings(config: HostConfig) -> list[str]:
    """The host's Kubernetes workloads beside host.toml (or in its deploy/) that kill it before its budget."""
    if config.path is None:
        return []
    folder = config.path.parent
    files = sorted({*folder.glob("*.y*ml"), *(folder / "deploy").glob("*.y*ml")})
    server, needed = config.server, budget(config)
    warnings = []
    for file, name, grace in _termination_graces(files):
        if grace < needed:
            warnings.append(
                f"{file}: {name} has terminationGracePeriodSeconds {grace:g}, shorter than this host's "
                f"shutdown: [server] drain_delay {server.drain_delay:g} + shutdown_grace "
                f"{server.shutdown_grace:g} + {SHUTDOWN_MARGIN:g} s to exit = {needed:g} s; raise it to "
                f"{needed:g} or lower shutdown_grace, or a long call is killed mid-way"
            )
    return warnings


def _termination_graces(files: Sequence[Path]) -> list[tuple[Path, str, float]]:
    found = []
    for file in files:
        try:
            documents = list(yaml.safe_load_all(file.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue  # not a manifest: capability files and others live here too
        for document in documents:
            pod = _pod_spec(document)
            if pod is not None and _runs_the_host(pod):
                name = f"{document['kind']} {document.get('metadata', {}).get('name', '?')}"
                grace = pod.get("terminationGracePeriodSeconds", KUBERNETES_DEFAULT_GRACE)
                if isinstance(grace, int | float):
                    found.append((file, name, float(grace)))
    return found


def _runs_the_host(pod: dict[str, Any]) -> bool:
    """A container of the pod runs ``host serve`` (the image's default, or named): not a Redis beside it."""
    for container in pod.get("containers") or ():
        if not isinstance(container, dict):
            continue
        words = [str(word) for word in (container.get("command") or []) + (container.get("args") or [])]
        if "serve" in words or "capability-host" in str(container.get("image", "")).rsplit("/", 1)[-1]:
            return True
    return False


def _pod_spec(document: Any) -> dict[str, Any] | None:
    if not isinstance(document, dict):
        return None
    spec = document.get("spec")
    if not isinstance(spec, dict):
        return None
    if document.get("kind") == "Pod":
        return spec
    if document.get("kind") in _WORKLOADS:
        template = spec.get("template")
        pod = template.get("spec") if isinstance(template, dict) else None
        return pod if isinstance(pod, dict) else None
    return None
