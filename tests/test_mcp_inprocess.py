"""The MCP app in process (host.testing.serve_in_process: the builder and aiohttp's TestServer)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from host.testing import FakeUpstream, serve_in_process

HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}

CAPABILITY = """
naftiko: 1.0.0-alpha2
info: {label: Notes, description: Notes kept by an upstream API}
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
    - name: list-notes
      label: List notes
      description: Every note.
      call: notes.list-notes
      hints: {readOnly: true}
    - name: count-notes
      description: How many notes there are.
      call: notes.list-notes
    prompts:
    - name: summarise
      description: Summarise notes.
      arguments:
      - {name: data, required: true}
      - {name: format, required: false}
      template:
      - {role: user, content: 'Summarise {{data}} as {{format}}. Keep {braces} and {{unknown}} as written.'}
  consumes:
  - type: http
    namespace: notes
    baseUri: http://127.0.0.1:9/api
    resources:
    - path: /notes/{{id}}
      name: note
      operations:
      - {method: GET, name: get-note}
    - path: /notes
      name: notes
      operations:
      - {method: GET, name: list-notes}
"""


@pytest.fixture
async def mcp(tmp_path: Path, fake_upstream: FakeUpstream) -> AsyncIterator[TestClient[Any, Any]]:
    (tmp_path / "notes.yaml").write_text(CAPABILITY)
    config = {
        "capabilities": [{"path": str(tmp_path / "notes.yaml")}],
        "consumes": {"notes": {"base_uri": fake_upstream.url + "/api", "retries": 0}},
    }
    async with serve_in_process(config, {}, discover=False) as served:
        yield served.mcp


async def _rpc(
    client: TestClient[Any, Any], method: str, params: dict[str, Any], headers: dict[str, str] = HEADERS
) -> tuple[int, dict[str, Any]]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    response = await client.post("/mcp", data=json.dumps(body), headers=headers)
    answer: dict[str, Any] = await response.json()
    return response.status, answer


async def test_tools_list_describes_the_capabilitys_tools(mcp: TestClient[Any, Any]) -> None:
    status, answer = await _rpc(mcp, "tools/list", {})
    assert status == 200
    tools = {tool["name"]: tool for tool in answer["result"]["tools"]}
    assert set(tools) == {"get-note", "list-notes", "count-notes"}
    schema = tools["get-note"]["inputSchema"]
    assert schema["type"] == "object" and schema["required"] == ["id"]
    assert tools["list-notes"]["annotations"] == {"title": "List notes", "readOnlyHint": True}


async def test_a_tool_without_hints_or_label_has_no_annotations(mcp: TestClient[Any, Any]) -> None:
    _, answer = await _rpc(mcp, "tools/list", {})
    tools = {tool["name"]: tool for tool in answer["result"]["tools"]}
    assert "annotations" not in tools["count-notes"] and "annotations" not in tools["get-note"]


async def test_tools_call_reaches_the_upstream_and_returns_its_answer(
    mcp: TestClient[Any, Any], fake_upstream: FakeUpstream
) -> None:
    fake_upstream.route("GET", "/api/notes/{id}", json={"id": "n1", "text": "buy milk"})
    status, answer = await _rpc(mcp, "tools/call", {"name": "get-note", "arguments": {"id": "n1"}})
    assert status == 200
    result = answer["result"]
    assert not result.get("isError") and result["structuredContent"] == {"id": "n1", "text": "buy milk"}
    assert [(r.method, r.path) for r in fake_upstream.requests] == [("GET", "/api/notes/n1")]


async def test_tools_call_with_invalid_arguments_sends_nothing(
    mcp: TestClient[Any, Any], fake_upstream: FakeUpstream
) -> None:
    _, answer = await _rpc(mcp, "tools/call", {"name": "get-note", "arguments": {}})
    assert (
        answer["result"]["isError"] and "nothing was sent upstream" in answer["result"]["content"][0]["text"]
    )
    assert fake_upstream.requests == []


async def test_an_upstream_error_is_a_tool_error(
    mcp: TestClient[Any, Any], fake_upstream: FakeUpstream
) -> None:
    fake_upstream.route("GET", "/api/notes/{id}", status=404, json={"message": "no such note"})
    _, answer = await _rpc(mcp, "tools/call", {"name": "get-note", "arguments": {"id": "zz"}})
    assert answer["result"]["isError"] and "no such note" in answer["result"]["content"][0]["text"]


@pytest.mark.parametrize(
    "content_type", ["application/jsonx", "application/json-patch+json", "application/json5", "text/json"]
)
async def test_only_the_json_media_type_is_accepted(
    mcp: TestClient[Any, Any], fake_upstream: FakeUpstream, content_type: str
) -> None:
    status, answer = await _rpc(
        mcp, "tools/call", {"name": "list-notes", "arguments": {}}, {**HEADERS, "Content-Type": content_type}
    )
    assert status == 415 and "application/json" in answer["error"]["message"]
    assert fake_upstream.requests == []


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON", "application/json ;"]
)
async def test_the_json_media_type_may_carry_parameters(mcp: TestClient[Any, Any], content_type: str) -> None:
    status, answer = await _rpc(mcp, "tools/list", {}, {**HEADERS, "Content-Type": content_type})
    assert status == 200 and answer["result"]["tools"]


async def test_a_prompt_fills_only_the_declared_arguments_it_was_given(mcp: TestClient[Any, Any]) -> None:
    arguments = {"data": "the {{format}} notes", "braces": "INJECTED", "unknown": "INJECTED"}
    status, answer = await _rpc(mcp, "prompts/get", {"name": "summarise", "arguments": arguments})
    assert status == 200, answer
    text = answer["result"]["messages"][0]["content"]["text"]
    # A missing optional argument, undeclared names and single braces stay exactly as written; a value
    # is never filled again.
    assert text == ("Summarise the {{format}} notes as {{format}}. Keep {braces} and {{unknown}} as written.")
