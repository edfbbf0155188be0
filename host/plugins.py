"""Finding plugins, isolating their failures, and recording what each contributed.

pluggy's own ``load_setuptools_entrypoints`` stops at the first plugin that
fails to import. This loader takes each entry point on its own: one ``try``
around import, registration, ``check_pending`` and that plugin's registration
hooks. A failing plugin is unregistered, recorded with its error, and the
others load (``strict`` turns the failure into a start-up error).

Core code never touches ``pm.hook`` directly: :class:`Catalog` is the typed
result of loading.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import pluggy

from host import hookspecs
from host.errors import StartupError
from host.model import ConsumedApi, McpPrompt, McpResource, McpTool, RestResource

if TYPE_CHECKING:
    from host.naftiko import FileReport

ENTRY_POINT_GROUP = "host.plugins"
LOAD_ENV = "HOST_LOAD_PLUGINS"
DISABLE_ENV = "HOST_DISABLE_PLUGINS"

log = logging.getLogger("host.plugins")

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
        }


@dataclass
class Catalog:
    """Everything the loaded plugins contributed, checked for clashes."""

    apis: dict[str, Contributed[ConsumedApi]] = field(default_factory=dict)
    rest: dict[tuple[str, str], Contributed[RestResource]] = field(default_factory=dict)
    tools: dict[str, Contributed[McpTool]] = field(default_factory=dict)
    resources: dict[str, Contributed[McpResource]] = field(default_factory=dict)
    prompts: dict[str, Contributed[McpPrompt]] = field(default_factory=dict)
    plugins: list[PluginInfo] = field(default_factory=list)
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


def load_catalog(
    *,
    only: Sequence[str] | None = None,
    strict: bool = False,
    extra_plugins: Iterable[tuple[str, object]] = (),
    discover: bool = True,
    environ: Mapping[str, str] | None = None,
    capability_files: Sequence[Path] = (),
    stdio: bool = False,
) -> Catalog:
    """Load installed plugins (and ``extra_plugins``) and collect their contributions.

    :param only: entry-point names to load (``[plugins] load``); ``None``: all.
    :param extra_plugins: ``(name, module_or_object)`` pairs registered directly,
        as tests and embedding applications do.
    :param capability_files: Naftiko files to serve (``[[capabilities]]``), loaded
        after the files plugins contribute.
    """
    environ = os.environ if environ is None else environ
    selected = _selection(only, environ)
    disabled = {name.strip() for name in environ.get(DISABLE_ENV, "").split(",") if name.strip()}
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    catalog = Catalog()

    candidates: list[tuple[str, Callable[[], object], EntryPoint | None]] = []
    if discover:
        for entry_point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            candidates.append((entry_point.name, entry_point.load, entry_point))
    for name, plugin in extra_plugins:
        candidates.append((name, _returning(plugin), None))

    for name, load, ep in candidates:
        if (selected is not None and name not in selected) or name in disabled:
            log.info("plugin %s: not loaded (selection)", name)
            continue
        info = PluginInfo(name=name)
        if ep is not None and ep.dist is not None:
            info.dist, info.version = ep.dist.name, ep.dist.version
        catalog.plugins.append(info)
        try:
            plugin = load()
            pm.register(plugin, name=name)
            pm.check_pending()
            staged = _collect(pm, name, info)
        except Exception as exc:  # isolate: one bad plugin must not take down the rest
            if pm.has_plugin(name):
                pm.unregister(name=name)
            info.error = f"{type(exc).__name__}: {exc}"
            log.error("plugin %s failed to load and is skipped: %s", name, info.error)
            continue
        _merge(catalog, staged)

    if selected is not None:
        missing = sorted(set(selected) - {info.name for info in catalog.plugins})
        for name in missing:
            log.warning("plugin %s is listed to load but is not installed", name)
    if strict and catalog.failures:
        names = ", ".join(f"{f.name} ({f.error})" for f in catalog.failures)
        raise StartupError(f"plugins failed to load (strict mode): {names}")

    files: list[tuple[Path, str | None]] = [
        (Path(path), info.name) for info in catalog.plugins for path in info.capability_files
    ]
    files += [(Path(path), None) for path in capability_files]
    for path, plugin_name in files:
        _load_file(catalog, path, plugin_name, strict=strict, environ=environ, stdio=stdio)
    _check_references(catalog)
    return catalog


def _load_file(
    catalog: Catalog,
    path: Path,
    plugin_name: str | None,
    *,
    strict: bool,
    environ: Mapping[str, str],
    stdio: bool = False,
) -> None:
    from host.naftiko import load_capability  # the Naftiko engine builds on this module's types

    report = load_capability(path, strict=strict, environ=environ)
    report.plugin = plugin_name
    catalog.files.append(report)
    for note in report.notes:
        log.info("%s: %s", path, note)
    for warning in report.warnings:
        log.warning("%s: %s", path, warning)
    if report.errors:
        for error in report.errors:
            log.error("%s: %s", path, error)
        if strict:
            raise StartupError(f"{path}: cannot be served (strict mode): {report.errors[0]}")
        log.error("%s: not served (fix the errors above)", path)
        return
    # A plugin's file is listed under that plugin; the items still name the file as their origin.
    owner = next((info for info in catalog.plugins if info.name == plugin_name), None)
    staged = _Staged(
        info=owner or PluginInfo(name=FILE_PREFIX + str(path)),
        label=FILE_PREFIX + str(path),
        version=None,
        apis=list(report.apis),
        rest=list(report.rest),
        tools=list(report.stdio_tools if stdio and report.stdio_tools else report.tools),
        resources=list(report.resources),
        prompts=list(report.prompts),
    )
    _merge(catalog, staged)


def _returning(plugin: object) -> Callable[[], object]:
    return lambda: plugin


def _selection(only: Sequence[str] | None, environ: Mapping[str, str]) -> set[str] | None:
    if LOAD_ENV in environ:  # the environment wins so a broken config can be worked around
        return {name.strip() for name in environ[LOAD_ENV].split(",") if name.strip()}
    return None if only is None else set(only)


@dataclass
class _Staged:
    info: PluginInfo
    version: str | None
    label: str = ""  # who the items are credited to in clash messages; default: the plugin
    apis: list[ConsumedApi] = field(default_factory=list)
    rest: list[RestResource] = field(default_factory=list)
    tools: list[McpTool] = field(default_factory=list)
    resources: list[McpResource] = field(default_factory=list)
    prompts: list[McpPrompt] = field(default_factory=list)


def _collect(pm: pluggy.PluginManager, name: str, info: PluginInfo) -> _Staged:
    """Run this plugin's registration hooks only, collecting what it registers."""
    staged = _Staged(info=info, version=info.version)
    plugin = pm.get_plugin(name)
    info.hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])

    def call(hook_name: str, register: Callable[[Any], None]) -> None:
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if impl.plugin_name == name:
                kwargs = {"register": register}
                impl.function(**{arg: kwargs[arg] for arg in impl.argnames})

    call("host_register_consumes", _typed(ConsumedApi, staged.apis))
    call("host_register_rest_resources", _typed(RestResource, staged.rest))
    call("host_register_mcp_tools", _typed(McpTool, staged.tools))
    call("host_register_mcp_resources", _typed(McpResource, staged.resources))
    call("host_register_mcp_prompts", _typed(McpPrompt, staged.prompts))
    files: list[Path] = []
    call("host_register_capability_files", _typed(Path, files))
    info.capability_files = [str(path) for path in files]
    return staged


def _typed(kind: type[T], into: list[T]) -> Callable[[T], None]:
    def register(item: T) -> None:
        if not isinstance(item, kind):
            raise TypeError(f"register() expects a {kind.__name__}, got {type(item).__name__}")
        into.append(item)

    return register


def _merge(catalog: Catalog, staged: _Staged) -> None:
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
            (method, _route_shape(resource.path)),
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


def _route_shape(path: str) -> str:
    """``/v1/a/{id}`` and ``/v1/a/{name}`` are the same route: compare with parameters blanked."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def _claim(table: dict[Any, Contributed[Any]], key: Any, item: Contributed[Any], what: str) -> None:
    if key in table:
        raise StartupError(
            f"{what} is contributed by both {table[key].origin} and {item.origin}; "
            f"uninstall one, or limit [plugins] load"
        )
    table[key] = item


def _check_references(catalog: Catalog) -> None:
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
