"""HTML and Markdown upstream bodies as documents an output mapping can read (``outputRawFormat``).

The shapes are the reference engine's: HTML gives ``{"tables": [[{header: cell}, ...], ...]}``, its
``outputSchema`` a CSS selector choosing the tables (``table.products``); Markdown gives
``{"frontMatter": {...}, "tables": [...], "sections": [{"heading", "level", "content"}]}``, its
``outputSchema`` a heading prefix choosing the sections. The HTML parser is the standard library's;
the selectors are the simple ones a capability needs: type, ``.class``, ``#id``, ``*``, descendant
combinators and ``,`` lists.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import yaml

# --- HTML ----------------------------------------------------------------------------------------

_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)
_IMPLIED_END = {"tr": {"tr", "td", "th"}, "td": {"td", "th"}, "th": {"td", "th"}, "p": {"p"}, "li": {"li"}}


@dataclass(eq=False)
class _Node:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[_Node | str] = field(default_factory=list)
    parent: _Node | None = None

    def elements(self) -> list[_Node]:
        """Every element below this one, in document order."""
        found: list[_Node] = []
        stack = [child for child in reversed(self.children) if isinstance(child, _Node)]
        while stack:
            node = stack.pop()
            found.append(node)
            stack.extend(child for child in reversed(node.children) if isinstance(child, _Node))
        return found

    def text(self) -> str:
        parts: list[str] = []
        stack: list[_Node | str] = [self]
        while stack:
            node = stack.pop()
            if isinstance(node, str):
                parts.append(node)
            else:
                stack.extend(reversed(node.children))
        return " ".join("".join(parts).split())


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Node("#document")
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        closes = _IMPLIED_END.get(tag, set())
        while self.current.tag in closes and self.current.parent is not None:
            self.current = self.current.parent  # an unclosed <td>, <tr>, <li> ends at its next sibling
        node = _Node(tag, {name: value or "" for name, value in attrs}, parent=self.current)
        self.current.children.append(node)
        if tag not in _VOID:
            self.current = node

    def handle_endtag(self, tag: str) -> None:
        node: _Node | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent  # a stray end tag is ignored

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


def html_document(text: str, selector: str | None = None) -> dict[str, Any]:
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    elements = builder.root.elements()
    chosen = [e for e in elements if _selected(e, selector)] if selector else elements
    tables: list[_Node] = []
    for element in chosen:
        candidates = (
            [element] if element.tag == "table" else [e for e in element.elements() if e.tag == "table"]
        )
        tables.extend(table for table in candidates if table not in tables)
    return {"tables": [_table_rows(table) for table in tables]}


def _table_rows(table: _Node) -> list[dict[str, str]]:
    """Data rows as ``{header: cell}``; the header is the first row with ``<th>`` cells, else row one."""
    rows = [
        [cell for cell in row.children if isinstance(cell, _Node) and cell.tag in {"td", "th"}]
        for row in _own(table, "tr")
    ]
    if not rows:
        return []
    header_index = next((i for i, row in enumerate(rows) if any(c.tag == "th" for c in row)), 0)
    header = [cell.text() for cell in rows[header_index]]
    # A later row holding a <th> is another header or a label row, not data (as in the reference).
    data = [row for row in rows[header_index + 1 :] if row and not any(c.tag == "th" for c in row)]
    return [_row(header, [cell.text() for cell in row]) for row in data]


def _row(header: list[str], cells: list[str]) -> dict[str, str]:
    """One row keyed by its header (a cell with no header name gets ``columnN``, as in the reference)."""
    return {name or f"column{i + 1}": cell for i, (name, cell) in enumerate(zip(header, cells, strict=False))}


def _own(table: _Node, tag: str) -> list[_Node]:
    """Elements ``tag`` of this table, not of a table nested in it."""
    found: list[_Node] = []
    stack = [child for child in reversed(table.children) if isinstance(child, _Node)]
    while stack:
        node = stack.pop()
        if node.tag == tag:
            found.append(node)
        if node.tag != "table":
            stack.extend(child for child in reversed(node.children) if isinstance(child, _Node))
    return found


_COMPOUND = re.compile(r"^(\*|[A-Za-z][A-Za-z0-9-]*)?((?:[.#][A-Za-z0-9_-]+)*)$")


def check_selector(selector: str) -> None:
    """Raise ``ValueError`` for a selector this module cannot apply (checked when a file loads)."""
    for group in selector.split(","):
        for compound in group.split():
            _matches(_Node("html"), compound)


def _selected(element: _Node, selector: str) -> bool:
    return any(_matches_chain(element, group.split()) for group in selector.split(",") if group.strip())


def _matches_chain(element: _Node, compounds: list[str]) -> bool:
    if not compounds or not _matches(element, compounds[-1]):
        return False
    ancestor = element.parent
    for compound in reversed(compounds[:-1]):
        while ancestor is not None and not _matches(ancestor, compound):
            ancestor = ancestor.parent
        if ancestor is None:
            return False
        ancestor = ancestor.parent
    return True


def _matches(element: _Node, compound: str) -> bool:
    match = _COMPOUND.match(compound)
    if match is None:
        raise ValueError(f"unsupported CSS selector {compound!r} (type, .class, #id and descendants)")
    tag, qualifiers = match.group(1), match.group(2)
    if tag and tag != "*" and element.tag != tag.lower():
        return False
    classes = element.attrs.get("class", "").split()
    for kind, name in re.findall(r"([.#])([A-Za-z0-9_-]+)", qualifiers):
        if (kind == "." and name not in classes) or (kind == "#" and element.attrs.get("id") != name):
            return False
    return True


# --- Markdown ------------------------------------------------------------------------------------

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_TABLE_SEPARATOR = re.compile(r"^\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?$")
_INLINE = [
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # images: their alt text
    (re.compile(r"\[([^\]]*)\]\([^)]*\)"), r"\1"),  # links: their text
    (re.compile(r"`([^`]*)`"), r"\1"),
    (re.compile(r"(\*\*|__)(.+?)\1"), r"\2"),
    (re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])"), r"\1"),
    (re.compile(r"(?<![\w_])_(?!\s)(.+?)(?<!\s)_(?![\w_])"), r"\1"),
]


def markdown_document(text: str, heading_prefix: str | None = None) -> dict[str, Any]:
    lines = text.replace("\r\n", "\n").split("\n")
    front_matter, lines = _front_matter(lines)
    tables: list[list[dict[str, str]]] = []
    sections: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    content: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        heading = _HEADING.match(line)
        if heading:
            _close(current, content, sections)
            current, content = {"heading": _plain(heading.group(2)), "level": len(heading.group(1))}, []
        elif (
            line.startswith("|")
            and index + 1 < len(lines)
            and _TABLE_SEPARATOR.match(lines[index + 1].strip())
        ):
            end = index + 2
            while end < len(lines) and lines[end].strip().startswith("|"):
                end += 1
            tables.append(_markdown_table(lines[index], lines[index + 2 : end]))
            index = end
            continue
        elif line:
            content.append(_plain(line))
        index += 1
    _close(current, content, sections)
    if heading_prefix:
        sections = [s for s in sections if str(s["heading"]).startswith(heading_prefix)]
    return {"frontMatter": front_matter, "tables": tables, "sections": sections}


def _front_matter(lines: list[str]) -> tuple[dict[str, Any], list[str]]:
    if not lines or lines[0].strip() != "---":
        return {}, lines
    end = next((i for i in range(1, len(lines)) if lines[i].strip() in {"---", "..."}), None)
    if end is None:
        return {}, lines
    try:
        data = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError:
        data = None
    return (_json_safe(data) if isinstance(data, dict) else {}), lines[end + 1 :]


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def _close(section: dict[str, Any] | None, content: list[str], sections: list[dict[str, Any]]) -> None:
    if section is not None:
        sections.append({**section, "content": " ".join(content)})


def _cells(line: str) -> list[str]:
    inner = line.strip().removeprefix("|").removesuffix("|")
    return [_plain(cell.strip()) for cell in re.split(r"(?<!\\)\|", inner)]


def _markdown_table(header_line: str, rows: list[str]) -> list[dict[str, str]]:
    header = _cells(header_line)
    return [_row(header, _cells(row)) for row in rows]


def _plain(text: str) -> str:
    for pattern, replacement in _INLINE:
        text = pattern.sub(replacement, text)
    return text.replace("\\|", "|")
