"""``host import openapi FILE``: write the capability file an OpenAPI document converts to."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from host.openapi import ALPHA2, ALPHA3, OpenApiError, import_file, to_yaml

VERSIONS = {"alpha2": ALPHA2, "alpha3": ALPHA3}


def add_subcommand(commands: Any) -> None:
    group = commands.add_parser("import", help="convert an API description into a capability file")
    kinds = group.add_subparsers(dest="import_kind", required=True, metavar="KIND")
    command = kinds.add_parser(
        "openapi",
        help="an OpenAPI 3.0/3.1 or Swagger 2.0 document (YAML or JSON)",
        description=(
            "Convert an OpenAPI document into a Naftiko capability file: every operation consumed, "
            "and exposed as an MCP tool (and with --rest as a REST operation) calling that one operation. "
            "An operation that cannot be converted faithfully stops the import (exit 1) naming it and "
            "the reason; --skip-unsupported leaves it out with a warning instead."
        ),
    )
    command.add_argument("file", metavar="FILE", type=Path)
    command.add_argument("--namespace", metavar="NS", help="namespace (default: info.title in kebab-case)")
    command.add_argument("--output", "-o", metavar="FILE", type=Path, help="write here (default: stdout)")
    command.add_argument("--rest", action="store_true", help="also expose REST resources")
    command.add_argument(
        "--mcp", action="store_true", help="expose MCP tools (always done; for explicit scripts)"
    )
    command.add_argument(
        "--version", choices=sorted(VERSIONS), default="alpha3", help="capability format (default alpha3)"
    )
    command.add_argument(
        "--skip-unsupported",
        action="store_true",
        help="leave out operations that cannot be converted faithfully (each one is a warning)",
    )


def run(args: argparse.Namespace) -> int:
    from host.openapi.converter import Options

    if args.namespace is not None and not _kebab_ok(args.namespace):
        return _fail(f"--namespace {args.namespace!r}: use letters, digits and '-' only")
    options = Options(
        namespace=args.namespace,
        mcp=True,  # an MCP tool per operation, always (issue 12); --rest adds the REST side
        rest=args.rest,
        version=VERSIONS[args.version],
    )
    try:
        conversion = import_file(args.file, options)
    except OpenApiError as exc:
        return _fail(str(exc))
    for refusal in conversion.refusals:
        prefix = "warning: skipped" if args.skip_unsupported else "error: cannot convert"
        print(f"host import: {prefix} {refusal}", file=sys.stderr)
    if conversion.refusals and not args.skip_unsupported:
        return _fail(
            f"{len(conversion.refusals)} operation(s) cannot be converted faithfully (see above); "
            "--skip-unsupported leaves them out"
        )
    if not conversion.operations:
        return _fail(f"{args.file}: no operation to convert")
    for warning in conversion.warnings:
        print(f"host import: warning: {warning}", file=sys.stderr)
    text = to_yaml(conversion, args.file.name)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        args.output.write_text(text, encoding="utf-8")
    except OSError as exc:
        return _fail(f"cannot write {args.output}: {exc.strerror or exc}")
    needs = f"; set {', '.join(conversion.variables)}" if conversion.variables else ""
    print(f"wrote {args.output}: {conversion.operations} operations{needs}", file=sys.stderr)
    return 0


def _kebab_ok(name: str) -> bool:
    return bool(name) and all(c.isascii() and (c.isalnum() or c == "-") for c in name)


def _fail(message: str) -> int:
    print(f"host import: error: {message}", file=sys.stderr)
    return 1
