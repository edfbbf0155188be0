"""What the loaded plugins contributed: the :class:`Catalog`, each item stamped with its origin.

:func:`merge` adds one plugin's items and refuses any clash (two plugins contributing the same
namespace, route, tool, resource or prompt); :func:`check_references` makes sure every exposure calls
an operation some plugin provides. Loading plugins is :mod:`host.plugins`' job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from host.errors import StartupError
from host.model import ConsumedApi, McpPrompt, McpResource, McpTool, RestResource, route_shape

if TYPE_CHECKING:
    from host.naftiko import FileReport

T = TypeVar("T")


@dataclass(frozen=True)
class Contributed(Generic[T]):
    """An item with the plugin (and its distribution version) that contributed it."""

    item: T
    plugin: str
    version: str | None

    @property
    def origin(self) -> str:
        if self.plugin.startswith(FILE_PREFIX):
            return f"capability file {self.plugin[len(FILE_PREFIX) :]!r}"
        return f"plugin {self.plugin!r}" + (f" {self.version}" if self.version else "")


FILE_PREFIX = "file:"


@dataclass
class PluginInfo:
    name: str
    dist: str | None = None
    version: str | None = None
    hooks: list[str] = field(default_factory=list)
    consumes: list[str] = field(default_factory=list)
    rest: list[str] = field(default_factory=list)
    mcp_tools: list[str] = field(default_factory=list)
    capability_files: list[str] = field(default_factory=list)
    error: str | None = None
    builtin: bool = False  # shipped with the host (Naftiko file support), not installed separately

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dist": self.dist,
            "version": self.version,
            "hooks": self.hooks,
            "contributes": {
                "consumes": self.consumes,
                "rest": self.rest,
                "mcp_tools": self.mcp_tools,
                "capability_files": self.capability_files,
            },
            "error": self.error,
            "builtin": self.builtin,
        }


@dataclass
class Catalog:
    """Everything the loaded plugins contributed, checked for clashes."""

    apis: dict[str, Contributed[ConsumedApi]] = field(default_factory=dict)
    rest: dict[tuple[str, str], Contributed[RestResource]] = field(default_factory=dict)
    tools: dict[str, Contributed[McpTool]] = field(default_factory=dict)
    resources: dict[str, Contributed[McpResource]] = field(default_factory=dict)
    prompts: dict[str, Contributed[McpPrompt]] = field(default_factory=dict)
    plugins: list[PluginInfo] = field(default_factory=list)  # installed (or passed in) plugins
    builtins: list[PluginInfo] = field(default_factory=list)  # the host's own, registered the same way
    files: list[FileReport] = field(default_factory=list)

    @property
    def mcp_identity(self) -> tuple[str, str] | None:
        """(name, instructions) when the MCP port serves exactly one capability file's one MCP adapter.

        A capability file names its MCP server (naftiko-spec.md §4.9); a host serving several files or
        plugins has one endpoint for all of them, and keeps its own name.
        """
        adapters = [adapter for report in self.files if not report.errors for adapter in report.mcp_adapters]
        plugin_tools = any(not c.plugin.startswith(FILE_PREFIX) for c in self.tools.values())
        if len(adapters) == 1 and not plugin_tools:
            return adapters[0]
        return None

    @property
    def failures(self) -> list[PluginInfo]:
        return [info for info in self.plugins if info.error]


@dataclass
class Staged:
    """One plugin's (or one capability file's) items, before they join the catalog."""

    info: PluginInfo
    version: str | None
    label: str = ""  # who the items are credited to in clash messages; default: the plugin
    apis: list[ConsumedApi] = field(default_factory=list)
    rest: list[RestResource] = field(default_factory=list)
    tools: list[McpTool] = field(default_factory=list)
    resources: list[McpResource] = field(default_factory=list)
    prompts: list[McpPrompt] = field(default_factory=list)


def merge(catalog: Catalog, staged: Staged) -> None:
    """Add a plugin's items, refusing any clash with what is already there."""
    name, version, info = staged.label or staged.info.name, staged.version, staged.info
    for api in staged.apis:
        _claim(
            catalog.apis,
            api.namespace,
            Contributed(api, name, version),
            f"consumed namespace {api.namespace!r}",
        )
        info.consumes.append(api.namespace)
    for resource in staged.rest:
        method = resource.method.upper()
        _claim(
            catalog.rest,
            (method, route_shape(resource.path)),
            Contributed(resource, name, version),
            f"REST resource {method} {resource.path}",
        )
        info.rest.append(f"{method} {resource.path}")
    for tool in staged.tools:
        _claim(catalog.tools, tool.name, Contributed(tool, name, version), f"MCP tool {tool.name!r}")
        info.mcp_tools.append(tool.name)
    for mcp_resource in staged.resources:
        _claim(
            catalog.resources,
            mcp_resource.uri,
            Contributed(mcp_resource, name, version),
            f"MCP resource {mcp_resource.uri!r}",
        )
    for prompt in staged.prompts:
        _claim(
            catalog.prompts, prompt.name, Contributed(prompt, name, version), f"MCP prompt {prompt.name!r}"
        )


def _claim(table: dict[Any, Contributed[Any]], key: Any, item: Contributed[Any], what: str) -> None:
    if key in table:
        raise StartupError(
            f"{what} is contributed by both {table[key].origin} and {item.origin}; "
            f"uninstall one, or limit [plugins] load"
        )
    table[key] = item


def check_references(catalog: Catalog) -> None:
    known = {f"{ns}.{op.name}" for ns, c in catalog.apis.items() for op in c.item.operations}
    exposures: list[tuple[str, Contributed[Any]]] = [
        *((f"REST resource {c.item.method} {c.item.path}", c) for c in catalog.rest.values()),
        *((f"MCP tool {name!r}", c) for name, c in catalog.tools.items()),
        *((f"MCP resource {uri!r}", c) for uri, c in catalog.resources.items() if c.item.operation),
    ]
    for what, contributed in exposures:
        if contributed.item.operation not in known:
            raise StartupError(
                f"{what} from {contributed.origin} calls operation {contributed.item.operation!r}, "
                f"which no loaded plugin provides (known: {', '.join(sorted(known)) or 'none'})"
            )
