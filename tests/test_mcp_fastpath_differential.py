"""The MCP fast path answers exactly as the SDK kernel does (host/adapters/mcp/fastpath.py).

Two hosts run in process from the same configuration, one with the fast path and one with every
request going through the SDK kernel (``mcp_fast_path=False``). Each message of the corpus below,
valid and invalid ``tools/call`` and ``tools/list`` requests in both protocol eras, goes to both:
the status, the headers a client reads and the body (after JSON normalisation; each event of an
event stream) must be equal, and so must what reached the upstream. Each case also says whether
the fast path must answer it or leave it to the kernel, and the fast path's counter checks that.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from host.adapters.mcp import FAST_PATH
from host.testing import FakeUpstream, serve_in_process
from tests.test_mcp_features import _plugin  # the conformance fixture plugin, loaded from its file

MODERN, LEGACY = "2026-07-28", "2025-11-25"
ERAS = ("modern", "legacy", "no-version-header")
KEY = "fast-guard-key-0123456789abcdef"
BOTH = "application/json, text/event-stream"
# What a client reads besides the body (X-Request-Id differs per request by design).
COMPARED_HEADERS = ("Content-Type", "X-Host-Mock", "Allow", "WWW-Authenticate", "Cache-Control")
ABSENT = object()

CAPABILITY = """
naftiko: 1.0.0-alpha2
info: {label: Notes, description: Notes kept by an upstream API}
binds:
- namespace: env
  keys: {GUARD_KEY: CAP_GUARD_KEY}
capability:
  exposes:
  - type: mcp
    namespace: notes-mcp
    tools:
    - name: get-note
      description: One note by id.
      call: notes.get-note
      inputParameters:
      - {name: id, type: string, required: true, description: The note's id}
      with: {id: '{{id}}'}
    - name: odd-numbers
      description: A document with long integers, floats, nulls and text beyond ASCII.
      call: notes.odd-numbers
    - name: broken-note
      description: An upstream that fails.
      call: notes.broken
    - name: missing-note
      description: An upstream that answers 404 with a message.
      call: notes.missing
  - type: mcp
    namespace: guarded-mcp
    authentication: {type: apikey, key: X-Guard-Key, value: '{{GUARD_KEY}}', placement: header}
    tools:
    - name: guarded-note
      description: A guarded tool.
      call: notes.get-note
      with: {id: guarded}
  consumes:
  - type: http
    namespace: notes
    baseUri: http://127.0.0.1:9/api
    resources:
    - path: /notes/{{id}}
      name: note
      operations:
      - {method: GET, name: get-note}
    - path: /odd
      name: odd
      operations:
      - {method: GET, name: odd-numbers}
    - path: /broken
      name: broken
      operations:
      - {method: GET, name: broken}
    - path: /missing
      name: missing
      operations:
      - {method: GET, name: missing}
"""

ODD_DOCUMENT = {
    "big": 2**70,
    "negative": -(2**65),
    "float": 0.1,
    "exponent": 1e300,
    "nested": {"none": None, "list": [1, None, "é✓", {"deep": [True, False]}]},
    "text": "Grüße \u2028 \U0001f600",
}


@dataclass
class Pair:
    fast: TestClient[Any, Any]
    kernel: TestClient[Any, Any]
    upstream: FakeUpstream
    served: Any  # the fast host's FastPath (its counter)


@pytest.fixture
async def pair(tmp_path: Path, fake_upstream: FakeUpstream) -> AsyncIterator[Pair]:
    (tmp_path / "notes.yaml").write_text(CAPABILITY)
    fake_upstream.route("GET", "/api/notes/{id}", json={"id": "n1", "text": "buy milk", "tags": None})
    fake_upstream.route("GET", "/api/odd", body=_odd_json(), content_type="application/json")
    fake_upstream.route("GET", "/api/broken", status=500, json={"message": "boom", "errors": {"id": "bad"}})
    fake_upstream.route("GET", "/api/missing", status=404, json={"message": "no such note"})
    config = {
        "capabilities": [{"path": str(tmp_path / "notes.yaml")}],
        "consumes": {"notes": {"base_uri": fake_upstream.url + "/api", "retries": 0}},
    }
    environ = {"CAP_GUARD_KEY": KEY}
    plugins = [("conformance", _plugin())]
    async with (
        serve_in_process(config, environ, extra_plugins=plugins, discover=False) as fast,
        serve_in_process(
            config, environ, extra_plugins=plugins, discover=False, mcp_fast_path=False
        ) as kernel,
    ):
        assert kernel.host.mcp.get(FAST_PATH) is None
        yield Pair(fast.mcp, kernel.mcp, fake_upstream, fast.host.mcp[FAST_PATH])


def _odd_json() -> bytes:
    return json.dumps(ODD_DOCUMENT, ensure_ascii=False).encode()


@dataclass(frozen=True)
class Case:
    """One message; ``params`` without the 2026-07-28 envelope, which each era adds (or not)."""

    label: str
    fast: bool | tuple[str, ...]  # whether (or in which eras) the fast path answers it, not the kernel
    params: Any = ABSENT
    method: str = "tools/call"
    meta: dict[str, Any] = field(default_factory=dict)  # more _meta keys
    headers: dict[str, str | None] = field(default_factory=dict)  # None removes a header
    request_id: Any = 1
    raw: bytes | None = None  # the body as it is, instead of the built message
    eras: tuple[str, ...] = ERAS
    message: dict[str, Any] | None = None  # the message as it is (no envelope added)


def _call(name: str, arguments: Any = ABSENT, **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, **extra}
    if arguments is not ABSENT:
        params["arguments"] = arguments
    return params


GUARD = {"X-Guard-Key": KEY}
CASES = [
    # plain calls: the fast path's own
    Case("mocked text tool", True, _call("test_simple_text", {})),
    Case("upstream JSON", True, _call("get-note", {"id": "n1"})),
    Case("no arguments key", True, _call("test_simple_text")),
    Case("missing required argument", True, _call("get-note", {})),
    Case("invalid argument type", True, _call("get-note", {"id": 5})),
    Case("unknown argument", True, _call("get-note", {"id": "n1", "colour": "red"})),
    Case("upstream 500", True, _call("broken-note", {})),
    Case("upstream 404 with a message", True, _call("missing-note", {})),
    Case("tool error (400)", True, _call("test_error_handling", {})),
    Case("long integers, floats, nulls, unicode", True, _call("odd-numbers", {})),
    Case("image content", True, _call("test_image_content", {})),
    Case("audio content", True, _call("test_audio_content", {})),
    Case("embedded resource", True, _call("test_embedded_resource", {})),
    Case("mixed content", True, _call("test_multiple_content_types", {})),
    Case("guarded tool without its key", True, _call("guarded-note", {})),
    Case("guarded tool with its key", True, _call("guarded-note", {}), headers=GUARD),
    Case("guarded tool with a wrong key", True, _call("guarded-note", {}), headers={"X-Guard-Key": "nope"}),
    Case("JSON only accepted", True, _call("test_simple_text", {}), headers={"Accept": "application/json"}),
    Case("no Accept header", True, _call("test_simple_text", {}), headers={"Accept": None}),
    Case(
        "a session id on a stateless server",
        True,
        _call("get-note", {"id": "n1"}),
        headers={"Mcp-Session-Id": "abc"},
    ),
    Case("string id", True, _call("get-note", {"id": "n1"}), request_id="req-1"),
    Case("id beyond 64 bits", True, _call("get-note", {"id": "n1"}), request_id=2**70),
    Case("negative id", True, _call("get-note", {"id": "n1"}), request_id=-3),
    Case(
        "log level opted in, logs over SSE",
        True,
        _call("test_tool_with_logging", {}),
        meta={"io.modelcontextprotocol/logLevel": "info"},
    ),
    Case(
        "log level above the logs",
        True,
        _call("test_tool_with_logging", {}),
        meta={"io.modelcontextprotocol/logLevel": "error"},
    ),
    Case("logging tool, no level", True, _call("test_tool_with_logging", {})),
    Case(
        "logging tool, JSON only",
        True,
        _call("test_tool_with_logging", {}),
        headers={"Accept": "application/json"},
    ),
    Case("progress tool without a token", True, _call("test_tool_with_progress", {})),
    Case(
        "client info in the envelope",
        True,
        _call("test_simple_text", {}),
        meta={"io.modelcontextprotocol/clientInfo": {"name": "c", "version": "1"}},
    ),
    Case(
        "header parameter that matches",
        True,
        _call("test_header_param", {"region": "eu"}),
        headers={"Mcp-Param-Region": "eu"},
    ),
    # the kernel's: it validates, or reproduces what this path does not
    Case("unknown tool", False, _call("no-such-tool", {})),
    Case("arguments null", False, _call("get-note", None)),
    Case("arguments a list", False, _call("get-note", [1])),
    Case("arguments a string", False, _call("get-note", "id=n1")),
    Case("name a number", False, {"name": 5, "arguments": {}}),
    Case("name missing", False, {"arguments": {}}),
    Case("no params", False),
    Case("extra params field", False, _call("get-note", {"id": "n1"}, extra=1)),
    Case("progress token", False, _call("test_tool_with_progress", {}), meta={"progressToken": "p1"}),
    Case("unknown _meta key", False, _call("test_simple_text", {}), meta={"example.com/trace": "x"}),
    Case(
        # The handshake era's schema has no log level key: the kernel ignores it, so does the fast path.
        "invalid log level",
        ("legacy", "no-version-header"),
        _call("test_tool_with_logging", {}),
        meta={"io.modelcontextprotocol/logLevel": "loud"},
    ),
    Case(
        "client capabilities malformed",
        False,
        _call("test_simple_text", {}),
        meta={"io.modelcontextprotocol/clientCapabilities": {"sampling": 5}},
        eras=("modern",),
    ),
    Case("requestState", False, _call("test_simple_text", {}, requestState="x")),
    Case("a tool needing client capabilities", False, _call("test_missing_capability", {})),
    Case("a tool asking for input", False, _call("test_input_required_result_elicitation", {})),
    Case("task-augmented call", False, _call("test_simple_text", {}, task={"ttl": 1000})),
    # checks before both paths
    Case("params a list", False, ["get-note"]),
    Case("params a string", False, "get-note"),
    Case("id true", False, _call("get-note", {"id": "n1"}), request_id=True),
    Case("id null", False, _call("get-note", {"id": "n1"}), request_id=None),
    Case("id a float", False, _call("get-note", {"id": "n1"}), request_id=1.5),
    Case("id an object", False, _call("get-note", {"id": "n1"}), request_id={"a": 1}),
    Case(
        "notification",
        False,
        message={"jsonrpc": "2.0", "method": "tools/call", "params": _call("test_simple_text", {})},
    ),
    Case("a client response", False, message={"jsonrpc": "2.0", "id": 4, "result": {}}),
    Case(
        "jsonrpc 1.0",
        False,
        message={"jsonrpc": "1.0", "id": 1, "method": "tools/call", "params": _call("test_simple_text", {})},
    ),
    Case("batch", False, raw=b'[{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}]'),
    Case("parse error", False, raw=b'{"jsonrpc": "2.0", "id": 1,'),
    Case(
        "not UTF-8",
        False,
        raw=b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "\xff"}}',
    ),
    Case(
        "too deep",
        False,
        raw=b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"x": '
        + b"[" * 80
        + b"]" * 80
        + b"}}",
    ),
    Case(
        "unsupported protocol version",
        False,
        _call("test_simple_text", {}),
        headers={"MCP-Protocol-Version": "1999-01-01"},
    ),
    Case(
        "wrong Mcp-Name",
        False,
        _call("test_simple_text", {}),
        headers={"Mcp-Name": "other"},
        eras=("modern",),
    ),
    Case(
        "wrong Mcp-Method",
        False,
        _call("test_simple_text", {}),
        headers={"Mcp-Method": "tools/list"},
        eras=("modern",),
    ),
    Case(
        "Mcp-Method missing",
        False,
        _call("test_simple_text", {}),
        headers={"Mcp-Method": None},
        eras=("modern",),
    ),
    Case(
        "header parameter that differs",
        False,
        _call("test_header_param", {"region": "eu"}),
        headers={"Mcp-Param-Region": "us"},
        eras=("modern",),
    ),
    Case("Accept without JSON", False, _call("test_simple_text", {}), headers={"Accept": "text/html"}),
    Case(
        "Content-Type not JSON", False, _call("test_simple_text", {}), headers={"Content-Type": "text/plain"}
    ),
    # tools/list
    Case("list", True, {}, method="tools/list"),
    Case("list without params", True, method="tools/list", eras=("legacy", "no-version-header")),
    Case("list with the guard key", True, {}, method="tools/list", headers=GUARD),
    Case(
        "list with a log level",
        True,
        {},
        method="tools/list",
        meta={"io.modelcontextprotocol/logLevel": "debug"},
    ),
    Case("list with a cursor", False, {"cursor": "abc"}, method="tools/list"),
    Case("list with an extra field", False, {"extra": True}, method="tools/list"),
    Case("list with params null", True, None, method="tools/list", eras=("legacy", "no-version-header")),
    # other methods stay the kernel's
    Case("ping", False, {}, method="ping"),
    Case("resources/list", False, {}, method="resources/list"),
]


def _message(case: Case, era: str) -> tuple[bytes, dict[str, str]]:
    headers: dict[str, str] = {"Content-Type": "application/json", "Accept": BOTH}
    if era == "modern":
        headers.update({"MCP-Protocol-Version": MODERN, "Mcp-Method": case.method})
    elif era == "legacy":
        headers["MCP-Protocol-Version"] = LEGACY
    params = case.params
    if isinstance(params, dict):
        params = dict(params)
        meta = dict(case.meta)
        if era == "modern":
            meta = {
                "io.modelcontextprotocol/protocolVersion": MODERN,
                "io.modelcontextprotocol/clientCapabilities": {},
                **meta,
            }
        if meta:
            params["_meta"] = meta
        if era == "modern" and isinstance(params.get("name"), str):
            headers["Mcp-Name"] = params["name"]
    for name, value in case.headers.items():
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    if case.raw is not None:
        return case.raw, headers
    message = case.message
    if message is None:
        message = {"jsonrpc": "2.0", "id": case.request_id, "method": case.method}
        if params is not ABSENT:
            message["params"] = params
    return json.dumps(message).encode(), headers


def _normalised(kind: str, text: str) -> Any:
    if kind == "application/json":
        return json.loads(text)
    if kind == "text/event-stream":
        return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]
    return text


async def _answer(client: TestClient[Any, Any], body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    async with client.post("/mcp", data=body, headers=headers) as response:
        text = await response.text()
        kind = response.headers.get("Content-Type", "").split(";")[0]
        return {
            "status": response.status,
            "headers": {name: response.headers.get(name) for name in COMPARED_HEADERS},
            "body": _normalised(kind, text),
        }


def _upstream_calls(pair: Pair, start: int) -> list[tuple[str, str, str]]:
    return [(r.method, r.path, r.body.decode()) for r in pair.upstream.requests[start:]]


MESSAGES = [(case, era) for case in CASES for era in ERAS if era in case.eras]


@pytest.mark.parametrize(("case", "era"), MESSAGES, ids=[f"{case.label}-{era}" for case, era in MESSAGES])
async def test_fast_path_answers_as_the_kernel(pair: Pair, case: Case, era: str) -> None:
    body, headers = _message(case, era)
    served, start = pair.served.served, len(pair.upstream.requests)
    fast = await _answer(pair.fast, body, headers)
    fast_calls = _upstream_calls(pair, start)
    taken = case.fast if isinstance(case.fast, bool) else era in case.fast
    assert pair.served.served - served == (1 if taken else 0), "the fast path was (not) taken"
    start = len(pair.upstream.requests)
    kernel = await _answer(pair.kernel, body, headers)
    assert fast == kernel
    assert fast_calls == _upstream_calls(pair, start)


async def test_the_corpus_reaches_both_paths_and_every_outcome(pair: Pair) -> None:
    """The corpus is not trivially equal: results, tool errors, JSON-RPC errors, 202s and streams."""
    seen: set[str] = set()
    for case in CASES:
        body, headers = _message(case, "legacy")
        answer = await _answer(pair.fast, body, headers)
        document = answer["body"]
        if answer["status"] == 202:
            seen.add("accepted")
        elif isinstance(document, list):
            seen.add("stream")
        elif "error" in document:
            seen.add("rpc error")
        elif document["result"].get("isError"):
            seen.add("tool error")
        elif "tools" in document["result"]:
            seen.add("list")
        else:
            seen.add("result")
    assert seen == {"accepted", "stream", "rpc error", "tool error", "list", "result"}


async def test_the_modern_fast_answer_is_stamped_and_complete(pair: Pair) -> None:
    body, headers = _message(CASES[1], "modern")
    answer = await _answer(pair.fast, body, headers)
    result = answer["body"]["result"]
    assert result["resultType"] == "complete"
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"]
    assert result["structuredContent"] == {"id": "n1", "text": "buy milk", "tags": None}
