"""An exposure's own inbound authentication (bearer, API key) on both adapters.

Replays engine/exposes/rest/AuthenticationIntegrationTest and
engine/exposes/mcp/McpAuthenticationIntegrationTest, from the Java tests' own capability text blocks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from host.testing.inprocess import InProcessHost
from tests.naftiko_reference.conftest import java_capability, replays, serve_capability

REST_AUTH = "engine/exposes/rest/AuthenticationIntegrationTest.java"


@replays("AuthenticationIntegrationTest", 5)
async def test_rest_bearer_authentication(tmp_path: Path) -> None:
    async with serve_capability(java_capability(REST_AUTH, 0, tmp_path)) as host:
        assert (await host.rest.get("/hello")).status == 401
        answer = await host.rest.get("/hello", headers={"Authorization": "Bearer token-123"})
        assert answer.status == 200
        assert answer.content_type == "application/json"
        assert "ok" in await answer.text()


@replays("AuthenticationIntegrationTest", 2)
async def test_rest_api_key_authentication(tmp_path: Path) -> None:
    async with serve_capability(java_capability(REST_AUTH, 1, tmp_path)) as host:
        assert (await host.rest.get("/hello")).status == 401
        assert (await host.rest.get("/hello", headers={"X-API-Key": "abc123"})).status == 200


MCP_AUTH = "engine/exposes/mcp/McpAuthenticationIntegrationTest.java"
HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "clientInfo": {"name": "t", "version": "1"},
        "capabilities": {},
    },
}
CALL = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "test-tool", "arguments": {}}}


async def _post(host: InProcessHost, message: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
    answer = await host.mcp.post("/mcp", json=message, headers={**HEADERS, **headers})
    return answer.status, (await answer.json()) if answer.status == 200 else None


@replays("McpAuthenticationIntegrationTest", 5)
async def test_mcp_accepts_the_right_credential_and_an_open_adapter(tmp_path: Path) -> None:
    for index, headers in (
        (0, {"Authorization": "Bearer mcp-secret-token-123"}),
        (1, {"X-MCP-Key": "abc-key-456"}),
    ):
        async with serve_capability(java_capability(MCP_AUTH, index, tmp_path)) as host:
            status, answer = await _post(host, INITIALIZE, headers)
            assert status == 200 and answer["result"]["protocolVersion"]
            status, called = await _post(host, CALL, headers)
            assert status == 200 and not called["result"].get("isError"), called
    async with serve_capability(java_capability(MCP_AUTH, 2, tmp_path)) as host:
        assert (await _post(host, INITIALIZE, {}))[0] == 200


@replays(
    "McpAuthenticationIntegrationTest",
    3,
    deviation="the reference answers 401 to every request without the adapter's credential; the host's "
    "one MCP endpoint serves every capability, so an adapter's credential guards its own items: a call "
    "without it is an isError result naming the missing credential (host keys and OAuth still give 401)",
)
async def test_mcp_adapter_credential_guards_its_tools(tmp_path: Path) -> None:
    for index, wrong in ((0, {}), (0, {"Authorization": "Bearer wrong-token"}), (1, {})):
        async with serve_capability(java_capability(MCP_AUTH, index, tmp_path)) as host:
            status, called = await _post(host, CALL, wrong)
            assert status == 200 and called["result"]["isError"] is True
