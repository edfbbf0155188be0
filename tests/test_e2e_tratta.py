"""End to end: `host serve` as a process, the fake Tratta on a real port, real HTTP and MCP clients."""

from __future__ import annotations

import json
import uuid
from typing import Any

import aiohttp
import pytest
from mcp import Client

from host.testing import FakeUpstream, HostServer
from tests.conftest import API_KEY, calls_for

PATH = "/v1/customer-sessions"


def unique(prefix: str = "cust") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def post(
    host: HostServer, body: Any, *, raw: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    data = raw if raw is not None else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            host.rest_url + PATH, data=data, headers={"Content-Type": "application/json", **(headers or {})}
        ) as resp,
    ):
        text = await resp.text()
        try:
            payload: Any = json.loads(text)
        except ValueError:
            payload = text
        return resp.status, dict(resp.headers), payload


async def test_rest_creates_session_and_upstream_gets_exact_request(
    tratta_host: HostServer, fake_tratta: FakeUpstream
) -> None:
    customer = unique()
    body = {
        "customer_id": customer,
        "valid_until": 48,
        "destination": "accounts_list",
        "return_url": "https://example.com/paid",
        "tags": [{"name": "utm_source", "value": "agent"}],
    }
    status, headers, payload = await post(tratta_host, body)
    assert status == 201
    assert payload["data"]["portal_url"].startswith("https://portal.example/login/")
    assert "X-Host-Mock" not in headers
    [call] = calls_for(fake_tratta, customer)
    assert call.method == "POST"
    assert call.path == "/api/v1/customer-sessions"  # Tratta's documented, hyphenated path
    assert call.headers["Authorization"] == f"Bearer {API_KEY}"
    assert call.headers["Accept"] == "application/json"
    assert call.headers["Content-Type"] == "application/json"
    assert call.json() == body


async def test_mcp_tool_in_both_protocol_eras(tratta_host: HostServer, fake_tratta: FakeUpstream) -> None:
    for mode, version in (("auto", "2026-07-28"), ("legacy", "2025-11-25")):
        customer = unique(mode)
        async with Client(tratta_host.mcp_url, mode=mode) as client:
            assert client.protocol_version == version
            listed = await client.list_tools()
            [tool] = [t for t in listed.tools if t.name == "create-customer-session"]
            assert tool.annotations is not None
            assert (
                tool.annotations.read_only_hint,
                tool.annotations.destructive_hint,
                tool.annotations.idempotent_hint,
                tool.annotations.open_world_hint,
            ) == (False, False, False, True)
            assert tool.input_schema["required"] == ["body"]
            body_schema = tool.input_schema["properties"]["body"]
            assert body_schema["required"] == ["customer_id"]
            assert body_schema["properties"]["valid_until"]["maximum"] == 2160
            assert "account_checkout" in body_schema["properties"]["destination"]["enum"]
            assert "login link" in (tool.description or "")

            result = await client.call_tool("create-customer-session", {"body": {"customer_id": customer}})
            assert not result.is_error
            assert result.structured_content is not None
            assert result.structured_content["data"]["id"] == "sess-1"
            assert json.loads(result.content[0].text) == result.structured_content  # type: ignore[union-attr]
        [call] = calls_for(fake_tratta, customer)
        assert call.headers["Authorization"] == f"Bearer {API_KEY}"
        assert call.json() == {"customer_id": customer}


@pytest.mark.parametrize(
    ("raw", "status", "detail"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "must be a JSON object"),
        (b'"text"', 400, "must be a JSON object"),
        (b"\xff\xfe", 400, "not valid"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "not valid JSON"),
        (b'{"valid_until": 5}', 422, "body.customer_id"),
        (b'{"customer_id": "x", "valid_until": 9999}', 422, "body.valid_until"),
        (b'{"customer_id": "x", "return_url": "javascript:alert(1)"}', 422, "body.return_url"),
        (b'{"customer_id": "x", "destination": "account_detail"}', 422, "body.debt_account_id"),
        (b'{"customer_id": "x", "expires_in": 60}', 422, "expires_in"),
        (b'{"customer_id": 12}', 422, "body.customer_id"),
    ],
)
async def test_rest_bad_input_is_refused_before_upstream(
    tratta_host: HostServer, fake_tratta: FakeUpstream, raw: bytes, status: int, detail: str
) -> None:
    before = len(fake_tratta.requests)
    got, headers, payload = await post(tratta_host, None, raw=raw)
    assert got == status, payload
    assert headers["Content-Type"].startswith("application/problem+json")
    assert payload["status"] == status and payload["title"]
    assert detail in json.dumps(payload)
    if status == 422:
        assert payload["errors"]
    assert len(fake_tratta.requests) == before


async def test_rest_body_over_one_mib_is_413(tratta_host: HostServer, fake_tratta: FakeUpstream) -> None:
    before = len(fake_tratta.requests)
    big = json.dumps({"customer_id": "x" * (1024 * 1024 + 10)}).encode()
    status, headers, _ = await post(tratta_host, None, raw=big)
    assert status == 413
    assert headers["Content-Type"].startswith("application/problem+json")
    assert len(fake_tratta.requests) == before


async def test_rest_unknown_path_and_wrong_method(tratta_host: HostServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(tratta_host.rest_url + "/v1/nothing-here") as resp:
            assert resp.status == 404
            assert resp.headers["Content-Type"].startswith("application/problem+json")
        async with session.get(tratta_host.rest_url + PATH) as resp:
            assert resp.status == 405
            assert resp.headers["Allow"] == "POST"
            assert (await resp.json(content_type=None))["status"] == 405


@pytest.mark.parametrize(
    ("customer", "status", "expect"),
    [
        ("status-422", 422, "The selected customer id is invalid."),
        ("status-429", 429, "Too Many Attempts."),
        ("status-500", 502, "answered 500"),
        ("status-503", 502, "answered 503"),
        ("slow", 504, "did not answer within 1 s"),
        ("reset", 502, "closed the connection"),
    ],
)
async def test_rest_upstream_faults(tratta_host: HostServer, customer: str, status: int, expect: str) -> None:
    got, headers, payload = await post(tratta_host, {"customer_id": customer})
    assert got == status, payload
    assert expect in json.dumps(payload)
    if status == 429:
        assert headers["Retry-After"] == "7"
    if status in (422, 429):  # upstream 4xx: same status, same body
        assert headers["Content-Type"].startswith("application/json")
    else:
        assert headers["Content-Type"].startswith("application/problem+json")
    assert API_KEY not in json.dumps(payload)


@pytest.mark.parametrize(
    ("customer", "expect"),
    [
        ("status-422", "answered 422: The selected customer id is invalid."),
        ("status-429", "Retry after 7 s"),
        ("status-500", "answered 500"),
        ("slow", "did not answer within 1 s"),
    ],
)
async def test_mcp_upstream_faults_are_tool_errors(
    tratta_host: HostServer, customer: str, expect: str
) -> None:
    async with Client(tratta_host.mcp_url) as client:
        result = await client.call_tool("create-customer-session", {"body": {"customer_id": customer}})
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert expect in text
    assert API_KEY not in text


@pytest.mark.parametrize(
    ("arguments", "expect"),
    [
        ({}, "body: is required"),
        ({"body": {}}, "body.customer_id: is required"),
        ({"body": {"customer_id": "x", "valid_until": 0}}, "body.valid_until: must be at least 1"),
        ({"body": "customer_id=x"}, "body: must be of type object"),
    ],
)
async def test_mcp_bad_arguments_are_readable_tool_errors(
    tratta_host: HostServer, fake_tratta: FakeUpstream, arguments: dict[str, Any], expect: str
) -> None:
    before = len(fake_tratta.requests)
    async with Client(tratta_host.mcp_url) as client:
        result = await client.call_tool("create-customer-session", arguments)
    assert result.is_error
    assert expect in result.content[0].text  # type: ignore[union-attr]
    assert len(fake_tratta.requests) == before
