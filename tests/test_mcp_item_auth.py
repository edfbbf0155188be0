"""A capability file's own ``authentication`` covers every MCP item of that capability.

Tools, resources, resource templates, prompts and completion are refused without the
capability's credential (nothing reaches the upstream), and the list methods leave out
the items a caller may not use, so another capability's items stay usable by everyone.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from host.testing import FakeUpstream, serve_in_process

KEY = "guard-key-0123456789abcdef"
HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
WITH_KEY = {**HEADERS, "X-Guard-Key": KEY}

CAPABILITY = """
naftiko: 1.0.0-alpha2
info: {label: Guarded items, description: Every MCP item of one adapter needs the adapter's key}
binds:
- namespace: env
  keys: {GUARD_KEY: CAP_GUARD_KEY}
capability:
  exposes:
  - type: mcp
    namespace: guarded-mcp
    authentication: {type: apikey, key: X-Guard-Key, value: '{{GUARD_KEY}}', placement: header}
    tools:
    - name: guarded-tool
      description: A guarded tool.
      call: records.get-record
      with: {id: tool}
    resources:
    - name: guarded-record
      uri: data://guarded/latest
      call: records.get-record
      with: {id: latest}
    - name: guarded-by-id
      uri: data://guarded/{id}
      call: records.get-record
      with: {id: '{{id}}'}
    - name: guarded-readme
      uri: data://guarded-readme
      mimeType: text/plain
      location: file:///./readme.txt
    prompts:
    - name: guarded-prompt
      description: A guarded prompt.
      arguments: [{name: topic, required: true}]
      template: [{role: user, content: 'Tell me about {{topic}}'}]
  - type: mcp
    namespace: open-mcp
    tools:
    - name: open-tool
      description: An open tool.
      call: records.get-record
      with: {id: open}
    resources:
    - name: open-by-id
      uri: data://open/{id}
      call: records.get-record
      with: {id: '{{id}}'}
    prompts:
    - name: open-prompt
      description: An open prompt.
      template: [{role: user, content: Hello}]
  consumes:
  - type: http
    namespace: records
    baseUri: http://127.0.0.1:9/v1
    resources:
    - path: /records/{{id}}
      name: records
      operations:
      - method: GET
        name: get-record
"""


@pytest.fixture
async def mcp(tmp_path: Path, fake_upstream: FakeUpstream) -> AsyncIterator[TestClient[Any, Any]]:
    (tmp_path / "guarded.yaml").write_text(CAPABILITY)
    (tmp_path / "readme.txt").write_text("guarded readme")
    fake_upstream.route("GET", "/v1/records/{id}", json={"record": "secret data"})
    config = {
        "capabilities": [{"path": str(tmp_path / "guarded.yaml")}],
        "consumes": {"records": {"base_uri": fake_upstream.url + "/v1", "retries": 0}},
    }
    async with serve_in_process(config, {"CAP_GUARD_KEY": KEY}, discover=False) as served:
        yield served.mcp


async def _rpc(
    client: TestClient[Any, Any], method: str, params: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    response = await client.post("/mcp", data=json.dumps(body), headers=headers)
    answer: dict[str, Any] = await response.json()
    return answer


def _refused(answer: dict[str, Any]) -> bool:
    error = answer.get("error")
    return isinstance(error, dict) and "Unauthorized" in error["message"]


ITEM_CALLS = [
    ("resources/read", {"uri": "data://guarded/latest"}),
    ("resources/read", {"uri": "data://guarded/7"}),
    ("resources/read", {"uri": "data://guarded-readme"}),
    ("prompts/get", {"name": "guarded-prompt", "arguments": {"topic": "x"}}),
    (
        "completion/complete",
        {"ref": {"type": "ref/prompt", "name": "guarded-prompt"}, "argument": {"name": "topic", "value": ""}},
    ),
    (
        "completion/complete",
        {
            "ref": {"type": "ref/resource", "uri": "data://guarded/{id}"},
            "argument": {"name": "id", "value": ""},
        },
    ),
]


@pytest.mark.parametrize(("method", "params"), ITEM_CALLS, ids=lambda v: v if isinstance(v, str) else "")
async def test_every_item_of_a_guarded_capability_is_refused_without_its_credential(
    mcp: TestClient[Any, Any], fake_upstream: FakeUpstream, method: str, params: dict[str, Any]
) -> None:
    for headers in (HEADERS, {**HEADERS, "X-Guard-Key": "wrong-key-0123456789abcd"}):
        answer = await _rpc(mcp, method, params, headers)
        assert _refused(answer), answer
        assert "secret data" not in json.dumps(answer) and "guarded readme" not in json.dumps(answer)
    assert fake_upstream.requests == [], "nothing reaches the upstream"
    answer = await _rpc(mcp, method, params, WITH_KEY)
    assert "result" in answer, answer


async def test_a_guarded_tool_is_refused_as_before(
    mcp: TestClient[Any, Any], fake_upstream: FakeUpstream
) -> None:
    answer = await _rpc(mcp, "tools/call", {"name": "guarded-tool", "arguments": {}}, HEADERS)
    assert answer["result"]["isError"] and "Unauthorized" in answer["result"]["content"][0]["text"]
    assert fake_upstream.requests == []
    answer = await _rpc(mcp, "tools/call", {"name": "guarded-tool", "arguments": {}}, WITH_KEY)
    assert not answer["result"].get("isError") and answer["result"]["structuredContent"] == {
        "record": "secret data"
    }


LISTS = [
    ("tools/list", "tools", "name", "guarded-tool", "open-tool"),
    ("resources/list", "resources", "name", "guarded-record", None),
    ("resources/list", "resources", "name", "guarded-readme", None),
    ("resources/templates/list", "resourceTemplates", "name", "guarded-by-id", "open-by-id"),
    ("prompts/list", "prompts", "name", "guarded-prompt", "open-prompt"),
]


@pytest.mark.parametrize(("method", "key", "field", "guarded", "open_item"), LISTS)
async def test_lists_leave_out_what_the_caller_may_not_use(
    mcp: TestClient[Any, Any], method: str, key: str, field: str, guarded: str, open_item: str | None
) -> None:
    anonymous = [item[field] for item in (await _rpc(mcp, method, {}, HEADERS))["result"][key]]
    assert guarded not in anonymous
    if open_item is not None:
        assert open_item in anonymous, "another capability's items stay listed"
    entitled = [item[field] for item in (await _rpc(mcp, method, {}, WITH_KEY))["result"][key]]
    assert guarded in entitled


async def test_open_items_need_no_credential(mcp: TestClient[Any, Any], fake_upstream: FakeUpstream) -> None:
    answer = await _rpc(mcp, "resources/read", {"uri": "data://open/3"}, HEADERS)
    assert json.loads(answer["result"]["contents"][0]["text"]) == {"record": "secret data"}
    assert [r.path for r in fake_upstream.requests] == ["/v1/records/3"]
    answer = await _rpc(mcp, "prompts/get", {"name": "open-prompt"}, HEADERS)
    assert answer["result"]["messages"][0]["content"]["text"] == "Hello"


async def test_a_2026_07_28_refusal_is_http_403_with_the_error(
    mcp: TestClient[Any, Any], fake_upstream: FakeUpstream
) -> None:
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    params = {"uri": "data://guarded/7", "_meta": meta}
    body = {"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": params}
    headers = {
        **HEADERS,
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "resources/read",
        "Mcp-Name": "data://guarded/7",
    }
    response = await mcp.post("/mcp", data=json.dumps(body), headers=headers)
    assert response.status == 403
    assert _refused(await response.json())
    assert fake_upstream.requests == []
