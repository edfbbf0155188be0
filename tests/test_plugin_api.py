"""The plugin author's surface: what ``host`` exports, and Naftiko support as a built-in plugin."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import host
from host.naftiko import plugin as naftiko_plugin
from host.plugins import FILE_PREFIX, load_catalog

ROOT = Path(__file__).resolve().parent.parent

CAPABILITY = """
naftiko: 1.0.0-alpha2
info: {label: Notes, description: Notes}
capability:
  consumes:
  - type: http
    namespace: notes
    baseUri: https://notes.example
    resources:
    - name: notes
      path: /notes/{id}
      operations:
      - name: get-note
        method: GET
        inputParameters:
        - {name: id, in: path, type: string, required: true}
  exposes:
  - type: mcp
    namespace: notes-mcp
    port: 9090
    tools:
    - name: get-note
      description: Get a note.
      call: notes.get-note
      with: {id: tools.id}
"""


def _plugin_sources() -> list[Path]:
    """Plugin code (not its tests): what runs inside the host and must use only the public API."""
    roots = [ROOT / "plugins", ROOT / "tests" / "fixtures" / "plugins", ROOT / "host" / "plugin_template"]
    found = []
    for root in roots:
        for path in [*root.rglob("*.py"), *root.rglob("*.py.tmpl")]:
            parts = set(path.relative_to(root).parts)
            if not parts & {"tests", "build", ".venv"}:
                found.append(path)
    return found


def test_plugins_import_only_the_host_package() -> None:
    sources = _plugin_sources()
    assert len(sources) >= 5  # the walk really finds the plugins
    offenders = []
    for path in sources:
        offenders += [f"{path}: {name}" for name in _imports(path) if name.startswith("host.")]
    assert offenders == []


def _imports(path: Path) -> list[str]:
    text = path.read_text()
    if path.suffix == ".tmpl":  # a template is not Python until rendered: read its import lines
        return re.findall(r"(?m)^\s*(?:from|import)\s+([\w.]+)", text)
    names: list[str] = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return names


def test_the_types_a_plugin_author_needs_are_exported() -> None:
    from host.errors import InvalidArguments
    from host.model import InputHook, MockHandler, OutputMapping

    assert host.InvalidArguments is InvalidArguments
    assert host.MockHandler is MockHandler
    assert host.InputHook is InputHook
    assert host.OutputMapping is OutputMapping
    assert {"InvalidArguments", "MockHandler", "InputHook", "OutputMapping", "CallerAuth"} <= set(
        host.__all__
    )
    assert all(hasattr(host, name) for name in host.__all__)


def test_capability_files_are_served_by_the_builtin_plugin_through_the_hooks(tmp_path: Path) -> None:
    path = tmp_path / "notes.yaml"
    path.write_text(textwrap.dedent(CAPABILITY))
    catalog = load_catalog(discover=False, environ={}, capability_files=[path])
    assert catalog.plugins == []  # the built-in is not an installed plugin
    [builtin] = catalog.builtins
    assert builtin.name == naftiko_plugin.NAME and builtin.builtin and builtin.error is None
    assert builtin.dist == "capability-host" and builtin.version == host.__version__
    assert "host_register_consumes" in builtin.hooks and "host_register_mcp_tools" in builtin.hooks
    assert builtin.capability_files == [str(path)]
    assert builtin.consumes == ["notes"] and builtin.mcp_tools == ["get-note"]
    # Items still name their file as their origin.
    assert catalog.apis["notes"].plugin == FILE_PREFIX + str(path)
    assert "capability file" in catalog.tools["get-note"].origin
    assert builtin.as_json()["builtin"] is True


def test_host_plugins_json_lists_the_builtin_separately() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "host", "plugins", "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    listing = json.loads(result.stdout)
    assert all(entry["builtin"] is False for entry in listing["plugins"])
    [builtin] = listing["builtins"]
    assert builtin["name"] == "naftiko" and builtin["builtin"] is True
    assert set(builtin) >= {"name", "dist", "version", "hooks", "contributes", "error"}
