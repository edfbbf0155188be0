"""Finding plugins, isolating their failures, and recording what each contributed.

pluggy's own ``load_setuptools_entrypoints`` stops at the first plugin that
fails to import. This loader takes each entry point on its own: one ``try``
around import, registration, ``check_pending`` and that plugin's registration
hooks. A failing plugin is unregistered, recorded with its error, and the
others load (``strict`` turns the failure into a start-up error).

Capability files are served by the built-in plugin (:mod:`host.naftiko.plugin`),
registered through the same hooks after every installed plugin.

Core code never touches ``pm.hook`` directly: :class:`~host.catalog.Catalog` is
the typed result of loading.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, TypeVar

import pluggy

import host
from host import hookspecs
from host.catalog import (
    FILE_PREFIX,
    Catalog,
    Contributed,
    PluginInfo,
    Staged,
    check_references,
    merge,
)
from host.errors import StartupError
from host.model import ConsumedApi, McpPrompt, McpResource, McpTool, RestResource
from host.naftiko import plugin as naftiko_plugin

# Re-exported: callers import these from here.
__all__ = ["FILE_PREFIX", "Catalog", "Contributed", "PluginInfo", "load_catalog"]

ENTRY_POINT_GROUP = "host.plugins"
LOAD_ENV = "HOST_LOAD_PLUGINS"
DISABLE_ENV = "HOST_DISABLE_PLUGINS"

log = logging.getLogger("host.plugins")

T = TypeVar("T")


@dataclass(frozen=True)
class _Candidate:
    name: str
    load: Callable[[], object]
    entry_point: EntryPoint | None = None


def load_catalog(
    *,
    only: Sequence[str] | None = None,
    strict: bool = False,
    extra_plugins: Iterable[tuple[str, object]] = (),
    discover: bool = True,
    environ: Mapping[str, str] | None = None,
    capability_files: Sequence[Path] = (),
    stdio: bool = False,
    resource_dirs: Mapping[Path, Sequence[Path]] | None = None,
) -> Catalog:
    """Load installed plugins (and ``extra_plugins``) and collect their contributions.

    :param only: entry-point names to load (``[plugins] load``); ``None``: all.
    :param extra_plugins: ``(name, module_or_object)`` pairs registered directly,
        as tests and embedding applications do.
    :param capability_files: Naftiko files to serve (``[[capabilities]]``), loaded
        after the files plugins contribute.
    :param resource_dirs: per capability file, the folders its static files may also come from.
    """
    environ = os.environ if environ is None else environ
    selected = _selection(only, environ)
    disabled = {name.strip() for name in environ.get(DISABLE_ENV, "").split(",") if name.strip()}
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    catalog = Catalog()
    for candidate in _candidates(discover, extra_plugins):
        if (selected is not None and candidate.name not in selected) or candidate.name in disabled:
            log.info("plugin %s: not loaded (selection)", candidate.name)
            continue
        _load_plugin(pm, catalog, candidate)
    _check_selection(catalog, selected, strict=strict)

    builtin = PluginInfo(
        naftiko_plugin.NAME, "capability-host", host.__version__, list(naftiko_plugin.HOOKS), builtin=True
    )
    catalog.builtins.append(builtin)
    builtin.capability_files = [str(path) for path in capability_files]
    files = [(Path(path), info) for info in catalog.plugins for path in info.capability_files]
    files += [(Path(path), builtin) for path in capability_files]
    for path, owner in files:
        dirs = (resource_dirs or {}).get(path, ())
        _load_file(pm, catalog, path, owner, strict=strict, environ=environ, stdio=stdio, resource_dirs=dirs)
    check_references(catalog)
    return catalog


def _candidates(discover: bool, extra_plugins: Iterable[tuple[str, object]]) -> list[_Candidate]:
    found: list[_Candidate] = []
    if discover:
        for entry_point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            found.append(_Candidate(entry_point.name, entry_point.load, entry_point))
    for name, plugin in extra_plugins:
        found.append(_Candidate(name, _returning(plugin)))
    return found


def _load_plugin(pm: pluggy.PluginManager, catalog: Catalog, candidate: _Candidate) -> None:
    """Import, register and run one plugin's hooks; on any failure, record it and leave no trace."""
    name, ep = candidate.name, candidate.entry_point
    info = PluginInfo(name=name)
    if ep is not None and ep.dist is not None:
        info.dist, info.version = ep.dist.name, ep.dist.version
    catalog.plugins.append(info)
    try:
        plugin = candidate.load()
        pm.register(plugin, name=name)
        pm.check_pending()
        info.hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        staged = Staged(info=info, version=info.version)
        files: list[Path] = []
        _collect(pm, plugin, staged, files)
        info.capability_files = [str(path) for path in files]
    except Exception as exc:  # isolate: one bad plugin must not take down the rest
        if pm.has_plugin(name):
            pm.unregister(name=name)
        info.error = f"{type(exc).__name__}: {exc}"
        log.error("plugin %s failed to load and is skipped: %s", name, info.error)
        return
    merge(catalog, staged)


def _check_selection(catalog: Catalog, selected: set[str] | None, *, strict: bool) -> None:
    if selected is not None:
        missing = sorted(set(selected) - {info.name for info in catalog.plugins})
        for name in missing:
            log.warning("plugin %s is listed to load but is not installed", name)
    if strict and catalog.failures:
        names = ", ".join(f"{f.name} ({f.error})" for f in catalog.failures)
        raise StartupError(f"plugins failed to load (strict mode): {names}")


def _load_file(
    pm: pluggy.PluginManager,
    catalog: Catalog,
    path: Path,
    owner: PluginInfo,
    *,
    strict: bool,
    environ: Mapping[str, str],
    stdio: bool = False,
    resource_dirs: Sequence[Path] = (),
) -> None:
    """Serve one capability file through the built-in plugin, unless it has errors."""
    plugin = naftiko_plugin.CapabilityFile.load(
        path, strict=strict, environ=environ, stdio=stdio, resource_dirs=resource_dirs
    )
    report = plugin.report
    report.plugin = None if owner.builtin else owner.name
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
    pm.register(plugin)  # the same file listed twice is two plugins, and a clash below
    # A plugin's file is listed under that plugin; the items still name the file as their origin.
    staged = Staged(info=owner, label=FILE_PREFIX + str(path), version=None)
    _collect(pm, plugin, staged)
    merge(catalog, staged)


def _returning(plugin: object) -> Callable[[], object]:
    return lambda: plugin


def _selection(only: Sequence[str] | None, environ: Mapping[str, str]) -> set[str] | None:
    if LOAD_ENV in environ:  # the environment wins so a broken config can be worked around
        return {name.strip() for name in environ[LOAD_ENV].split(",") if name.strip()}
    return None if only is None else set(only)


def _collect(
    pm: pluggy.PluginManager, plugin: object, staged: Staged, files: list[Path] | None = None
) -> None:
    """Run ``plugin``'s registration hooks only, collecting what it registers into ``staged``."""

    def call(hook_name: str, register: Callable[[Any], None]) -> None:
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if impl.plugin is plugin:
                kwargs = {"register": register}
                impl.function(**{arg: kwargs[arg] for arg in impl.argnames})

    call("host_register_consumes", _typed(ConsumedApi, staged.apis))
    call("host_register_rest_resources", _typed(RestResource, staged.rest))
    call("host_register_mcp_tools", _typed(McpTool, staged.tools))
    call("host_register_mcp_resources", _typed(McpResource, staged.resources))
    call("host_register_mcp_prompts", _typed(McpPrompt, staged.prompts))
    if files is not None:
        call("host_register_capability_files", _typed(Path, files))


def _typed(kind: type[T], into: list[T]) -> Callable[[T], None]:
    def register(item: T) -> None:
        if not isinstance(item, kind):
            raise TypeError(f"register() expects a {kind.__name__}, got {type(item).__name__}")
        into.append(item)

    return register
