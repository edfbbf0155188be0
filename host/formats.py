"""Decoding upstream bodies by their declared format (a capability's ``outputRawFormat``).

A format may carry its ``outputSchema`` after a colon (:func:`with_schema`): ``html:table.products``
chooses the HTML tables by a CSS selector, ``markdown:Release`` the Markdown sections by heading prefix;
``avro:/abs/x.avsc`` and ``protobuf:/abs/x.proto`` name the schema file (:mod:`host.binary_formats`).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import xml.etree.ElementTree as ElementTree
from typing import Any

import yaml

from host import binary_formats

TEXT_FORMATS = frozenset({"text", "html", "markdown"})
SCHEMA_FORMATS = frozenset({"html", "markdown", *binary_formats.BINARY_FORMATS})  # outputSchema shapes these
DELIMITERS = {"csv": ",", "tsv": "\t", "psv": "|"}
KNOWN_FORMATS = frozenset({"json", "xml", "yaml", "binary", *TEXT_FORMATS, *DELIMITERS, *SCHEMA_FORMATS})


def with_schema(format: str, schema: str | None) -> str:
    """``format`` carrying its ``outputSchema``, for the formats that use one."""
    return f"{format}:{schema}" if schema and format in SCHEMA_FORMATS else format


def decode(body: bytes, format: str) -> Any:
    """Decode ``body``; ``None`` when empty. Raises ``ValueError`` when it does not parse."""
    if not body:
        return None
    format, _, schema = format.partition(":")
    if format == "json":
        return json.loads(body)
    if format in ("html", "markdown"):
        from host import markup  # html.parser and its entity tables: only for capabilities that use them

        return (
            markup.html_document(body.decode("utf-8", "replace"), schema or None)
            if format == "html"
            else markup.markdown_document(body.decode("utf-8-sig", "replace"), schema or None)
        )
    if format in binary_formats.BINARY_FORMATS:
        return binary_formats.decode(body, format, schema or None)
    if format in TEXT_FORMATS:
        return body.decode("utf-8", "replace")
    if format == "xml":
        try:
            root = ElementTree.fromstring(body)  # expat >= 2.4 refuses entity expansion bombs
        except ElementTree.ParseError as exc:
            raise ValueError(f"invalid XML: {exc}") from None
        return _element(root)  # the root element itself is dropped, as the reference (Jackson) does
    if format == "yaml":
        try:
            return yaml.safe_load(body)
        except yaml.YAMLError as exc:
            raise ValueError(f"invalid YAML: {exc}") from None
    if format in DELIMITERS:
        text = body.decode("utf-8-sig", "replace")
        return list(csv.DictReader(io.StringIO(text), delimiter=DELIMITERS[format]))
    # binary and anything unknown: keep the bytes, readable as base64
    return base64.b64encode(body).decode()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]  # drop the {namespace} ElementTree prefixes


def _element(element: ElementTree.Element) -> Any:
    children = list(element)
    text = (element.text or "").strip()
    if not children and not element.attrib:
        return text
    result: dict[str, Any] = {f"@{_local(k)}": v for k, v in element.attrib.items()}
    for child in children:
        key, value = _local(child.tag), _element(child)
        if key in result:
            existing = result[key]
            result[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            result[key] = value
    if text:
        result["#text"] = text
    return result
