"""The MCP port's HTTP rules: DNS-rebinding guard, methods, headers, JSON-RPC envelopes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import tratta_customer_sessions
from aiohttp.test_utils import TestClient

from host.config import ConsumeConfig, HostConfig
from host.testing import serve_in_process

JSON = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
MODERN = "2026-07-28"


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    config = HostConfig(consumes={"tratta-customer-sessions": ConsumeConfig(mock=True)})
    plugins = [("tratta", tratta_customer_sessions)]
    async with serve_in_process(config, extra_plugins=plugins, discover=False) as served:
        yield served.mcp


def modern_call(method: str, params: dict[str, Any] | None = None, *, request_id: int = 1) -> dict[str, Any]:
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {**(params or {}), "_meta": meta}}


def modern_headers(method: str, name: str | None = None) -> dict[str, str]:
    headers = {**JSON, "MCP-Protocol-Version": MODERN, "Mcp-Method": method}
    if name:
        headers["Mcp-Name"] = name
    return headers


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Host": "evil.example:80"}, 421),
        ({"Host": "127.0.0.1.evil.example:80"}, 421),
        ({"Origin": "http://evil.example"}, 403),
        ({"Origin": "http://localhost.evil.example:9090"}, 403),
        ({"Origin": "http://localhost:3000"}, 200),
        ({"Host": "localhost:9090"}, 200),
    ],
)
async def test_dns_rebinding_guard(
    client: TestClient[Any, Any], headers: dict[str, str], status: int
) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    resp = await client.post("/mcp", json=body, headers={**JSON, **headers})
    assert resp.status == status


@pytest.mark.parametrize(
    ("method", "headers", "data", "status", "code"),
    [
        ("GET", JSON, None, 405, None),
        ("DELETE", JSON, None, 405, None),
        ("POST", {**JSON, "Content-Type": "text/plain"}, b"{}", 415, None),
        ("POST", {**JSON, "Accept": "text/html"}, b'{"jsonrpc":"2.0","id":1,"method":"ping"}', 406, None),
        ("POST", JSON, b"{not json", 400, -32700),
        ("POST", JSON, b"[]", 400, -32600),
        ("POST", JSON, b'[{"jsonrpc":"2.0","id":1,"method":"ping"}]', 400, -32600),
        ("POST", JSON, b'{"jsonrpc":"1.0","id":1,"method":"ping"}', 400, -32600),
        ("POST", JSON, b'{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}', 400, -32600),
        ("POST", JSON, b'{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}', 400, -32600),
        ("POST", JSON, b'{"jsonrpc":"2.0","method":"notifications/initialized"}', 202, None),
        ("POST", JSON, b'{"jsonrpc":"2.0","id":1,"method":"no/such"}', 200, -32601),
    ],
)
async def test_http_and_envelope_errors(
    client: TestClient[Any, Any],
    method: str,
    headers: dict[str, str],
    data: bytes | None,
    status: int,
    code: int | None,
) -> None:
    resp = await client.request(method, "/mcp", data=data, headers=headers)
    assert resp.status == status
    if code is not None:
        assert (await resp.json())["error"]["code"] == code
    if status == 405:
        assert resp.headers["Allow"] == "POST"


async def test_body_limit_is_413(client: TestClient[Any, Any]) -> None:
    big = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"x": "y" * (1024 * 1024)}})
    resp = await client.post("/mcp", data=big, headers=JSON)
    assert resp.status == 413


async def test_modern_era_ladder(client: TestClient[Any, Any]) -> None:
    ok = await client.post("/mcp", json=modern_call("tools/list"), headers=modern_headers("tools/list"))
    assert ok.status == 200
    assert [t["name"] for t in (await ok.json())["result"]["tools"]] == ["create-customer-session"]

    future = modern_call("tools/list")
    future["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = "2099-01-01"
    unsupported = await client.post(
        "/mcp", json=future, headers={**modern_headers("tools/list"), "MCP-Protocol-Version": "2099-01-01"}
    )
    assert unsupported.status == 400
    error = (await unsupported.json())["error"]
    assert error["code"] == -32022 and MODERN in error["data"]["supported"]

    mismatch = await client.post("/mcp", json=modern_call("tools/list"), headers=modern_headers("tools/call"))
    assert mismatch.status == 400 and (await mismatch.json())["error"]["code"] == -32020

    unknown = await client.post(
        "/mcp",
        json=modern_call("tools/call", {"name": "nope", "arguments": {}}),
        headers=modern_headers("tools/call", "nope"),
    )
    assert (await unknown.json())["error"]["code"] == -32602

    call = modern_call(
        "tools/call", {"name": "create-customer-session", "arguments": {"body": {"customer_id": "c"}}}
    )
    called = await client.post(
        "/mcp", json=call, headers=modern_headers("tools/call", "create-customer-session")
    )
    assert called.status == 200 and called.headers["X-Host-Mock"] == "true"
    result = (await called.json())["result"]
    assert result["isError"] is False and result["structuredContent"]["data"]["id"]


async def test_legacy_initialize_negotiates(client: TestClient[Any, Any]) -> None:
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    resp = await client.post("/mcp", json=init, headers=JSON)
    result = (await resp.json())["result"]
    assert result["protocolVersion"] == "2025-06-18"
    assert result["capabilities"]["tools"] == {"listChanged": False}
    assert "Mcp-Session-Id" not in resp.headers  # stateless: any worker answers any request
