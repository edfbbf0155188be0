"""What the host does when things go wrong: faulty upstreams, hostile input, floods, restarts."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from mcp import Client

from host.testing import FakeUpstream, HostServer, free_port, start_host_process, write_host_toml
from tests.conftest import API_KEY, calls_for, tratta_base_uri

PATH = "/v1/customer-sessions"
JSON = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


@pytest.fixture(scope="module")
def host(fake_tratta: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostServer]:
    directory = tmp_path_factory.mktemp("hardening")
    config = write_host_toml(
        directory,
        f"""
[consumes.tratta-customer-sessions]
base_uri = "{tratta_base_uri(fake_tratta)}"
timeout = 1
max_response_bytes = 1048576
circuit_failures = 100000
[limits]
max_json_depth = 32
max_concurrent_per_client = 1000
"""
        + '[logging]\nlevel = "WARNING"',
    )
    process = start_host_process(config, environment={"TRATTA_API_KEY": API_KEY})
    yield process
    assert process.stop() == 0, process.log()
    assert API_KEY not in process.log() and "SECRETLINK" not in process.log()


async def rest_call(host: HostServer, customer: str) -> tuple[int, dict[str, str], Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            host.rest_url + PATH, json={"customer_id": customer}, timeout=aiohttp.ClientTimeout(total=20)
        ) as resp,
    ):
        text = await resp.text()
        return resp.status, dict(resp.headers), json.loads(text) if text else None


# -- faulty upstreams ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "status", "detail"),
    [
        ("slow", 504, "did not answer within 1 s"),
        ("hang", 504, "did not answer within 1 s"),
        ("reset", 502, "closed the connection"),
        ("status-500", 502, "answered 500"),
        ("status-503", 502, "answered 503"),
        ("status-429", 429, "Too Many Attempts."),
        ("status-401", 401, "Unauthenticated."),
        ("invalid-json", 502, "invalid JSON"),
        ("huge", 502, "too large"),
        ("endless", 502, "exceeds 1048576 bytes"),
    ],
)
async def test_upstream_faults_give_documented_answers_in_bounded_time(
    host: HostServer, scenario: str, status: int, detail: str
) -> None:
    started = time.monotonic()
    got, _, payload = await rest_call(host, scenario)
    assert got == status, payload
    assert detail in json.dumps(payload)
    assert time.monotonic() - started < 8
    async with Client(host.mcp_url) as client:
        result = await client.call_tool("create-customer-session", {"body": {"customer_id": scenario}})
    assert result.is_error
    assert API_KEY not in json.dumps(payload) + result.content[0].text  # type: ignore[union-attr]


async def test_host_keeps_serving_while_an_upstream_hangs(host: HostServer) -> None:
    hanging = [asyncio.create_task(rest_call(host, "hang")) for _ in range(10)]
    await asyncio.sleep(0.1)
    started = time.monotonic()
    for index in range(5):
        status, _, _ = await rest_call(host, f"meanwhile-{index}")
        assert status == 201
    assert time.monotonic() - started < 1.0  # answered while ten calls hang
    assert all(status == 504 for status, _, _ in await asyncio.gather(*hanging))


async def test_health_endpoints(host: HostServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(host.rest_url + "/healthz") as resp:
            assert resp.status == 200 and (await resp.json())["status"] == "ok"
        async with session.get(host.rest_url + "/readyz") as resp:
            body = await resp.json()
            assert resp.status == 200 and body["status"] == "ready"
            assert body["upstreams"] == {"tratta-customer-sessions": "ok"}
        async with session.get(f"http://127.0.0.1:{host.mcp_port}/healthz") as resp:
            assert resp.status == 200


# -- hostile input: each case gets a clear 4xx, reaches no upstream, crashes nothing --------------------


def raw_http(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
    return b"".join(chunks)


def deep(levels: int) -> bytes:
    return b'{"customer_id": "x", "tags": ' + b"[" * levels + b"]" * levels + b"}"


REST_CASES: list[tuple[str, str, dict[str, str], bytes, int]] = [
    ("POST", PATH, {"Content-Type": "application/json"}, b"", 422),
    ("POST", PATH, {"Content-Type": "application/json"}, b"{", 400),
    ("POST", PATH, {"Content-Type": "application/json"}, b'{"customer_id": "x"', 400),
    ("POST", PATH, {"Content-Type": "application/json"}, b"null", 400),
    ("POST", PATH, {"Content-Type": "application/json"}, b"123", 400),
    ("POST", PATH, {"Content-Type": "application/json"}, b'"x"', 400),
    ("POST", PATH, {"Content-Type": "application/json"}, b"[]", 400),
    ("POST", PATH, {"Content-Type": "application/json"}, b'{"customer_id": "\xff\xfe"}', 400),
    ("POST", PATH, {"Content-Type": "text/plain"}, b"customer_id=x", 415),
    ("POST", PATH, {"Content-Type": "application/x-www-form-urlencoded"}, b"customer_id=x", 415),
    ("POST", PATH, {"Content-Type": "application/json"}, deep(40), 400),
    ("POST", PATH, {"Content-Type": "application/json"}, b"[" * 50_000, 400),
    ("POST", PATH, {"Content-Type": "application/json"}, b'{"customer_id": ' + b"9" * 5000 + b"}", 400),
    ("POST", PATH, {"Content-Type": "application/json"}, b'{"customer_id": "x", "valid_until": "48"}', 422),
    ("POST", PATH, {"Content-Type": "application/json"}, b'{"customer_id": "x", "valid_until": 1e400}', 422),
    ("POST", PATH, {"Content-Type": "application/json"}, b'{"customer_id": "x", "tags": [{"name": 1}]}', 422),
    (
        "POST",
        PATH,
        {"Content-Type": "application/json"},
        b'{"customer_id": "x", "destination": "admin"}',
        422,
    ),
    ("POST", PATH, {"Content-Type": "application/json"}, b'{"customer_id": ""}', 422),
    ("POST", PATH, {"Content-Type": "application/json"}, b'{"customer_id": null}', 422),
    (
        "POST",
        PATH,
        {"Content-Type": "application/json"},
        b'{"customer_id": "x", "redirect_url": "https://e"}',
        422,
    ),
    ("POST", PATH, {"Content-Type": "application/json"}, b'{"customer_id": "x"}' + b" " * (1024 * 1024), 413),
    ("PUT", PATH, {"Content-Type": "application/json"}, b'{"customer_id": "x"}', 405),
    ("DELETE", PATH, {}, b"", 405),
    ("GET", "/v1/customer-sessions/../customer-sessions", {}, b"", 405),
    ("POST", "/v1/customer-sessions/..%2f..%2fadmin", {"Content-Type": "application/json"}, b"{}", 404),
    ("POST", "/v1/%2e%2e/customer-sessions", {"Content-Type": "application/json"}, b"{}", 404),
    ("GET", "/etc/passwd", {}, b"", 404),
]


@pytest.mark.parametrize(("method", "path", "headers", "body", "status"), REST_CASES)
async def test_rest_hostile_input(
    host: HostServer,
    fake_tratta: FakeUpstream,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    status: int,
) -> None:
    before = len(fake_tratta.requests)
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, host.rest_url + path, data=body, headers=headers, skip_auto_headers=["Content-Type"]
        ) as resp,
    ):
        assert resp.status == status, await resp.text()
        assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert len(fake_tratta.requests) == before


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            b"POST /v1/customer-sessions HTTP/1.1\r\nHost: x\r\nX-Evil: a\rInjected: 1\r\n"
            b"Content-Length: 2\r\n\r\n{}",
            b"400",
        ),
        (b"POST /v1/customer-sessions HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n", b"4"),
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"POST /v1/customer-sessions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", b"400"),
        (
            b"POST /v1/customer-sessions HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"H%d: v\r\n" % i for i in range(300))
            + b"\r\n",
            b"4",
        ),
    ],
)
async def test_malformed_http_is_refused(
    host: HostServer, fake_tratta: FakeUpstream, raw: bytes, expected: bytes
) -> None:
    before = len(fake_tratta.requests)
    for port in (host.rest_port, host.mcp_port):
        answer = await asyncio.to_thread(raw_http, port, raw)
        assert answer.startswith(b"HTTP/1.") and answer.split(b" ")[1].startswith(expected), answer[:200]
    assert len(fake_tratta.requests) == before


def rpc(method: str, params: Any = None, request_id: Any = 1) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return json.dumps(message).encode()


def call(arguments: Any, name: str = "create-customer-session") -> bytes:
    return rpc("tools/call", {"name": name, "arguments": arguments})


MCP_CASES: list[tuple[dict[str, str], bytes, int, str]] = [
    (JSON, b"{", 400, '"code":-32700'),
    (JSON, b"", 400, '"code":-32700'),
    (JSON, b"[]", 400, '"code":-32600'),
    (JSON, b'{"jsonrpc": "2.0"}', 400, '"code":-32600'),
    (JSON, b'{"jsonrpc": "2.0", "id": 1, "method": 5}', 400, '"code":-32600'),
    (JSON, b'{"jsonrpc": "2.0", "id": [1], "method": "ping"}', 400, '"code":-32600'),
    (JSON, rpc("tools/call", [1, 2]), 400, '"code":-32600'),
    (
        JSON,
        b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": ' + b"[" * 40 + b"]" * 40 + b"}",
        400,
        "",
    ),
    (JSON, rpc("no/such/method"), 200, '"code":-32601'),
    (JSON, rpc("tools/call", {"arguments": {}}), 200, '"code":-32602'),
    (JSON, call({}, name="no-such-tool"), 200, '"code":-32602'),
    (JSON, call({"body": {"customer_id": 5}}), 200, '"isError":true'),
    (JSON, call({"body": "customer_id=x"}), 200, '"isError":true'),
    (JSON, call({"body": {"customer_id": "x", "valid_until": 99999}}), 200, '"isError":true'),
    (JSON, call({"body": {"customer_id": "x", "expires_in": 5}}), 200, '"isError":true'),
    (JSON, call({"body": {}}), 200, '"isError":true'),
    (JSON, call(None), 200, '"isError":true'),
    ({**JSON, "Content-Type": "text/plain"}, rpc("ping"), 415, ""),
    ({**JSON, "Accept": "text/html"}, rpc("ping"), 406, ""),
    ({**JSON, "Host": "attacker.example"}, rpc("ping"), 421, ""),
    ({**JSON, "Origin": "https://attacker.example"}, rpc("ping"), 403, ""),
    ({**JSON, "Origin": "null"}, rpc("ping"), 403, ""),
    ({**JSON, "MCP-Protocol-Version": "1999-01-01"}, rpc("ping"), 400, '"error"'),
    ({**JSON, "MCP-Protocol-Version": "2026-07-28"}, rpc("tools/list"), 400, ""),
]


@pytest.mark.parametrize(("headers", "body", "status", "contains"), MCP_CASES)
async def test_mcp_hostile_input(
    host: HostServer,
    fake_tratta: FakeUpstream,
    headers: dict[str, str],
    body: bytes,
    status: int,
    contains: str,
) -> None:
    before = len(fake_tratta.requests)
    async with (
        aiohttp.ClientSession() as session,
        session.post(host.mcp_url, data=body, headers=headers) as resp,
    ):
        text = await resp.text()
        assert resp.status == status, text
        assert contains in text.replace(" ", "")
    assert len(fake_tratta.requests) == before


async def test_mcp_get_and_delete_are_405(host: HostServer) -> None:
    async with aiohttp.ClientSession() as session:
        for method in ("GET", "DELETE", "PUT"):
            async with session.request(method, host.mcp_url, headers=JSON) as resp:
                assert resp.status == 405 and resp.headers["Allow"] == "POST"


# -- resilience: circuit breaker and client-side rate limit ----------------------------------------------


async def test_circuit_breaker_fails_fast_then_probes(tmp_path: Path) -> None:
    closed = free_port()
    config = write_host_toml(
        tmp_path,
        f"""
[consumes.tratta-customer-sessions]
base_uri = "http://127.0.0.1:{closed}/api/v1"
circuit_failures = 2
circuit_reset = 1
retries = 0
""",
    )
    host = start_host_process(config, environment={"TRATTA_API_KEY": API_KEY})
    try:
        assert [(await rest_call(host, "c"))[0] for _ in range(2)] == [502, 502]
        status, headers, payload = await rest_call(host, "c")
        assert status == 503 and "circuit open" in payload["detail"] and int(headers["Retry-After"]) >= 1
        async with aiohttp.ClientSession() as session, session.get(host.rest_url + "/readyz") as resp:
            assert resp.status == 503  # every upstream is broken: take this replica out of rotation
        await asyncio.sleep(1.1)
        status, _, _ = await rest_call(host, "c")
        assert status == 502  # the probe went through, failed, and the circuit opened again
        assert (await rest_call(host, "c"))[0] == 503
    finally:
        assert host.stop() == 0


async def test_client_side_rate_limit(tmp_path: Path, fake_tratta: FakeUpstream) -> None:
    config = write_host_toml(
        tmp_path,
        f"""
[consumes.tratta-customer-sessions]
base_uri = "{tratta_base_uri(fake_tratta)}"
rate_limit = "3/min"
""",
    )
    host = start_host_process(config, environment={"TRATTA_API_KEY": API_KEY})
    try:
        results = [await rest_call(host, f"rate-{i}") for i in range(5)]
        assert [status for status, _, _ in results] == [201, 201, 201, 429, 429]
        assert int(results[3][1]["Retry-After"]) >= 1
        assert "3/min" in results[3][2]["detail"]
        assert not calls_for(fake_tratta, "rate-3") and not calls_for(fake_tratta, "rate-4")
    finally:
        assert host.stop() == 0


async def test_connect_failure_is_retried_but_a_post_that_may_have_landed_is_not(
    tmp_path: Path, fake_tratta: FakeUpstream
) -> None:
    config = write_host_toml(
        tmp_path,
        f"""
[consumes.tratta-customer-sessions]
base_uri = "{tratta_base_uri(fake_tratta)}"
timeout = 1
retries = 3
circuit_failures = 1000
""",
    )
    host = start_host_process(config, environment={"TRATTA_API_KEY": API_KEY})
    try:
        before = len(calls_for(fake_tratta, "reset"))
        assert (await rest_call(host, "reset"))[0] == 502
        assert len(calls_for(fake_tratta, "reset")) == before + 1  # sent once: the upstream may have acted
        before = len(calls_for(fake_tratta, "slow"))
        assert (await rest_call(host, "slow"))[0] == 504
        assert len(calls_for(fake_tratta, "slow")) == before + 1
    finally:
        assert host.stop() == 0


async def test_configured_header_limits_apply(tmp_path: Path) -> None:
    config = write_host_toml(
        tmp_path,
        "[consumes.tratta-customer-sessions]\nmock = true\n"
        + "[limits]\nmax_header_bytes = 1024\nmax_headers = 20\n",
    )
    host = start_host_process(config)
    try:
        big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n"
        many = (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(30)) + b"\r\n"
        )
        fine = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Ok: " + b"a" * 500 + b"\r\nConnection: close\r\n\r\n"
        for raw, status in ((big, b"400"), (many, b"400"), (fine, b"200")):
            answer = await asyncio.to_thread(raw_http, host.rest_port, raw)
            assert answer.split(b" ")[1] == status, answer[:120]
    finally:
        assert host.stop() == 0
