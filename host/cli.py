"""Command line: host serve, host check, host plugins, host new-plugin and host import."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from host import __version__, scaffold
from host.config import HostConfig, load_config, override_server
from host.errors import StartupError
from host.observability import JsonFormatter, RequestIdFilter, TextFormatter
from host.openapi import command as openapi_command
from host.plugins import load_catalog
from host.secrets import install_redaction
from host.supervisor import worker_id


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="host", description=__doc__)
    parser.add_argument("--version", action="version", version=f"capability-host {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve every installed capability on the REST and MCP ports")
    serve.add_argument("--config", metavar="FILE", help="host.toml (default: built-in defaults)")
    serve.add_argument(
        "--strict",
        action="store_true",
        help="exit non-zero when any plugin fails to load (also [plugins] strict)",
    )
    serve.add_argument(
        "--stdio", metavar="FILE", help="serve this capability file's MCP over stdin/stdout instead of HTTP"
    )
    serve.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="N worker processes sharing both ports (SO_REUSEPORT); also [server] workers",
    )
    serve.add_argument(
        "--host", metavar="ADDRESS", help="address both ports bind to (overrides [server] host)"
    )
    serve.add_argument(
        "--rest-port", type=_port, metavar="PORT", help="REST port (overrides [server] rest_port)"
    )
    serve.add_argument(
        "--mcp-port", type=_port, metavar="PORT", help="MCP port (overrides [server] mcp_port)"
    )

    check = commands.add_parser(
        "check", help="load capability files (and the config's plugins) as serve would; report every problem"
    )
    check.add_argument("files", nargs="*", metavar="FILE", help="Naftiko capability files (YAML)")
    check.add_argument(
        "--config", metavar="FILE", help="host.toml: also check its plugins and [[capabilities]]"
    )
    check.add_argument(
        "--json",
        action="store_true",
        help="one object per file: file, status, warnings, errors, operations, rest, tools",
    )
    check.add_argument("--strict", action="store_true", help="deviations from the schema are errors")

    plugins = commands.add_parser("plugins", help="list installed plugins and what each contributes")
    plugins.add_argument("--config", metavar="FILE", help="host.toml, for [plugins] load")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    scaffold.add_subcommand(commands)
    openapi_command.add_subcommand(commands)
    return parser


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535; 0 picks a free one)")
    return int(text)


# [server] keys that a ``host serve`` flag of the same name overrides (rest_port: --rest-port).
ADDRESS_KEYS = ("host", "rest_port", "mcp_port")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "new-plugin":
        return scaffold.run(args)
    if args.command == "import":
        return openapi_command.run(args)
    try:
        config = load_config(args.config)
        if args.command == "serve":
            config = override_server(config, {key: getattr(args, key) for key in ADDRESS_KEYS})
        _configure_logging(config)
        if args.command == "serve":
            from host.server import serve, serve_stdio  # imports aiohttp and the MCP SDK only when serving

            if args.stdio or config.server.stdio:
                file = Path(args.stdio) if args.stdio else None
                return asyncio.run(serve_stdio(config, file, strict=args.strict, environ=os.environ))
            workers = args.workers or config.server.workers
            if workers > 1 and worker_id() is None:
                return _supervise(config, args, workers)
            return _run(serve(config, strict=args.strict, environ=os.environ))
        if args.command == "check":
            return _check(config, args)
        return _plugins(config, as_json=args.json)
    except StartupError as exc:
        print(f"host: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _run(main: Coroutine[Any, Any, int]) -> int:
    """Run the server on uvloop where it is installed (measured ~1.3x faster in bench/), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def _supervise(config: HostConfig, args: argparse.Namespace, workers: int) -> int:
    from host.app import build
    from host.connections import bind_problems
    from host.supervisor import supervise

    if workers < 1:
        raise StartupError("--workers must be at least 1")
    build(config, os.environ, strict=args.strict)  # a bad config fails here, once
    taken = bind_problems(config)  # and a taken port too, rather than workers failing to start in a loop
    if taken:
        raise StartupError(taken[0])
    return supervise(workers, worker_args(args), os.environ)


def worker_args(args: argparse.Namespace) -> list[str]:
    """The ``host serve`` arguments each worker gets: the supervisor's own, without ``--workers``."""
    forwarded = ["serve", *(["--config", args.config] if args.config else [])]
    forwarded += ["--strict"] if args.strict else []
    for key in ADDRESS_KEYS:
        if getattr(args, key) is not None:
            forwarded += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    return forwarded


def _configure_logging(config: HostConfig) -> None:
    # The host's formats show none of these: not collecting them per record saves several µs per request
    # (the logging HOWTO's "Optimization" section).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    formatter = JsonFormatter() if config.logging.format == "json" else TextFormatter()
    handler.setFormatter(formatter)
    logging.basicConfig(level=config.logging.level, handlers=[handler], force=True)
    install_redaction(logging.getLogger().handlers)


def _check(config: HostConfig, args: argparse.Namespace) -> int:
    from host.check import check_config, check_files, render_json, render_text
    from host.shutdown import manifest_warnings

    logging.getLogger().setLevel(logging.CRITICAL)  # everything is in the report
    files = [Path(name) for name in args.files]
    if args.config:
        files += [entry.path for entry in config.capabilities]
    reports = check_files(files, config, strict=args.strict, environ=os.environ)
    problems = check_config(config, strict=args.strict, environ=os.environ) if args.config else None
    warnings = manifest_warnings(config) if args.config else []
    if args.json:
        print(render_json(reports, problems, warnings))
    else:
        if reports:
            print(render_text(reports))
        if problems is not None:
            print("config: OK" if not problems else "\n".join(f"config: error: {p}" for p in problems))
            for warning in warnings:
                print(f"config: warning: {warning}")
        if not reports and problems is None:
            print("nothing to check: pass capability files, or --config host.toml")
    failed = any(report.errors for report in reports) or bool(problems)
    return 1 if failed else 0


def _plugins(config: HostConfig, *, as_json: bool) -> int:
    logging.getLogger("host.plugins").setLevel(logging.CRITICAL)  # failures are in the listing itself
    catalog = load_catalog(only=config.plugins.load)
    if as_json:
        listing = {
            "plugins": [info.as_json() for info in catalog.plugins],
            "builtins": [info.as_json() for info in catalog.builtins],
        }
        print(json.dumps(listing, indent=2))
        return 0
    if not catalog.plugins:
        print("no plugins installed (entry-point group host.plugins)")
    for info in [*catalog.plugins, *catalog.builtins]:
        where = "built-in" if info.builtin else info.dist or "registered in process"
        print(f"{info.name} {info.version or ''} ({where})".rstrip())
        if info.error:
            print(f"  ERROR: {info.error}")
            continue
        for label, items in (("consumes", info.consumes), ("REST", info.rest), ("MCP tools", info.mcp_tools)):
            if items:
                print(f"  {label}: {', '.join(items)}")
    return 0
