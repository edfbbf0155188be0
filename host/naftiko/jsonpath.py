"""The JSONPath subset capability files use, compiled once at load time.

Supported: ``$`` and ``$.`` (the whole document), ``.name``, ``['name']``,
``[n]`` (negative too), ``[*]`` and ``.*``, and ``..name`` (recursive descent).
A path with a wildcard or recursive step yields a list; otherwise one value,
or ``None`` when nothing matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(
    r"""
    \.\.(?P<deep>[A-Za-z0-9_\-$@]+|\*)      # ..name, ..*
  | \.(?P<name>[A-Za-z0-9_\-$@]+)           # .name
  | \.(?P<dotstar>\*)                       # .*
  | \[\s*(?P<index>-?\d+)\s*\]              # [0]
  | \[\s*(?P<star>\*)\s*\]                  # [*]
  | \[\s*'(?P<sq>[^']*)'\s*\]               # ['name']
  | \[\s*"(?P<dq>[^"]*)"\s*\]               # ["name"]
    """,
    re.VERBOSE,
)


class JsonPathError(ValueError):
    pass


@dataclass(frozen=True)
class JsonPath:
    expression: str
    steps: tuple[tuple[str, Any], ...]

    @property
    def multiple(self) -> bool:
        return any(kind in {"star", "deep"} for kind, _ in self.steps)

    def find(self, document: Any) -> Any:
        nodes = [document]
        for kind, arg in self.steps:
            nodes = [found for node in nodes for found in _step(node, kind, arg)]
        if self.multiple:
            return nodes
        return nodes[0] if nodes else None


def compile_path(expression: str) -> JsonPath:
    text = expression.strip()
    if not text.startswith("$"):
        raise JsonPathError(f"{expression!r} does not start with $")
    rest = text[1:]
    if rest in {"", "."}:
        return JsonPath(expression, ())
    steps: list[tuple[str, Any]] = []
    position = 0
    while position < len(rest):
        match = _TOKEN.match(rest, position)
        if match is None:
            raise JsonPathError(f"{expression!r}: cannot read {rest[position:]!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind in {"name", "sq", "dq"}:
            steps.append(("key", value))
        elif kind == "index":
            steps.append(("index", int(value)))
        elif kind in {"star", "dotstar"}:
            steps.append(("star", None))
        else:
            steps.append(("deep", value))
        position = match.end()
    return JsonPath(expression, tuple(steps))


def _step(node: Any, kind: str, arg: Any) -> list[Any]:
    if kind == "key":
        return [node[arg]] if isinstance(node, dict) and arg in node else []
    if kind == "index":
        if isinstance(node, list) and -len(node) <= arg < len(node):
            return [node[arg]]
        return []
    if kind == "star":
        if isinstance(node, dict):
            return list(node.values())
        return list(node) if isinstance(node, list) else []
    found: list[Any] = []
    _descend(node, arg, found)
    return found


def _descend(node: Any, name: str, found: list[Any]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if name == "*" or key == name:
                found.append(value)
            _descend(value, name, found)
    elif isinstance(node, list):
        for value in node:
            if name == "*":
                found.append(value)
            _descend(value, name, found)
