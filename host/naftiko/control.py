"""A file's ``type: control`` adapter, mapped onto the host's own operator endpoints.

The reference serves health, metrics, traces and management on a control port of its own; this host has
one set of operator endpoints for every capability, on the REST port. Each feature the file declares is
reported as ``mapped`` (the host's endpoint that does it), ``ignored`` (meaningless here, said why) or
``not supported`` (a warning: the file asks for something this host does not do).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from host.naftiko.context import Context
from host.tracing import FileTraces

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
    _observability(ctx, observability, path, report)
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


_TRACED = "this file's REST resources, MCP tools and upstream calls"
_TRACES = (
    f"OpenTelemetry spans of {_TRACED}, exported over OTLP/HTTP when host.toml sets "
    "[observability] enabled = true (endpoint: OTEL_EXPORTER_OTLP_ENDPOINT)"
)


def _observability(ctx: Context, observability: dict[str, Any], path: str, report: Report) -> None:
    if observability.get("enabled", True) is False:
        report("observability", IGNORED, "/metrics is the host's, for every capability; it stays on")
        report("observability.traces", MAPPED, f"off for {_TRACED}: never traced, whatever a caller sends")
        ctx.out.traces = FileTraces(enabled=False)
        return
    report("observability.metrics", MAPPED, "/metrics (Prometheus) on the REST port")
    report("observability.traces", MAPPED, _TRACES)
    traces = _mapping(observability.get("traces"))
    sampling = _sampling(ctx, traces.get("sampling"), f"{path}.observability.traces.sampling")
    propagation = _propagation(ctx, traces.get("propagation"), f"{path}.observability.traces.propagation")
    if sampling is not None:
        report(
            "observability.traces.sampling",
            MAPPED,
            f"{sampling:g} of the traces started by this file's REST resources, MCP tools and prompts "
            "(a caller's sampled traceparent is followed)",
        )
    if propagation is not None:
        report(
            "observability.traces.propagation",
            MAPPED,
            f"{_PROPAGATION[propagation]} on this file's upstream calls (and read on inbound requests)",
        )
    ctx.out.traces = FileTraces(sampling=sampling, propagation=propagation)
    if traces.get("local") is not None:
        report(
            "observability.traces.local",
            UNSUPPORTED,
            "no /traces endpoint: spans go to the OTLP collector (OTEL_EXPORTER_OTLP_ENDPOINT)",
        )
    if _mapping(observability.get("exporters")).get("otlp") is not None:
        report(
            "observability.exporters.otlp",
            IGNORED,
            "spans go where OTEL_EXPORTER_OTLP_ENDPOINT says: a capability file does not choose where "
            "the host's traces are sent",
        )


_PROPAGATION = {"w3c": "W3C traceparent", "b3": "B3 headers (X-B3-TraceId, ...)"}


def _sampling(ctx: Context, value: Any, path: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        ctx.warn(path, f"must be a ratio from 0 to 1, not {value!r}; the host's sampling applies")
        return None
    return float(value)


def _propagation(ctx: Context, value: Any, path: str) -> str | None:
    if value is None:
        return None
    if value not in _PROPAGATION:
        ctx.warn(path, f"must be w3c or b3, not {value!r}; the host's [observability] propagators apply")
        return None
    return str(value)
