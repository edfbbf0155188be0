"""OpenAPI in, capability out: ``host import openapi`` and ``[[capabilities]] openapi = "file.yaml"``.

:func:`import_file` converts a Swagger 2.0 / OpenAPI 3.0 / 3.1 document into a Naftiko capability
document (:mod:`host.openapi.converter`); :func:`to_yaml` writes it. :func:`capability_from_openapi`
is what loading does: the same conversion, handed to the same compiler as any capability file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

# Every host reads is_openapi and OpenApiError when it loads a file; the converter (and its
# ``referencing`` resolver, dataclasses and schema walking) is imported only when a document is one.
if TYPE_CHECKING:
    from host.openapi.converter import Conversion, Options, Refusal

ALPHA2, ALPHA3 = "1.0.0-alpha2", "1.0.0-alpha3"


class OpenApiError(Exception):
    """The document cannot be read as OpenAPI at all (the message says why)."""


def is_openapi(document: Any) -> bool:
    """An OpenAPI (3.x) or Swagger (2.0) document, as opposed to a capability file."""
    if not isinstance(document, dict) or "naftiko" in document:
        return False
    return str(document.get("openapi", "")).startswith("3.") or str(document.get("swagger", "")) == "2.0"


def __getattr__(name: str) -> Any:
    if name in ("Conversion", "Options", "Refusal"):
        from host.openapi import converter

        return getattr(converter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def import_file(path: Path, options: Options) -> Conversion:
    """Convert the OpenAPI document at ``path``; raises :class:`OpenApiError` when it cannot be read."""
    from host.openapi.converter import convert
    from host.openapi.source import parse, read_document

    document = read_document(path)
    return convert(parse(document, path), options)


def to_yaml(conversion: Conversion, source: str) -> str:
    header = f"# Converted from {source} by `host import openapi`.\n"
    if conversion.variables:
        header += f"# Set these environment variables: {', '.join(conversion.variables)}\n"
    body = yaml.safe_dump(conversion.document, sort_keys=False, allow_unicode=True, width=110)
    return header + body


def capability_from_openapi(
    document: dict[str, Any], path: Path, version: str
) -> tuple[dict[str, Any], list[str], list[str]]:
    """An OpenAPI document as a capability document (both adapters), with the load's warnings
    (conversion problems, each refused operation and why) and notes (what each tool comes from)."""
    from host.openapi.converter import Options, convert
    from host.openapi.source import parse

    conversion = convert(parse(document, path), Options(mcp=True, rest=True, version=version))
    warnings = [f"openapi: {warning}" for warning in conversion.warnings]
    warnings += [
        f"openapi: {refusal.operation}: not converted: {refusal.reason}" for refusal in conversion.refusals
    ]
    notes = [f"openapi: {explanation}" for explanation in conversion.explanations]
    return conversion.document, warnings, notes


__all__ = [
    "ALPHA2",
    "ALPHA3",
    "Conversion",
    "OpenApiError",
    "Options",
    "Refusal",
    "capability_from_openapi",
    "import_file",
    "is_openapi",
    "to_yaml",
]
