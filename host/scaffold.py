"""``host new-plugin``: write a ready plugin distribution from the bundled template.

The template lives in ``host/plugin_template/`` as package data: ``common/`` for
every plugin, then ``example/`` (a small API with a mock, a REST resource and an
MCP tool) or ``capability/`` (a Naftiko capability file contributed through
``host_register_capability_files``). In paths, ``__package__`` becomes the
package name and a ``dot-`` prefix a leading dot; a ``.tmpl`` file has its
``{{ variable }}`` markers filled and loses the suffix; other files are copied.

Every input is checked, and every file rendered in memory, before anything is
written: a refused command leaves no trace.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from host import __version__

NAME_PATTERN = re.compile(r"[a-z][a-z0-9-]*")
_MARKER = re.compile(r"\{\{ ([a-z_]+) \}\}")
TEMPLATE_ROOT = ("plugin_template",)


class ScaffoldError(Exception):
    """A refused ``host new-plugin``: bad name, existing folder, unusable capability file."""


@dataclass(frozen=True)
class PluginNames:
    """How one plugin name is spelt in each place."""

    name: str  # entry-point name, and the example's namespace
    dist: str  # distribution (pip) name
    package: str  # import name
    title: str
    env_prefix: str

    @classmethod
    def of(cls, name: str) -> PluginNames:
        if not NAME_PATTERN.fullmatch(name):
            raise ScaffoldError(
                f"invalid plugin name {name!r}: use lower-case letters, digits and hyphens, "
                "starting with a letter (e.g. weather or acme-tickets)"
            )
        dist = name if name.startswith("host-") else f"host-{name}"
        return cls(
            name=name,
            dist=dist,
            # prefixed, so a plugin called "json" or "email" never shadows a standard module
            package=dist.replace("-", "_"),
            title=name.replace("-", " ").title(),
            env_prefix=name.upper().replace("-", "_"),
        )


def host_requirement(version: str = __version__) -> str:
    """``capability-host>=0.1,<0.2`` for 0.x (minor releases may break plugins), ``>=1.2,<2`` after."""
    major, minor = (int(part) for part in version.split(".")[:2])
    upper = f"{major}.{minor + 1}" if major == 0 else f"{major + 1}"
    return f"capability-host>={major}.{minor},<{upper}"


def new_plugin(name: str, directory: Path, capability: Path | None = None) -> Path:
    """Write the plugin distribution ``directory/name`` and return its path.

    Raises :class:`ScaffoldError` (and writes nothing) for a bad name, an existing
    target, or a capability file ``host check`` reports as ERROR.
    """
    names = PluginNames.of(name)
    target = directory / name
    if target.exists() or target.is_symlink():
        raise ScaffoldError(f"{target} already exists: choose another name or --directory, or remove it")
    if directory.exists() and not directory.is_dir():
        raise ScaffoldError(f"{directory} is not a directory")
    if capability is None:
        rendered = render("example", example_variables(names))
    else:
        variables, data = capability_variables(names, capability)
        rendered = render("capability", variables)
        rendered[f"{names.package}/data/{capability.name}"] = data
    write_tree(target, rendered)
    return target


def example_variables(names: PluginNames) -> dict[str, str]:
    return {
        **_common(names),
        "description": f"{names.title} for capability-host: an example API, served over REST and MCP.",
        "env_var": f"{names.env_prefix}_API_KEY",
    }


def _common(names: PluginNames) -> dict[str, str]:
    return {
        "name": names.name,
        "dist": names.dist,
        "package": names.package,
        "title": names.title,
        "host_requirement": host_requirement(),
    }


def capability_variables(names: PluginNames, capability: Path) -> tuple[dict[str, str], bytes]:
    """Check the capability file as ``host check`` does; the template's variables and the file's bytes."""
    from host.check import check_files
    from host.config import load_config

    if not capability.is_file():
        raise ScaffoldError(f"capability file {str(capability)!r} does not exist (or is not a file)")
    [report] = check_files([capability], load_config(None), strict=False, environ=os.environ)
    if report.errors:
        reasons = "".join(f"\n  error: {error}" for error in report.errors)
        raise ScaffoldError(
            f"{capability}: host check reports ERROR, so a plugin could not serve it "
            f"(run `host check {capability}`):{reasons}"
        )
    data = capability.read_bytes()
    namespaces = list(dict.fromkeys(api.namespace for api in report.apis))
    tools = sorted(tool.name for tool in report.tools)
    rest = [f"{resource.method.upper()} {resource.path}" for resource in report.rest]
    environment = _test_environment(report.apis)
    consumes_toml = "\n".join(
        f'[consumes.{namespace}]\n# base_uri = "https://..."   # replaces the base URI whole\n# mock = false'
        for namespace in namespaces
    )
    description = _one_line(f"{names.title} for capability-host: the Naftiko capability {capability.name}.")
    variables = {
        **_common(names),
        "description": description,
        "capability_file": capability.name,
        "capability_file_literal": json.dumps(capability.name),
        "namespaces_text": ", ".join(f"``{namespace}``" for namespace in namespaces) or "none",
        "namespaces_markdown": _code_list(namespaces),
        "namespaces_literal": python_literal(namespaces),
        "tools_markdown": _code_list(tools),
        "tools_literal": python_literal(tools),
        "rest_markdown": _code_list(rest),
        "environment_literal": _block_literal(environment),
        "environment_markdown": _code_list(sorted(environment)),
        "consumes_toml": consumes_toml,
        "call_test": _call_test(report),
    }
    return variables, data


def _block_literal(mapping: Mapping[str, str]) -> str:
    """A dict literal with one entry a line (as ruff formats a long one)."""
    if not mapping:
        return "{}"
    return (
        "{\n" + "".join(f"    {python_literal(k)}: {python_literal(v)},\n" for k, v in mapping.items()) + "}"
    )


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace('"', "'")


def _code_list(items: Sequence[str]) -> str:
    return ", ".join(f"`{item}`" for item in items) or "none"


def _test_environment(apis: Sequence[Any]) -> dict[str, str]:
    """A test value for every environment variable the file's APIs declare (credentials included)."""
    environment: dict[str, str] = {}
    for api in apis:
        for var in api.variables:
            if var.name in environment or var.default is not None:
                continue
            value = var.choices[0] if var.choices else f"test-{var.name.lower().replace('_', '-')}"
            if var.pattern and not re.fullmatch(var.pattern, value):
                continue  # no safe guess: the author fills it in
            environment[var.name] = value
    return environment


def _call_test(report: Any) -> str:
    """A test calling the first tool that needs an upstream, when simple arguments can be made up."""
    operations = {f"{api.namespace}.{op.name}": op for api in report.apis for op in api.operations}
    for tool in sorted(report.tools, key=lambda tool: tool.name):
        operation = operations.get(tool.operation)
        if operation is None or operation.static:
            continue
        schema = tool.input_schema if tool.input_schema is not None else operation.input_schema
        arguments = example_arguments(schema)
        if arguments is None:
            continue
        function = re.sub(r"\W", "_", tool.name).lower()
        parameters = "fake_upstream: FakeUpstream, mcp_client: Client"
        signature = f"async def test_{function}_calls_the_upstream({parameters}) -> None:"
        if len(signature) > 100:
            signature = f"async def test_{function}_calls_the_upstream(\n    {parameters}\n) -> None:"
        return f"""

{signature}
    # Every request gets {{}} back. Script the upstream's real answers here
    # (fake_upstream.route(method, path, json=...)) and assert on the tool's result.
    fake_upstream.route("*", "*", json={{}})
    await mcp_client.call_tool({json.dumps(tool.name)}, {python_literal(arguments)})
    assert fake_upstream.requests, "the tool did not call the upstream"
    assert fake_upstream.requests[0].method == {json.dumps(operation.method.upper())}"""
    return ""


def example_arguments(schema: Mapping[str, Any]) -> dict[str, Any] | None:
    """Made-up arguments satisfying ``schema``'s required properties, or ``None`` when unsure."""
    from jsonschema import Draft202012Validator

    value = _example(schema, depth=0)
    if not isinstance(value, dict):
        return None
    try:
        if any(True for _ in Draft202012Validator(schema).iter_errors(value)):
            return None
    except Exception:  # a schema the validator cannot use
        return None
    return value


_NO_VALUE = object()


def _example(schema: Any, depth: int) -> Any:
    if not isinstance(schema, Mapping) or depth > 6:
        return _NO_VALUE
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type", "object" if "properties" in schema else None)
    if kind == "object":
        result: dict[str, Any] = {}
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            value = _example(properties.get(name, {}), depth + 1)
            if value is _NO_VALUE:
                return _NO_VALUE
            result[name] = value
        return result
    if kind == "string" and "pattern" not in schema and "format" not in schema:
        return "example"
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    return _NO_VALUE


def python_literal(value: Any) -> str:
    """Python source for JSON-like data, with double-quoted strings (as ruff formats them)."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int | float | str):
        return json.dumps(value) if isinstance(value, str) else repr(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{python_literal(k)}: {python_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(python_literal(item) for item in value) + "]"
    raise TypeError(f"no literal for {type(value).__name__}")


# --- the template ------------------------------------------------------------------------------------


def template_root() -> Traversable:
    root = files("host")
    for part in TEMPLATE_ROOT:
        root = root.joinpath(part)
    return root


def _walk(folder: Traversable, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Traversable]]:
    for entry in sorted(folder.iterdir(), key=lambda entry: entry.name):
        if entry.name == "__pycache__":
            continue
        if entry.is_dir():
            yield from _walk(entry, (*prefix, entry.name))
        else:
            yield (*prefix, entry.name), entry


def render(variant: str, variables: Mapping[str, str]) -> dict[str, bytes]:
    """Relative path → content, for ``common/`` plus ``variant/`` (the variant wins on a clash)."""
    root = template_root()
    result: dict[str, bytes] = {}
    for layer in ("common", variant):
        for parts, entry in _walk(root.joinpath(layer)):
            path = "/".join(_target_name(part, variables) for part in parts)
            if path.endswith(".tmpl"):
                path = path[: -len(".tmpl")]
                result[path] = fill(entry.read_text(encoding="utf-8"), variables, where=path).encode()
            else:
                result[path] = entry.read_bytes()
    return result


def _target_name(part: str, variables: Mapping[str, str]) -> str:
    if part.startswith("dot-"):
        part = "." + part[len("dot-") :]
    return part.replace("__package__", variables["package"])


def fill(text: str, variables: Mapping[str, str], *, where: str = "template") -> str:
    """Replace ``{{ name }}`` markers; an unknown name is an error, never left in the output."""

    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in variables:
            raise KeyError(f"{where}: no value for template variable {key!r}")
        return variables[key]

    return _MARKER.sub(value, text)


def write_tree(target: Path, contents: Mapping[str, bytes]) -> None:
    """Create ``target`` (which must not exist) with ``contents``; on failure remove what was written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.mkdir()
    try:
        for relative, data in contents.items():
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


# --- the command -------------------------------------------------------------------------------------


def add_subcommand(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "new-plugin", help="write a ready plugin distribution (pyproject.toml, package, README, first test)"
    )
    parser.add_argument("name", metavar="NAME", help="plugin name: lower-case letters, digits, hyphens")
    parser.add_argument(
        "--from-capability",
        metavar="FILE",
        type=Path,
        help="wrap this Naftiko capability file (copied in as package data)",
    )
    parser.add_argument(
        "--directory", metavar="DIR", type=Path, default=Path("."), help="where to create NAME/ (default: .)"
    )
    parser.set_defaults(config=None)


def run(args: argparse.Namespace) -> int:
    """``host new-plugin``: 0 when written, 2 (and nothing written) when refused."""
    try:
        target = new_plugin(args.name, args.directory, args.from_capability)
    except ScaffoldError as exc:
        print(f"host: error: {exc}", file=sys.stderr)
        return 2
    names = PluginNames.of(args.name)
    print(f"created {target}: distribution {names.dist}, package {names.package}, entry point {names.name}")
    print("next:")
    print(f"  cd {target}")
    print("  pip install -e '.[test]'   # in the environment where capability-host is installed")
    print("  pytest")
    print("  host plugins              # then restart `host serve` to serve it")
    return 0
