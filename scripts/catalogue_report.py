#!/usr/bin/env python3
"""Run `host check --json` over a folder of capability files; print the pass rate and top failure reasons.

    .venv/bin/python scripts/catalogue_report.py ../shared/naftiko-catalogue [--json-out report.json]
        [--sample N] [--verbose] [--skip-callable]

"Valid alpha2 YAML" files are the denominator: files that parse as YAML and say
`naftiko: 1.0.0-alpha2` (or `1.0.0-alpha3`, whose schema differs only in that constant). A file
passes when its status is OK or WARN (it is served).

Then every MCP tool of every served file is called end to end (``tools/call``, in process) with arguments
made from its own input schema, every consumed namespace pointed at one fake upstream that answers 200
with an empty document in the format the tool's operation declares (``outputRawFormat``: ``{}`` for
JSON, ``<root/>`` for XML, ...). A tool is callable when the result is not an error and the upstream
received a request.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import logging
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

BATCH = 200


SUPPORTED = {"1.0.0-alpha2", "1.0.0-alpha3"}


def is_alpha2(path: Path) -> bool:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, OSError):
        return False
    return isinstance(document, dict) and str(document.get("naftiko")) in SUPPORTED


def check(files: list[Path]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for start in range(0, len(files), BATCH):
        batch = [str(f) for f in files[start : start + BATCH]]
        done = subprocess.run(
            [sys.executable, "-m", "host", "check", "--json", *batch],
            capture_output=True,
            text=True,
            timeout=600,
        )
        results.extend(json.loads(done.stdout))
    return results


def reason(message: str) -> str:
    """Group similar messages: strip quoted names, numbers and key paths."""
    text = re.sub(r"^[\w.\[\]-]+: ", "", message)
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    return re.sub(r"\d+", "N", text)[:120]


# --- the callable measure: every tool of every served file called against one fake upstream ----------

TOOL_TIMEOUT = 5.0  # seconds per tools/call: a hung tool is a failure, not a hung report
# The loader's words for a variable the file needs: "environment variable X is not set", "{X} has no value".
MISSING_VARIABLE = re.compile(
    r"environment variable ([A-Za-z_]\w*) is not set|\{([A-Za-z_]\w*)\} has no value"
)
SIMPLE_STRINGS = ("1", "a", "abc", "A", "ABC", "a1", "AB12", "x-1", "2024-01-01", "user@example.com")
FORMATS = {
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "time": "00:00:00",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "123e4567-e89b-12d3-a456-426614174000",
    "ipv4": "127.0.0.1",
    "hostname": "example.com",
}


# An empty document in each declared outputRawFormat, so that the measure judges the host, not the
# fake's choice of format (an XML operation answered with JSON would fail to decode upstream too).
EMPTY_ANSWERS: dict[str, tuple[bytes, str]] = {
    "xml": (b'<?xml version="1.0"?><root/>', "application/xml"),
    "yaml": (b"{}", "application/yaml"),
    "csv": (b"id\n1\n", "text/csv"),
    "tsv": (b"id\n1\n", "text/tab-separated-values"),
    "psv": (b"id\n1\n", "text/plain"),
    "html": (
        b"<html><body><table><tr><th>id</th></tr><tr><td>1</td></tr></table></body></html>",
        "text/html",
    ),
    "markdown": (b"# Title\n", "text/markdown"),
    "text": (b"ok", "text/plain"),
}
JSON_ANSWER = (b"{}", "application/json")


@dataclass
class ToolOutcome:
    file: str
    tool: str
    callable: bool
    reason: str = ""


def _string_example(schema: dict[str, Any]) -> str:
    if schema.get("format") in FORMATS:
        return FORMATS[str(schema["format"])]
    minimum = int(schema.get("minLength") or 0)
    pattern = schema.get("pattern")
    candidates = [text.ljust(minimum, "1" if text.isdigit() else "a") for text in SIMPLE_STRINGS]
    candidates += [letter * size for size in range(max(minimum, 2), 13) for letter in "1aA"]
    if isinstance(pattern, str):
        with contextlib.suppress(re.error):
            compiled = re.compile(pattern)
            matching = [text for text in candidates if compiled.search(text)]
            if matching:
                return matching[0]
    return "x".ljust(minimum, "x")


def _number_example(schema: dict[str, Any]) -> int | float:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    value: int | float = 1 if low is None else low + (1 if "minimum" not in schema else 0)
    high = schema.get("maximum")
    if isinstance(high, (int, float)) and value > high:
        value = high
    return int(value) if schema.get("type") == "integer" else value


def example_value(schema: Any, depth: int = 0) -> Any:
    """A value that satisfies ``schema`` where that is simple: its own examples, default or enum first."""
    if not isinstance(schema, dict) or depth > 8:
        return "x"
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    for key in ("examples", "enum"):
        if isinstance(schema.get(key), list) and schema[key]:
            return schema[key][0]
    if "example" in schema:
        return schema["example"]
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return example_value(schema[key][0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        return {name: example_value(properties.get(name), depth + 1) for name in schema.get("required") or []}
    if kind == "array":
        return [example_value(schema.get("items"), depth + 1)]
    if kind in ("integer", "number"):
        return _number_example(schema)
    if kind == "boolean":
        return True
    return _string_example(schema)


def _missing_variables(text: str) -> set[str]:
    return {first or second for first, second in MISSING_VARIABLE.findall(text)}


def _variables(result: dict[str, Any]) -> dict[str, str]:
    """Dummy values for the environment variables the loader says the file needs."""
    names = {name for text in result["warnings"] for name in _missing_variables(str(text))}
    return {name: f"dummy-{name.lower()}" for name in sorted(names)}


def _host_toml(path: Path, upstream_url: str) -> str:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    capability = document.get("capability") or {}
    blocks = [*(capability.get("consumes") or []), *(document.get("consumes") or [])]
    namespaces = dict.fromkeys(
        str(b["namespace"]) for b in blocks if isinstance(b, dict) and "namespace" in b
    )
    consumes = "".join(
        f'[consumes."{ns}"]\nbase_uri = "{upstream_url}"\ntimeout = {TOOL_TIMEOUT}\nretries = 0\n'
        for ns in namespaces
    )
    return consumes + f"[[capabilities]]\npath = {json.dumps(str(path.resolve()))}\n"


def output_format(catalog: Any, tool_name: str) -> str:
    """The declared ``outputRawFormat`` of the operation a served tool calls (``json`` when unknown)."""
    contributed = catalog.tools.get(tool_name)
    namespace, _, name = (contributed.item.operation if contributed else "").rpartition(".")
    api = catalog.apis.get(namespace)
    operation = next((op for op in api.item.operations if op.name == name), None) if api else None
    return str(operation.output_format).partition(":")[0] if operation else "json"


async def _call(client: Any, upstream: Any, file: str, tool: Any, answer_format: str = "json") -> ToolOutcome:
    arguments = example_value(tool.input_schema or {"type": "object"})
    body, content_type = EMPTY_ANSWERS.get(answer_format, JSON_ANSWER)
    upstream.reset()
    upstream.route("*", "*", body=body, content_type=content_type)
    with upstream.capture() as seen:
        try:
            result = await asyncio.wait_for(client.call_tool(tool.name, arguments), TOOL_TIMEOUT)
        except Exception as exc:  # a protocol error or timeout is a failure of this tool, not of the run
            return ToolOutcome(file, tool.name, False, f"{type(exc).__name__}: {exc}"[:200])
    if result.is_error:
        text = " ".join(getattr(part, "text", "") for part in result.content)
        return ToolOutcome(file, tool.name, False, f"error result: {text}"[:200])
    if not seen:
        return ToolOutcome(file, tool.name, False, "no request reached the upstream")
    return ToolOutcome(file, tool.name, True)


async def _file_outcomes(result: dict[str, Any], upstream: Any) -> list[ToolOutcome]:
    from host.errors import StartupError
    from host.testing import serve_in_process

    file = str(result["file"])
    config = _host_toml(Path(file), upstream.url)
    environ = _variables(result)
    for _attempt in range(20):  # the loader names one missing variable at a time
        try:
            async with contextlib.AsyncExitStack() as stack:
                served = await stack.enter_async_context(
                    serve_in_process(config, environ, plugins=(), discover=False)
                )
                client = await stack.enter_async_context(served.in_memory_mcp_client())
                tools = (await client.list_tools()).tools
                catalog = served.host.catalog
                return [
                    await _call(client, upstream, file, tool, output_format(catalog, tool.name))
                    for tool in tools
                ]
        except StartupError as exc:
            missing = _missing_variables(str(exc)) - set(environ)
            if not missing:
                return [ToolOutcome(file, "(start-up)", False, f"does not start: {exc}"[:200])]
            environ |= {name: f"dummy-{name.lower()}" for name in missing}
        except Exception as exc:  # a defect building one file is that file's failure, not the report's
            return [
                ToolOutcome(file, "(start-up)", False, f"build crashed: {type(exc).__name__}: {exc}"[:200])
            ]
    return [ToolOutcome(file, "(start-up)", False, "does not start: too many missing variables")]


async def callable_outcomes(results: list[dict[str, Any]]) -> list[ToolOutcome]:
    """Call every MCP tool of each served file, with arguments made from its input schema, against one
    fake upstream that answers 200 with an empty document in the operation's declared format."""
    from host.testing import FakeUpstream

    outcomes: list[ToolOutcome] = []
    with FakeUpstream() as upstream:
        for result in results:
            outcomes += await _file_outcomes(result, upstream)
    return outcomes


def report_callable(results: list[dict[str, Any]], sample: int | None, verbose: bool) -> None:
    served = [r for r in results if r["status"] != "ERROR"]
    if sample is not None and sample < len(served):
        served = served[:: max(1, len(served) // sample)][:sample]  # deterministic: evenly spaced
    logging.disable(logging.WARNING)  # the host's own load warnings are already in the report above
    outcomes = asyncio.run(callable_outcomes(served))
    logging.disable(logging.NOTSET)
    good = sum(o.callable for o in outcomes)
    share = 100.0 * good / len(outcomes) if outcomes else 0.0
    scope = f"a sample of {len(served)} served files" if sample is not None else f"{len(served)} served files"
    print(
        f"tools callable end to end against a fake upstream: {good}/{len(outcomes)} ({share:.1f}%), {scope}"
    )
    failures = collections.Counter(reason(o.reason) for o in outcomes if not o.callable)
    print("top reasons a tool is not callable:")
    for text, count in failures.most_common(10):
        print(f"  {count:5}  {text}")
    if verbose:
        for outcome in outcomes:
            if not outcome.callable:
                print(f"  {Path(outcome.file).name} {outcome.tool}: {outcome.reason}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--json-out", type=Path, help="write every file's report here")
    parser.add_argument("--sample", type=int, help="call the tools of N evenly spaced served files only")
    parser.add_argument("--verbose", action="store_true", help="list every tool that is not callable")
    parser.add_argument("--skip-callable", action="store_true", help="only the pass rate")
    args = parser.parse_args()
    files = sorted(args.folder.glob("*.yaml")) + sorted(args.folder.glob("*.yml"))
    valid = [f for f in files if is_alpha2(f)]
    results = check(valid)
    served = [r for r in results if r["status"] != "ERROR"]
    statuses = collections.Counter(str(r["status"]) for r in results)
    errors = collections.Counter(reason(str(e)) for r in results for e in r["errors"])
    warnings = collections.Counter(reason(str(w)) for r in results for w in r["warnings"])
    rate = 100.0 * len(served) / len(valid) if valid else 0.0
    print(
        f"files: {len(files)}; valid alpha2 YAML: {len(valid)}; "
        f"served (OK or WARN): {len(served)} ({rate:.1f}%)"
    )
    print("status: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
    print("top reasons a file is not served:")
    for text, count in errors.most_common(10):
        print(f"  {count:5}  {text}")
    print("top warnings:")
    for text, count in warnings.most_common(10):
        print(f"  {count:5}  {text}")
    if not args.skip_callable:
        report_callable(results, args.sample, args.verbose)
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
