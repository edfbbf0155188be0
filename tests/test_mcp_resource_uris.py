"""Resource template URIs: a caller's value fills one path segment upstream, never a dot segment.

``data://records/%2e%2e`` must not become ``GET /v1/records/..`` (which a URL library or the
upstream resolves to ``GET /v1/``): a value that decodes to ``.`` or ``..`` is refused with
-32602 naming the parameter, and nothing is sent upstream.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from host.testing import FakeUpstream, serve_in_process

HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}

CAPABILITY = """
naftiko: 1.0.0-alpha2
info: {label: Records, description: Records read as MCP resources}
capability:
  exposes:
  - type: mcp
    namespace: records-mcp
    resources:
    - name: record
      uri: data://records/{id}
      call: records.get-record
      with: {id: '{{id}}'}
    - name: record-file
      uri: data://records/{id}/files/{file}
      call: records.get-file
      with: {id: '{{id}}', file: '{{file}}'}
  consumes:
  - type: http
    namespace: records
    baseUri: http://127.0.0.1:9/v1
    resources:
    - path: /records/{{id}}
      name: record
      operations:
      - {method: GET, name: get-record}
    - path: /records/{{id}}/files/{{file}}
      name: file
      operations:
      - {method: GET, name: get-file}
"""


@pytest.fixture
async def mcp(tmp_path: Path, fake_upstream: FakeUpstream) -> AsyncIterator[TestClient[Any, Any]]:
    (tmp_path / "records.yaml").write_text(CAPABILITY)
    fake_upstream.route("*", "*", json={"reached": True})
    config = {
        "capabilities": [{"path": str(tmp_path / "records.yaml")}],
        "consumes": {"records": {"base_uri": fake_upstream.url + "/v1", "retries": 0}},
    }
    async with serve_in_process(config, {}, discover=False) as served:
        yield served.mcp


async def _read(client: TestClient[Any, Any], uri: str) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": uri}}
    response = await client.post("/mcp", data=json.dumps(body), headers=HEADERS)
    answer: dict[str, Any] = await response.json()
    return answer


@pytest.mark.parametrize(
    ("uri", "parameter"),
    [
        ("data://records/..", "id"),
        ("data://records/.", "id"),
        ("data://records/%2e%2e", "id"),
        ("data://records/%2E%2e", "id"),
        ("data://records/%2e", "id"),
        ("data://records/.%2E", "id"),
        ("data://records/7/files/%2e%2e", "file"),
        ("data://records/%2e%2e/files/a", "id"),
    ],
)
async def test_a_dot_segment_value_is_refused_naming_the_parameter(
    mcp: TestClient[Any, Any], fake_upstream: FakeUpstream, uri: str, parameter: str
) -> None:
    answer = await _read(mcp, uri)
    error = answer.get("error")
    assert error is not None, answer
    assert error["code"] == -32602 and repr(parameter) in error["message"], error
    assert error["data"] == {"uri": uri, "parameter": parameter}
    assert fake_upstream.requests == [], "nothing reaches the upstream"


@pytest.mark.parametrize(
    ("uri", "upstream_path"),
    [
        ("data://records/42", "/v1/records/42"),
        ("data://records/a%20b", "/v1/records/a b"),
        ("data://records/...", "/v1/records/..."),
        ("data://records/..x", "/v1/records/..x"),
        ("data://records/7/files/report.pdf", "/v1/records/7/files/report.pdf"),
    ],
)
async def test_other_values_fill_their_segment(
    mcp: TestClient[Any, Any], fake_upstream: FakeUpstream, uri: str, upstream_path: str
) -> None:
    answer = await _read(mcp, uri)
    assert json.loads(answer["result"]["contents"][0]["text"]) == {"reached": True}
    assert [r.path for r in fake_upstream.requests] == [upstream_path]


async def test_an_encoded_slash_stays_inside_its_segment(
    mcp: TestClient[Any, Any], fake_upstream: FakeUpstream
) -> None:
    answer = await _read(mcp, "data://records/..%2F..%2Fadmin")
    assert "result" in answer, answer
    (request,) = fake_upstream.requests
    assert request.path.startswith("/v1/records/"), "the value never climbs out of the operation's path"
