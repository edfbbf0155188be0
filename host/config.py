"""``host.toml``: read with :mod:`tomllib`, validated with pydantic.

Secrets never live here: the file only names environment variables. Every
validation error is reported as ``<file>: <key>: <problem>`` so the operator
knows where to look.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from host.errors import StartupError


class _Section(BaseModel):
    # A misspelt key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    rest_port: Annotated[int, Field(ge=0, le=65535)] = 8080
    mcp_port: Annotated[int, Field(ge=0, le=65535)] = 9090
    # Extra Host header values accepted by the MCP port (DNS-rebinding guard).
    # Loopback names are always accepted. Use "name:*" for any port.
    allowed_hosts: tuple[str, ...] = ()
    # Origins accepted by the MCP port; requests without Origin are accepted.
    allowed_origins: tuple[str, ...] = ()
    # Seconds that in-flight requests get to finish after SIGTERM.
    shutdown_grace: Annotated[float, Field(gt=0, le=3600)] = 30.0
    max_body_bytes: Annotated[int, Field(gt=0)] = 1024 * 1024
    # Serve MCP over stdin/stdout instead of the two ports (for a client that spawns the host).
    stdio: bool = False
    # Worker processes sharing both ports (SO_REUSEPORT); 1 serves from this process.
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    # Binding a non-loopback address with no inbound auth is refused unless this is set.
    allow_unauthenticated: bool = False
    # Seconds /readyz reports unready before the listeners close on SIGTERM (load balancer drain).
    drain_delay: Annotated[float, Field(ge=0, le=600)] = 0.0


class LimitsConfig(_Section):
    """Inbound limits, on both ports."""

    max_json_depth: Annotated[int, Field(gt=0, le=10_000)] = 64
    max_header_bytes: Annotated[int, Field(ge=1024, le=1024 * 1024)] = 8190
    max_headers: Annotated[int, Field(ge=8, le=1000)] = 100
    # All request headers together (431 above it): each may be max_header_bytes, not all of them.
    max_total_header_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 65536
    # In-flight requests per adapter (503 above it) and per client (429 above it).
    max_concurrent: Annotated[int, Field(gt=0)] = 512
    max_concurrent_per_client: Annotated[int, Field(gt=0)] = 128
    # Seconds for one whole request, upstream call included (504 above it).
    request_timeout: Annotated[float, Field(gt=0, le=3600)] = 60.0
    # Seconds for the request body to arrive (408 above it): a stalled sender frees its slot early.
    body_timeout: Annotated[float, Field(gt=0, le=3600)] = 10.0
    # Seconds a kept-alive connection may wait for its next request (nginx: keepalive_timeout 75).
    idle_timeout: Annotated[float, Field(gt=0, le=3600)] = 75.0
    # Seconds a new connection has to send its first request's headers (nginx: client_header_timeout 60).
    header_timeout: Annotated[float, Field(gt=0, le=3600)] = 60.0
    # Open connections per port; at the cap idle ones are closed to make room, else new ones get 503.
    max_connections: Annotated[int, Field(gt=0, le=1_000_000)] = 1024


class ApiKeyConfig(_Section):
    name: str
    env: str
    # Which adapters accept this key; both by default.
    adapters: tuple[Literal["rest", "mcp"], ...] = ("rest", "mcp")


class OAuthConfig(_Section):
    """The MCP port as an OAuth 2.1 resource server (JWT access tokens checked against a JWKS)."""

    issuer: str
    audience: str
    jwks_url: str
    required_scopes: tuple[str, ...] = ()
    # The RFC 9728 resource identifier; defaults to the audience.
    resource: str | None = None
    authorization_servers: tuple[str, ...] = ()
    algorithms: tuple[str, ...] = ("RS256", "ES256")


class AuthConfig(_Section):
    keys: list[ApiKeyConfig] = Field(default_factory=list)
    oauth: OAuthConfig | None = None

    @property
    def configured(self) -> bool:
        return bool(self.keys or self.oauth)


class PluginsConfig(_Section):
    strict: bool = False
    # Entry-point names to load; None loads every installed plugin.
    load: tuple[str, ...] | None = None


class ConsumeConfig(_Section):
    base_uri: str | None = None
    timeout: Annotated[float, Field(gt=0, le=600)] = 10.0
    connect_timeout: Annotated[float, Field(gt=0, le=600)] = 3.0
    mock: bool = False
    # Connections kept to this upstream at most.
    pool_size: Annotated[int, Field(gt=0, le=10_000)] = 64
    # Seconds a call may wait for one of those connections (503 "host busy" after; not upstream time).
    pool_timeout: Annotated[float, Field(gt=0, le=600)] = 5.0
    # Client-side rate limit, e.g. "300/min" (also /s, /h); off unless set.
    rate_limit: str | None = None
    # Extra attempts, only where safe: idempotent methods, or a connection never established.
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    # Consecutive failures that open the circuit, and seconds before a probe is let through.
    circuit_failures: Annotated[int, Field(gt=0)] = 5
    circuit_reset: Annotated[float, Field(gt=0, le=3600)] = 30.0
    max_response_bytes: Annotated[int, Field(gt=0)] = 16 * 1024 * 1024
    # Placeholder in the capability's base URI -> environment variable that fills it.
    variables: dict[str, str] = Field(default_factory=dict)

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, value: str | None) -> str | None:
        if value is not None:
            parse_rate(value)
        return value

    @field_validator("base_uri")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value


_PERIODS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
}


def parse_rate(text: str) -> tuple[int, float]:
    """``"300/min"`` → ``(300, 60.0)``: that many calls per that many seconds."""
    count, _, period = text.replace(" ", "").partition("/")
    if not count.isdigit() or int(count) <= 0 or period not in _PERIODS:
        raise ValueError('must look like "300/min" (a count per s, min or h)')
    return int(count), _PERIODS[period]


class LoggingConfig(_Section):
    level: str = "INFO"
    # "text" for people, "json" (one object per line) for log pipelines.
    format: Literal["text", "json"] = "text"

    @field_validator("level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return value.upper()


class CapabilityFile(_Section):
    path: Path
    # Folders, besides the file's own, that its static MCP resources and prompts may read.
    resource_dirs: list[Path] = Field(default_factory=list)
    # An OpenAPI document served directly: converted to a capability at load (path is set to it).
    openapi: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _openapi_is_the_path(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("openapi") is not None:
            if data.get("path") is not None and data["path"] != data["openapi"]:
                raise ValueError("give either path (a capability file) or openapi (an OpenAPI document)")
            return {**data, "path": data["openapi"]}
        return data


class StateConfig(_Section):
    # "memory": each process counts its own rate limits; "redis": one count for every process sharing
    # the store named by HOST_STATE_URL (never host.toml: the URL may carry a password).
    backend: Literal["memory", "redis"] = "memory"
    # Host processes sharing the store (replicas x workers); while it is unreachable each process allows
    # this share of a rate_limit. Default: [server] workers.
    processes: Annotated[int, Field(ge=1, le=100_000)] | None = None
    # Circuits kept in the store too: one process's open circuit is open for all, one probe at a time.
    share_circuits: bool = False

    @model_validator(mode="after")
    def _circuits_need_a_store(self) -> StateConfig:
        if self.share_circuits and self.backend != "redis":
            raise ValueError('share_circuits = true needs backend = "redis" (the store they are shared in)')
        return self


# OTEL_PROPAGATORS names: "b3" is B3's single header, "b3multi" its X-B3-* headers.
PROPAGATORS = ("tracecontext", "b3", "b3multi")


class ObservabilityConfig(_Section):
    """OpenTelemetry traces (off by default; the OTLP endpoint comes from OTEL_EXPORTER_OTLP_*)."""

    enabled: bool = False
    # The share of traces the host starts that are recorded; a caller's sampled traceparent is followed.
    sampling: float = 1.0
    propagators: tuple[str, ...] = ("tracecontext",)

    @field_validator("sampling", mode="before")
    @classmethod
    def _ratio(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValueError(
                f"must be a ratio from 0 to 1 (got {value!r}); e.g. sampling = 0.1 records one trace in ten"
            )
        return value

    @field_validator("propagators", mode="before")
    @classmethod
    def _known(cls, value: Any) -> Any:
        if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
            raise ValueError('must be a non-empty list, e.g. propagators = ["tracecontext", "b3"]')
        unknown = [name for name in value if name not in PROPAGATORS]
        if unknown:
            raise ValueError(
                f"unknown propagator {unknown[0]!r}; use {', '.join(map(repr, PROPAGATORS))} "
                f'(e.g. propagators = ["tracecontext", "b3"])'
            )
        return value


class HostConfig(_Section):
    server: ServerConfig = ServerConfig()
    capabilities: list[CapabilityFile] = Field(default_factory=list)
    plugins: PluginsConfig = PluginsConfig()
    consumes: dict[str, ConsumeConfig] = Field(default_factory=dict)
    limits: LimitsConfig = LimitsConfig()
    auth: AuthConfig = AuthConfig()
    logging: LoggingConfig = LoggingConfig()
    state: StateConfig = StateConfig()
    observability: ObservabilityConfig = ObservabilityConfig()
    path: Path | None = Field(default=None, exclude=True)
    # [server] keys set by a command-line flag instead of host.toml: key -> flag (not a host.toml key).
    _flags: dict[str, str] = PrivateAttr(default_factory=dict)

    def source(self, key: str) -> str:
        """Where the operator set a [server] key: the flag, or the host.toml key (for error messages)."""
        return self._flags.get(key) or f"[server] {key}"

    def consume(self, namespace: str) -> ConsumeConfig:
        return self.consumes.get(namespace, ConsumeConfig())


def load_config(path: str | Path | None) -> HostConfig:
    """Read and validate ``path``; ``None`` gives the defaults."""
    if path is None:
        return HostConfig()
    file = Path(path)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StartupError(f"{file}: no such file (pass --config with the path of your host.toml)") from None
    except tomllib.TOMLDecodeError as exc:
        raise StartupError(f"{file}: not valid TOML: {exc}") from None
    try:
        config = HostConfig.model_validate(raw)
    except ValidationError as exc:
        raise StartupError(_describe(file, exc)) from None
    # Capability paths are relative to the config file, not to the working directory.
    files = [
        CapabilityFile(
            path=file.parent / entry.path,
            resource_dirs=[file.parent / d for d in entry.resource_dirs],
            openapi=entry.openapi and file.parent / entry.openapi,
        )
        for entry in config.capabilities
    ]
    return config.model_copy(update={"path": file, "capabilities": files})


def override_server(config: HostConfig, values: Mapping[str, object]) -> HostConfig:
    """``config`` with the given [server] keys replaced (``None`` values are left alone), validated again."""
    given = {key: value for key, value in values.items() if value is not None}
    if not given:
        return config
    try:
        server = ServerConfig.model_validate({**config.server.model_dump(), **given})
    except ValidationError as exc:
        raise StartupError(_describe(Path("command line"), exc)) from None
    overridden = config.model_copy(update={"server": server})
    overridden._flags = {**config._flags, **{key: "--" + key.replace("_", "-") for key in given}}
    return overridden


def _describe(file: Path, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        problem = "unknown key (check the spelling)" if error["type"] == "extra_forbidden" else error["msg"]
        problem = problem.removeprefix("Value error, ")  # pydantic's prefix for a validator's message
        lines.append(f"{file}: {key}: {problem}")
    return "\n".join(lines)
