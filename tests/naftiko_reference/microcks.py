"""The tutorial's Microcks mocks (``.github/microcks/*.yaml``) answered by a FakeUpstream.

Microcks picks an OpenAPI example per request: ``URI_PARAMS`` by a query value (``?status=active``),
``URI_PARTS`` by a path value (``/imo_number=IMO-9321483``), else the named fallback or the first 2xx
example; a ``URI_PARTS`` value with no example is the operation's 404 example. Microcks templates in an
example, ``{{ request.body/field }}``, are filled from the request's JSON body.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from host.testing import FakeResponse, FakeUpstream, RecordedRequest


def serve_microcks(fake: FakeUpstream, api_file: Path) -> None:
    document = yaml.safe_load(api_file.read_text())
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and "responses" in operation:
                fake.route(method.upper(), path, handler=_dispatcher(operation))


_TEMPLATE = re.compile(r"\{\{\s*request\.body/([\w/]+)\s*\}\}")


def _render(body: str, request: RecordedRequest) -> str:
    """Fill ``{{ request.body/a/b }}`` from the request's JSON body (as text, inside the JSON string)."""
    document = request.json() if _TEMPLATE.search(body) else None

    def value(match: re.Match[str]) -> str:
        node: Any = document
        for key in match[1].split("/"):
            node = node.get(key) if isinstance(node, dict) else None
        return "" if node is None else json.dumps(node)[1:-1] if isinstance(node, str) else json.dumps(node)

    return _TEMPLATE.sub(value, body)


def _examples(operation: dict[str, Any]) -> list[tuple[int, str, Any]]:
    found = []
    for status, response in operation["responses"].items():
        for content in (response.get("content") or {}).values():
            for name, example in (content.get("examples") or {}).items():
                found.append((int(status), name, example.get("value")))
    return found


def _dispatcher(operation: dict[str, Any]) -> Callable[[RecordedRequest], FakeResponse]:
    examples = _examples(operation)
    rules = operation.get("x-microcks-operation") or {}
    kind, key, fallback = rules.get("dispatcher"), rules.get("dispatcherRules"), None
    if kind == "FALLBACK":
        inner = json.loads(key)
        kind, key, fallback = inner["dispatcher"], inner["dispatcherRules"], inner["fallback"]

    def answer(request: RecordedRequest) -> FakeResponse:
        wanted = None
        if kind == "URI_PARAMS" and request.query.get(key):
            wanted = f"?{key}={request.query[key]}"
        elif kind == "URI_PARTS":
            wanted = f"/{key}={request.path_params.get(key, '')}"
        chosen = next((e for e in examples if e[1] == wanted), None)
        if chosen is None and kind == "URI_PARTS":
            chosen = next((e for e in examples if e[0] == 404), None)
        if chosen is None:
            chosen = next((e for e in examples if e[1] == fallback), None) or min(examples)
        status, _, value = chosen
        body = value if isinstance(value, str) else json.dumps(value)
        return FakeResponse(status, _render(body, request).encode())

    return answer
