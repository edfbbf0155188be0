"""The import layers, read from the source with `ast` (docs/architecture.md draws them).

- The entry layer (OUTER below: the CLI, the server, the builder, the checker, the scaffold, the test kit)
  may import anything.
- The adapters (host/adapters/rest*, host/adapters/mcp*) import the core, never each other, never the entry
  layer.
- The core (every other module under host/) never imports the adapters or the entry layer.
- Plugins (plugins/**, tests/fixtures/plugins/**, host/plugin_template/**) import only `host` (and the test
  kit `host.testing` in their tests), never `host.<module>`.

Every import counts, including those inside functions and under TYPE_CHECKING: a lazy import is still a
dependency.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

HOST = ROOT / "host"
OUTER = (
    "host.__main__",
    "host.cli",
    "host.server",
    "host.supervisor",
    "host.reload",
    "host.app",
    "host.check",
    "host.scaffold",
    "host.testing",
)
ADAPTERS = ("host.adapters.rest", "host.adapters.mcp")
PLUGIN_ROOTS = (ROOT / "plugins", ROOT / "tests" / "fixtures" / "plugins", HOST / "plugin_template")
PLUGIN_MAY_IMPORT = ("host", "host.testing")
TEMPLATE_PLACEHOLDER = re.compile(r"\{\{.*?\}\}")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in the file."""
    source = path.read_text(encoding="utf-8")
    if path.name.endswith(".py.tmpl"):  # `host new-plugin` templates: placeholders stand for names
        source = TEMPLATE_PLACEHOLDER.sub("placeholder", source)
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    return imports_in(source, package, str(path))


def imports_in(source: str, package: str, filename: str = "<source>") -> Iterator[tuple[int, str]]:
    """``from host import x`` counts as ``host.x`` when ``host/x`` is a module or package (a submodule
    imported by name), else as ``host``; relative imports are resolved against ``package``."""
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield node.lineno, candidate if _is_module(candidate) else base


def _is_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def host_modules() -> list[Path]:
    return sorted(path for path in HOST.rglob("*.py") if not path.is_relative_to(HOST / "plugin_template"))


def violations_in(names: list[str], forbidden: tuple[str, ...]) -> list[str]:
    return [name for name in names if within(name, forbidden)]


def violations(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in paths
        for line, name in imports(path)
        if within(name, forbidden)
    ]


def test_the_layers_name_modules_that_exist() -> None:
    # A renamed module would silently drop out of its layer.
    for name in (*OUTER, *ADAPTERS):
        assert _is_module(name), f"{name} is listed in a layer but is not a module"


def test_the_core_never_imports_the_adapters_or_the_entry_layer() -> None:
    core = [path for path in host_modules() if not within(module_name(path), (*OUTER, "host.adapters"))]
    assert len(core) > 10  # the walk found the core
    assert violations(core, ("host.adapters", *OUTER)) == []


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_an_adapter_never_imports_the_other_adapter_or_the_entry_layer(adapter: str) -> None:
    others = tuple(name for name in ADAPTERS if name != adapter)
    files = [path for path in host_modules() if within(module_name(path), (adapter,))]
    assert files, f"no module for {adapter}"
    assert violations(files, (*others, *OUTER)) == []


def plugin_files() -> list[Path]:
    files: list[Path] = []
    for root in PLUGIN_ROOTS:
        files += [
            path
            for pattern in ("*.py", "*.py.tmpl")
            for path in root.rglob(pattern)
            if "build" not in path.relative_to(root).parts and ".venv" not in path.parts
        ]
    return sorted(files)


def test_plugins_import_only_host() -> None:
    files = plugin_files()
    assert any(path.name.endswith(".py.tmpl") for path in files) and len(files) > 5
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {name} (use `from host import ...`)"
        for path in files
        for line, name in imports(path)
        if within(name, ("host",)) and name not in PLUGIN_MAY_IMPORT
    ]
    assert found == []


def test_the_check_sees_a_forbidden_import() -> None:
    source = "from host.adapters import rest\nfrom host import engine, hookimpl\nfrom .. import templates\n"
    found = [name for _, name in imports_in(source, "host.naftiko")]
    assert found == ["host.adapters.rest", "host.engine", "host", "host.templates"]
    assert violations_in(found, ("host.adapters",)) == ["host.adapters.rest"]
