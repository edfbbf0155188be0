"""``host check``: load what ``serve`` would load, report every problem, bind nothing."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from host.config import HostConfig
from host.connections import bind_problems
from host.engine import bind
from host.errors import StartupError
from host.naftiko import FileReport, load_capability
from host.plugins import load_catalog


def check_files(
    files: Sequence[Path], config: HostConfig, *, strict: bool, environ: Mapping[str, str]
) -> list[FileReport]:
    """One report per file. Environment the file needs but this shell lacks is a warning, not an error:
    the check may run on a machine other than the server."""
    reports = []
    for path in files:
        report = load_capability(path, strict=strict, environ=environ)
        if not report.errors:
            for api in report.apis:
                try:
                    bind(api, config.consume(api.namespace), environ, f"capability file {str(path)!r}")
                except StartupError as exc:
                    report.warnings.append(f"to serve: {exc}")
        report.notes += explain_tools(report)
        reports.append(report)
    return reports


def explain_tools(report: FileReport) -> list[str]:
    """A note per MCP tool: the operation it calls and its inputs. Tools converted from OpenAPI are
    already explained by the conversion (with the OpenAPI operation they come from)."""
    explained = {note.split(":", 2)[1].strip() for note in report.notes if note.startswith("openapi: tool ")}
    operations = {f"{api.namespace}.{op.name}": op for api in report.apis for op in api.operations}
    notes = []
    for tool in report.tools:
        if f"tool {tool.name}" in explained:
            continue
        op = operations.get(tool.operation)
        where = {p.name: p.in_ or "query" for p in getattr(op.request if op else None, "params", ())}
        schema = tool.input_schema or {}
        required = set(schema.get("required") or ())
        inputs = ", ".join(
            f"{name} ({where.get(name, 'argument')}, {_type_of(prop)}, "
            f"{'required' if name in required else 'optional'})"
            for name, prop in (schema.get("properties") or {}).items()
        )
        target = f"{op.method} {op.path}" if op and not op.static else "a static answer"
        notes.append(f"tool {tool.name}: calls {tool.operation} ({target}); inputs: {inputs or 'none'}")
    return notes


def _type_of(schema: Any) -> str:
    return str(schema.get("type", "any")) if isinstance(schema, dict) else "any"


def check_config(config: HostConfig, *, strict: bool, environ: Mapping[str, str]) -> list[str]:
    """Every problem that would stop ``host serve --config``, not only the first one serve would meet."""
    from host.app import authenticators, build, check_exposure

    try:
        catalog = load_catalog(
            only=config.plugins.load,
            strict=strict or config.plugins.strict,
            environ=environ,
            capability_files=[entry.path for entry in config.capabilities],
            resource_dirs={entry.path: entry.resource_dirs for entry in config.capabilities},
        )
    except StartupError as exc:  # a clash or a strict-mode failure: nothing after it can be judged
        return str(exc).splitlines()
    problems = [f"plugin {info.name}: {info.error}" for info in catalog.failures]
    problems += [f"{report.file}: {error}" for report in catalog.files for error in report.errors]
    for namespace, contributed in catalog.apis.items():
        try:
            bind(contributed.item, config.consume(namespace), environ, contributed.origin)
        except StartupError as exc:
            problems.append(str(exc))
    try:
        check_exposure(config, authenticators(config, environ))
    except StartupError as exc:
        problems.append(str(exc))
    if not problems:
        try:  # what only building the apps finds: reserved paths, item credentials, state keys
            build(config, environ, strict=strict)
        except StartupError as exc:
            problems.append(str(exc))
    if not config.server.stdio:
        problems += bind_problems(config)  # a port another program (or another host) already holds
    return problems


def render_text(reports: Sequence[FileReport]) -> str:
    lines = []
    for report in reports:
        counts = f"{report.operations} operations, {len(report.rest)} REST, {len(report.tools)} tools"
        counts += f", {len(report.skills)} skills" if report.skills else ""
        lines.append(
            f"{report.status:5} {report.file} ({counts})"
            if not report.errors
            else f"{report.status:5} {report.file}"
        )
        lines += [f"  error: {error}" for error in report.errors]
        lines += [f"  control {feature}: {status}: {detail}" for feature, status, detail in report.control]
        lines += [f"  warning: {warning}" for warning in report.warnings]
        tool_notes = (note.removeprefix("openapi: ") for note in report.notes)
        lines += [f"  note: {note}" for note in tool_notes if note.startswith("tool ")]
    return "\n".join(lines)


def render_json(
    reports: Sequence[FileReport],
    config_problems: Sequence[str] | None = None,
    config_warnings: Sequence[str] = (),
) -> str:
    documents: list[dict[str, Any]] = [report.as_json() for report in reports]
    if config_problems is not None:
        documents.append(
            {
                "file": "(config)",
                "status": "ERROR" if config_problems else "WARN" if config_warnings else "OK",
                "warnings": list(config_warnings),
                "errors": list(config_problems),
                "operations": 0,
                "rest": 0,
                "tools": 0,
            }
        )
    return json.dumps(documents, indent=1)
