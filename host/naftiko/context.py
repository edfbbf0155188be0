"""What every part of the compiler shares: the file being compiled, its results so far, and how to warn."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ValidationError

from host.model import (
    CallerAuth,
    ConsumedApi,
    ConsumedOperation,
    EnvVar,
    McpPrompt,
    McpResource,
    McpTool,
    RestResource,
)
from host.naftiko.document import ConsumedOperationSpec, InputParameter
from host.naftiko.skills import Skill
from host.tracing import FileTraces


class FileError(Exception):
    """The whole file cannot be served."""


@dataclass
class Compiled:
    apis: list[ConsumedApi] = field(default_factory=list)
    rest: list[RestResource] = field(default_factory=list)
    tools: list[McpTool] = field(default_factory=list)
    resources: list[McpResource] = field(default_factory=list)
    prompts: list[McpPrompt] = field(default_factory=list)
    stdio_tools: list[McpTool] = field(default_factory=list)
    # (namespace, description) of each HTTP MCP adapter: the server's name and instructions (§4.9)
    mcp_adapters: list[tuple[str, str]] = field(default_factory=list)
    stdio_adapters: list[tuple[str, str]] = field(default_factory=list)  # the same, transport: stdio
    skills: list[Skill] = field(default_factory=list)  # of its skill adapters (type: skill)
    control: list[tuple[str, str, str]] = field(default_factory=list)  # (feature, status, detail)
    traces: FileTraces | None = None  # its control adapter's observability, for its items


@dataclass
class ConsumedOp:
    """A consumed operation and what the exposures need to know about it."""

    namespace: str
    spec: ConsumedOperationSpec
    path: str
    params: list[InputParameter]


@dataclass
class Context:
    """One file's compilation state, passed to the consumes, exposes and schema builders."""

    file: Path
    strict: bool
    warn: Callable[[str, str], None]
    note: Callable[[str, str], None]  # information that does not make the file deviate (ignored ports, ...)
    resource_dirs: tuple[Path, ...] = ()  # folders besides the file's own that static files may come from
    out: Compiled = field(default_factory=Compiled)
    ops: dict[str, ConsumedOp] = field(default_factory=dict)
    variables: list[EnvVar] = field(default_factory=list)  # the file's binds
    declared: int = 0  # exposure items the file declares, served or not
    caller_auth: CallerAuth | None = None  # the current adapter's own inbound authentication
    functions: dict[str, Any] = field(default_factory=dict)  # aggregate functions by "<namespace>.<name>"
    api_params: dict[str, list[InputParameter]] = field(default_factory=dict)  # each consumes' own
    exposes: list[Any] = field(default_factory=list)  # the file's raw exposes (skills name their tools)
    claimed: dict[tuple[str, ...], str] = field(default_factory=dict)  # served keys -> first item's path

    def claim(self, key: tuple[str, ...], what: str, path: str) -> bool:
        """Whether the item at ``path`` may serve ``key`` (a route, a tool name): no earlier item of this
        file does. Else a warning names both, and only the first is served, as ``host check`` says."""
        first = self.claimed.setdefault(key, path)
        if first == path:
            return True
        self.warn(path, f"{what} is declared again (first at {first}); only the first is served: rename one")
        return False

    def add_static(self, namespace: str, operation: ConsumedOperation) -> str:
        """Add ``operation`` to the file's synthetic ``static://`` API ``namespace``; its reference."""
        existing = next((i for i, api in enumerate(self.out.apis) if api.namespace == namespace), None)
        if existing is None:
            self.out.apis.append(
                ConsumedApi(namespace=namespace, base_uri="static://", operations=(operation,))
            )
        else:
            operations = (*self.out.apis[existing].operations, operation)
            self.out.apis[existing] = ConsumedApi(
                namespace=namespace, base_uri="static://", operations=operations
            )
        return f"{namespace}.{operation.name}"

    def list_of(self, parent: Any, key: str, path: str) -> list[Any]:
        value = parent.get(key) if isinstance(parent, dict) else None
        if value is None:
            return []
        if not isinstance(value, list):
            raise FileError(f"{path}: must be a list")
        return value

    def model(self, model: type[BaseModel], value: Any, path: str) -> Any:
        """``value`` validated as ``model``; ``None`` (and a warning) when it is not one."""
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(item)'}: {e['msg']}" for e in exc.errors()[:3]
            )
            self.warn(path, f"invalid ({problems}); disabled")
            return None

    def items(self, model: type[BaseModel], raw: list[Any], path: str) -> list[tuple[int, Any]]:
        """Validate list items one by one: one bad item is disabled, its siblings are kept."""
        validated = ((index, self.model(model, item, f"{path}[{index}]")) for index, item in enumerate(raw))
        return [(index, item) for index, item in validated if item is not None]

    def params(self, raw: list[Any], path: str) -> list[InputParameter]:
        return [param for _, param in self.items(InputParameter, raw, path)]


def confined_path(ctx: Context, location: str, path: str) -> Path:
    """A file named in the capability (``file:///x``, ``file:///./rel`` or a relative path), resolved.

    It must resolve (symlinks followed) inside the capability file's folder or its ``resource_dirs``;
    anything else is a load error, so that no file can expose ``/etc/passwd`` or ``/proc/self/environ``.
    """
    base = ctx.file.parent.resolve()
    if location.startswith("file:///./") or not location.startswith("file://"):
        target = (base / location.removeprefix("file:///./")).resolve()
    else:
        target = Path(unquote(urlsplit(location).path)).resolve()
    allowed = [base, *(folder.resolve() for folder in ctx.resource_dirs)]
    if not any(target.is_relative_to(folder) for folder in allowed):
        where = "the capability file's folder" + (" or its resource_dirs" if ctx.resource_dirs else "")
        raise FileError(
            f"{path}: {location!r} resolves to {str(target)!r}, outside {where}; "
            "list its folder under resource_dirs in the [[capabilities]] entry of host.toml"
        )
    return target
