"""``host.toml``: read with :mod:`tomllib`, validated with pydantic.

Secrets never live here: the file only names environment variables. Every
validation error is reported as ``<file>: <key>: <problem>`` so the operator
knows where to look.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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


class PluginsConfig(_Section):
    strict: bool = False
    # Entry-point names to load; None loads every installed plugin.
    load: tuple[str, ...] | None = None


class ConsumeConfig(_Section):
    base_uri: str | None = None
    timeout: Annotated[float, Field(gt=0, le=600)] = 10.0
    mock: bool = False
    # Placeholder in the capability's base URI -> environment variable that fills it.
    variables: dict[str, str] = Field(default_factory=dict)

    @field_validator("base_uri")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value


class LoggingConfig(_Section):
    level: str = "INFO"

    @field_validator("level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return value.upper()


class CapabilityFile(_Section):
    path: Path


class HostConfig(_Section):
    server: ServerConfig = ServerConfig()
    capabilities: list[CapabilityFile] = Field(default_factory=list)
    plugins: PluginsConfig = PluginsConfig()
    consumes: dict[str, ConsumeConfig] = Field(default_factory=dict)
    logging: LoggingConfig = LoggingConfig()
    path: Path | None = Field(default=None, exclude=True)

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
    files = [CapabilityFile(path=file.parent / entry.path) for entry in config.capabilities]
    return config.model_copy(update={"path": file, "capabilities": files})


def _describe(file: Path, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        problem = "unknown key (check the spelling)" if error["type"] == "extra_forbidden" else error["msg"]
        lines.append(f"{file}: {key}: {problem}")
    return "\n".join(lines)
