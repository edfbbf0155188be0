"""Naftiko 1.0.0-alpha2 (and alpha3) capability files, served as they are.

:func:`load_capability` reads one file and reports, like ``host check``:
``OK`` (served as written), ``WARN`` (served; deviations or disabled items
listed), ``ERROR`` (cannot be served at all). The served items are the same
model objects plugins register, so both adapters treat them alike.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from host.naftiko.compiler import Compiled, Compiler, FileError
from host.naftiko.document import SPEC_VERSION, SUPPORTED_VERSIONS, normalise
from host.openapi import OpenApiError, capability_from_openapi, is_openapi

log = logging.getLogger("host.naftiko")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(kw_only=True)
class FileReport(Compiled):
    """What loading one file gave: the compiled items, and the reasons for its status."""

    file: str
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    plugin: str | None = None

    @property
    def status(self) -> str:
        return "ERROR" if self.errors else "WARN" if self.warnings else "OK"

    @property
    def operations(self) -> int:
        return sum(len(api.operations) for api in self.apis if not api.base_uri.startswith("static:"))

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "status": self.status,
            "warnings": self.warnings,
            "errors": self.errors,
            "operations": self.operations,
            "rest": len(self.rest),
            "tools": len(self.tools),
            "skills": len(self.skills),
            "control": [{"feature": f, "status": s, "detail": d} for f, s, d in self.control],
            "notes": self.notes,
        }


def load_capability(
    path: Path,
    *,
    strict: bool = False,
    environ: Mapping[str, str] | None = None,
    resource_dirs: Sequence[Path] = (),
) -> FileReport:
    """Read, normalise and compile one capability file. Never raises for a bad file.

    :param resource_dirs: folders, besides the file's own, that its static resources and prompts may
        read (``[[capabilities]] resource_dirs``).
    """
    report = FileReport(file=str(path))

    def warn(key: str, message: str) -> None:
        report.warnings.append(f"{key}: {message}")

    def note(key: str, message: str) -> None:
        report.notes.append(f"{key}: {message}")

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        report.errors.append(f"cannot read the file: {exc}")
        return report
    try:
        raw = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        report.errors.append(f"not valid YAML{where}: {getattr(exc, 'problem', None) or exc}")
        return report
    if not isinstance(raw, dict):
        report.errors.append("the document is not a mapping (is this a capability file?)")
        return report
    if is_openapi(raw):  # an OpenAPI document: converted, then compiled like any capability file
        try:
            raw, converted, notes = capability_from_openapi(raw, path, SPEC_VERSION)
        except OpenApiError as exc:
            report.errors.append(f"openapi: {exc}")
            return report
        report.warnings += converted
        report.notes += notes
    if "ikanos" in raw and "naftiko" not in raw:
        report.errors.append(
            "ikanos: this is an Ikanos (Naftiko beta) file; this host reads naftiko 1.0.0-alpha2"
        )
        return report
    version = raw.get("naftiko")
    if isinstance(version, dict):
        version = version.get("version")
    if version is None:
        warn("naftiko", f"missing; read as {SPEC_VERSION}")
    elif str(version) == "1.0.0-alpha1":
        warn("naftiko", f"{version} read as {SPEC_VERSION} (best effort)")
    elif str(version) not in SUPPORTED_VERSIONS:
        supported = " and ".join(SUPPORTED_VERSIONS)
        report.errors.append(f"naftiko: version {version!r} is not supported (this host reads {supported})")
        return report
    try:
        compiler = Compiler(
            normalise(raw, warn), path, strict=strict, warn=warn, note=note, resource_dirs=resource_dirs
        )
        compiled = compiler.compile()
    except FileError as exc:
        report.errors.append(str(exc))
        return report
    except Exception as exc:  # a defect in the compiler must not take the host down
        log.exception("%s: unexpected failure while loading", path)
        report.errors.append(f"internal error while loading: {type(exc).__name__}: {exc}")
        return report
    for item in fields(Compiled):
        setattr(report, item.name, getattr(compiled, item.name))
    if strict and report.warnings:
        report.errors.extend(f"(strict) {warning}" for warning in report.warnings)
    return report


__all__ = ["FileReport", "load_capability"]
