"""What the tracer is built from: host.toml's ``[observability]``, the standard ``OTEL_*`` variables and
each capability file's own ``observability`` block. Every bad value is a start-up error that names where
it was set and how to fix it.

Precedence, as for ``HOST_LOAD_PLUGINS`` over ``[plugins] load``: an ``OTEL_*`` variable wins over
host.toml (a deployment overrides the file); a capability file's sampling applies to its own items only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from host.config import HostConfig
from host.errors import StartupError
from host.tracing import FILE_PROPAGATION, FileTraces

DEFAULT_ENDPOINT = "http://localhost:4318/v1/traces"  # the OTLP/HTTP default
DEFAULT_SERVICE = "capability-host"
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
ENV_PROPAGATORS = ("tracecontext", "baggage", "b3", "b3multi", "none")


@dataclass(frozen=True)
class Sampling:
    """A sampler as OTEL_TRACES_SAMPLER names it, with its ratio."""

    name: str
    ratio: float = 1.0


@dataclass(frozen=True)
class TraceSettings:
    service: str
    endpoint: str | None  # None: OTEL_TRACES_EXPORTER=none (spans made and propagated, not exported)
    sampling: Sampling
    propagators: tuple[str, ...]  # host-wide: what inbound requests are read with, upstream calls carry
    # Per item: "<METHOD> <route shape>", "tool:<name>", "prompt:<name>" -> its file's sampling.
    items: dict[str, Sampling] = field(default_factory=dict)
    # Per consumed namespace: the propagator its file asks for on outgoing calls.
    outbound: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def extract(self) -> tuple[str, ...]:
        """Inbound, every format the host or a file speaks is read."""
        names = [*self.propagators, *(name for names in self.outbound.values() for name in names)]
        return tuple(dict.fromkeys(name for name in names if name != "none"))


def disabled_by_environment(environ: Mapping[str, str]) -> bool:
    """OTEL_SDK_DISABLED=true turns tracing off whatever host.toml says (the SDK's own switch)."""
    return environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def resolve(config: HostConfig, environ: Mapping[str, str], files: Iterable[FileItems]) -> TraceSettings:
    """The settings, validated. Raises :class:`StartupError`."""
    observability = config.observability
    sampling = _env_sampling(environ) or Sampling("parentbased_traceidratio", observability.sampling)
    propagators = _env_propagators(environ) or observability.propagators
    items: dict[str, Sampling] = {}
    outbound: dict[str, tuple[str, ...]] = {}
    for file in files:
        traces = file.traces
        own = _file_sampling(traces)
        if own is not None:
            items.update(dict.fromkeys(file.items, own))
        if traces.propagation is not None:
            outbound.update(dict.fromkeys(file.namespaces, (FILE_PROPAGATION[traces.propagation],)))
    return TraceSettings(
        service=environ.get("OTEL_SERVICE_NAME", "").strip() or DEFAULT_SERVICE,
        endpoint=_endpoint(environ),
        sampling=sampling,
        propagators=tuple(propagators),
        items=items,
        outbound=outbound,
    )


@dataclass(frozen=True)
class FileItems:
    """A capability file's trace settings and what they apply to."""

    traces: FileTraces
    items: tuple[str, ...]  # sampler keys of its REST resources, tools and prompts
    namespaces: tuple[str, ...]  # the namespaces it consumes


def _file_sampling(traces: FileTraces) -> Sampling | None:
    if not traces.enabled:
        return Sampling("always_off")  # the file turned its observability off: never, even for a caller
    if traces.sampling is None:
        return None
    return Sampling("parentbased_traceidratio", traces.sampling)


def _env_sampling(environ: Mapping[str, str]) -> Sampling | None:
    name = environ.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    if not name:
        return None
    if name not in SAMPLERS:
        raise StartupError(
            f"environment variable OTEL_TRACES_SAMPLER: unknown sampler {name!r}; use one of "
            f"{', '.join(SAMPLERS)} (or unset it to use [observability] sampling)"
        )
    text = environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    if not text or not name.endswith("traceidratio"):
        return Sampling(name)
    try:
        ratio = float(text)
    except ValueError:
        ratio = -1.0
    if not 0 <= ratio <= 1:
        raise StartupError(
            f"environment variable OTEL_TRACES_SAMPLER_ARG: must be a ratio from 0 to 1 (got {text!r}), "
            f"e.g. OTEL_TRACES_SAMPLER_ARG=0.1"
        )
    return Sampling(name, ratio)


def _env_propagators(environ: Mapping[str, str]) -> tuple[str, ...] | None:
    text = environ.get("OTEL_PROPAGATORS", "").strip()
    if not text:
        return None
    names = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [name for name in names if name not in ENV_PROPAGATORS]
    if unknown:
        raise StartupError(
            f"environment variable OTEL_PROPAGATORS: unknown propagator {unknown[0]!r}; use a "
            f"comma-separated list of {', '.join(ENV_PROPAGATORS)} (e.g. OTEL_PROPAGATORS=tracecontext,b3)"
        )
    return names


def _endpoint(environ: Mapping[str, str]) -> str | None:
    exporter = environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    if exporter == "none":
        return None
    if exporter != "otlp":
        raise StartupError(
            f"environment variable OTEL_TRACES_EXPORTER: {exporter!r} is not available; use otlp "
            f"(OTLP over HTTP) or none"
        )
    for variable in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = environ.get(variable, "").strip()
        if protocol and protocol != "http/protobuf":
            raise StartupError(
                f"environment variable {variable}: {protocol!r} is not available; the host exports "
                f"http/protobuf (a collector's port 4318): set it to http/protobuf or unset it"
            )
    variable = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    endpoint = environ.get(variable)
    if not endpoint:
        variable, base = "OTEL_EXPORTER_OTLP_ENDPOINT", environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
        # The signal's own variable is the URL as it is; the general one is a base for /v1/traces.
        endpoint = base.strip().rstrip("/") + "/v1/traces" if base.strip() else DEFAULT_ENDPOINT
    endpoint = endpoint.strip()
    parts = urlsplit(endpoint)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise StartupError(
            f"environment variable {variable}: must be an http:// or https:// URL "
            f"(e.g. http://collector:4318), not {shown_endpoint(endpoint)!r}"
        )
    return endpoint


def shown_endpoint(endpoint: str) -> str:
    """The endpoint as a log line may show it: no credentials, no query."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ":(invalid port)"
    return f"{parts.scheme}://{host}{port}{parts.path}" if parts.scheme else "(not a URL)"
