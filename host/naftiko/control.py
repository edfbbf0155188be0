"""A file's ``type: control`` adapter, mapped onto the host's own operator endpoints.

The reference serves health, metrics, traces and management on a control port of its own; this host has
one set of operator endpoints for every capability, on the REST port. Each feature the file declares is
reported as ``mapped`` (the host's endpoint that does it), ``ignored`` (meaningless here, said why) or
``not supported`` (a warning: the file asks for something this host does not do).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from host.config import HostConfig
from host.naftiko.context import Context

MAPPED, IGNORED, UNSUPPORTED = "mapped", "ignored", "not supported"
Report = Callable[[str, str, str], None]  # (feature, status, detail)
_PROBES = "/healthz (live) and /readyz (ready) on the REST port"


def compile_control(ctx: Context, adapter: dict[str, Any], path: str) -> None:
    """Record what becomes of each control feature in ``ctx.out.control``; warn for what is not served."""
    management = _mapping(adapter.get("management"))
    observability = _mapping(adapter.get("observability"))

    def report(feature: str, status: str, detail: str) -> None:
        ctx.out.control.append((feature, status, detail))
        if status == UNSUPPORTED:  # the file asks for something not served: a deviation, as --strict sees it
            ctx.warn(f"{path}.{feature}", f"not supported by this host: {detail}")

    if management.get("health", True) is not False:
        report("management.health", MAPPED, _PROBES)
    else:
        report("management.health", IGNORED, f"the host's probes serve every capability ({_PROBES})")
    _management(management, report)
    _observability(observability, report)
    if adapter.get("authentication") is not None:
        report(
            "authentication",
            UNSUPPORTED,
            "the probes are public and /metrics follows the host's [[auth.keys]]; a file cannot guard them",
        )


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _management(management: dict[str, Any], report: Report) -> None:
    if management.get("info"):
        report(
            "management.info", UNSUPPORTED, "no /status or /config; `host check --json` says what is loaded"
        )
    if management.get("reload"):
        report("management.reload", UNSUPPORTED, "no live reload; restart the host (SIGTERM drains calls)")
    if management.get("validate"):
        report("management.validate", MAPPED, "`host check FILE` (a command, not an endpoint)")
    if management.get("logs"):
        report("management.logs", UNSUPPORTED, "no log endpoints; the log level is set at start-up")
    if management.get("scripting") is not None:
        report("management.scripting", UNSUPPORTED, "scripting management: this host runs no scripts")


def _observability(observability: dict[str, Any], report: Report) -> None:
    if observability.get("enabled", True) is False:
        report("observability", IGNORED, "/metrics is the host's, for every capability; it stays on")
        return
    report("observability.metrics", MAPPED, "/metrics (Prometheus) on the REST port")
    if "observability" in HostConfig.model_fields:  # the host's OpenTelemetry tracing
        report("observability.traces", MAPPED, "OpenTelemetry spans, as [observability] in host.toml sets")
    elif observability.get("traces") is not None:
        report("observability.traces", UNSUPPORTED, "this host exports no traces and serves no /traces")
