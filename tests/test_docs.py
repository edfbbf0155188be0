"""docs/plugins.md documents every hook in host/hookspecs.py, with its exact signature.

As datasette's ``test_plugin_hooks_are_documented``: a hook added, renamed or
given a new parameter without its reference entry fails here.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluggy
import pytest

from host import hookspecs

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "plugins.md"


def _hookspecs() -> dict[str, Callable[..., Any]]:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    names = [name for name in dir(pm.hook) if name.startswith("host_")]
    return {name: getattr(hookspecs, name) for name in names}


HOOKS = _hookspecs()


def _headings() -> dict[str, str]:
    """Hook name -> the text of its ``### name(args)`` heading."""
    found: dict[str, str] = {}
    for match in re.finditer(r"^#{2,4} `?([a-z_]+)\(([^)]*)\)`?\s*$", DOC.read_text(), re.MULTILINE):
        found[match.group(1)] = f"{match.group(1)}({match.group(2)})"
    return found


def _typed_signature(function: Callable[..., Any]) -> str:
    """``def name(arg: Annotation, ...) -> Return``, with the annotations as written in hookspecs.py."""
    signature = inspect.signature(function)  # annotations stay strings: hookspecs uses postponed evaluation
    parameters = ", ".join(
        f"{name}: {parameter.annotation}" for name, parameter in signature.parameters.items()
    )
    return f"def {function.__name__}({parameters}) -> {signature.return_annotation}"


def test_hookspecs_found() -> None:
    assert "host_register_consumes" in HOOKS and len(HOOKS) >= 6


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_plugin_hooks_are_documented(name: str) -> None:
    spec = HOOKS[name]
    arguments = ", ".join(inspect.signature(spec).parameters)
    headings = _headings()
    assert name in headings, f"docs/plugins.md has no heading for the hook {name}({arguments})"
    assert headings[name] == f"{name}({arguments})", (
        f"docs/plugins.md documents {headings[name]}, but the hookspec is {name}({arguments})"
    )
    typed = _typed_signature(spec)
    assert typed in DOC.read_text(), f"docs/plugins.md does not show the signature of {name}: {typed}"


def test_documented_hooks_exist() -> None:
    stale = sorted(name for name in _headings() if name.startswith("host_") and name not in HOOKS)
    assert not stale, f"docs/plugins.md documents hooks host/hookspecs.py does not define: {stale}"
