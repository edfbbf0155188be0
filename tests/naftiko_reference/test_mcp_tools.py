"""MCP tools: hints on the wire, nested object outputs, the tutorial's first step over Streamable HTTP.

Replays engine/exposes/mcp/McpToolHintsIntegrationTest, NestedObjectOutputMappingIntegrationTest and
tutorial/Step1ShipyardMcpClientIntegrationTest.
"""

from __future__ import annotations

import json
from typing import Any

from host.testing import FakeUpstream
from host.testing.inprocess import InProcessHost
from tests.naftiko_reference.conftest import RESOURCES, TUTORIAL, replays, serve_capability

HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


async def rpc(host: InProcessHost, method: str, params: dict[str, Any], session: str | None = None) -> Any:
    """One JSON-RPC call on the MCP port as the reference's tests send it (raw HTTP, no SDK)."""
    headers = {**HEADERS, **({"Mcp-Session-Id": session} if session else {})}
    answer = await host.mcp.post(
        "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, headers=headers
    )
    assert answer.status == 200, await answer.text()
    text = await answer.text()
    if answer.content_type == "text/event-stream":
        text = next(line[5:] for line in text.splitlines() if line.startswith("data:"))
    return answer.headers.get("Mcp-Session-Id"), json.loads(text)


async def initialize(host: InProcessHost) -> tuple[str | None, Any]:
    params = {
        "protocolVersion": "2025-11-25",
        "clientInfo": {"name": "test-client", "version": "1.0"},
        "capabilities": {},
    }
    session, answer = await rpc(host, "initialize", params)
    return session, answer["result"]


@replays("McpToolHintsIntegrationTest", 17)
async def test_tool_hints_on_the_wire() -> None:
    async with serve_capability(RESOURCES / "mcp" / "mcp-hints-capability.yaml") as host:
        session, _ = await initialize(host)
        _, answer = await rpc(host, "tools/list", {}, session)
    tools = answer["result"]["tools"]
    assert [tool["name"] for tool in tools] == ["read-data", "delete-record", "no-hints-tool"]
    read, delete, bare = tools
    assert read["title"] == "Read Data"
    assert read["annotations"] == {"title": "Read Data", "readOnlyHint": True, "openWorldHint": True}
    assert delete["annotations"] == {
        "readOnlyHint": False,
        "destructiveHint": True,
        "idempotentHint": True,
        "openWorldHint": False,
    }
    assert "annotations" not in bare


SHIP = {
    "imo_number": "IMO-9321483",
    "vessel_name": "Northern Star",
    "operational_status": "active",
    "year_built": 2015,
    "gross_tonnage": 42000,
    "dimensions": {"length_overall": 229},
}


@replays("NestedObjectOutputMappingIntegrationTest", 9)
async def test_nested_object_output_is_mapped(fake: FakeUpstream) -> None:
    fake.route("GET", "/ships/{imo}", json=SHIP)
    capability = RESOURCES / "nested-object-output-capability.yaml"
    async with (
        serve_capability(capability, fake, namespaces={"registry": ""}) as host,
        host.mcp_client() as client,
    ):
        with fake.capture() as seen:
            result = await client.call_tool("get-ship", {"imo": "IMO-9321483"})
    assert [request.path for request in seen] == ["/ships/IMO-9321483"]
    assert not result.is_error
    assert json.loads(result.content[0].text) == {  # type: ignore[union-attr]
        "imo": "IMO-9321483",
        "name": "Northern Star",
        "status": "active",
        "specs": {"yearBuilt": 2015, "tonnage": 42000, "length": 229},
    }


@replays("Step1ShipyardMcpClientIntegrationTest", 13)
async def test_tutorial_step_1_mock_tool() -> None:
    async with serve_capability(TUTORIAL / "step-1-shipyard-mock.yml") as host:
        session, result = await initialize(host)
        assert result["protocolVersion"] == "2025-11-25"
        assert result["serverInfo"]["name"] == "shipyard-tools"
        assert "tools" in result["capabilities"]
        _, listed = await rpc(host, "tools/list", {}, session)
        tools = listed["result"]["tools"]
        assert [(tool["name"], tool["description"]) for tool in tools] == [
            ("get-ship", "Retrieve a ship's details by IMO number")
        ]
        _, called = await rpc(
            host, "tools/call", {"name": "get-ship", "arguments": {"imo_number": "IMO-9321483"}}, session
        )
    call = called["result"]
    assert not call.get("isError")
    ship = json.loads(call["content"][0]["text"])
    assert ship == {
        "imo": "IMO-9321483",
        "name": "Northern Star",
        "type": "cargo",
        "flag": "NO",
        "status": "active",
    }


@replays(
    "Step1ShipyardMcpClientIntegrationTest",
    1,
    deviation="the reference answers initialize with an Mcp-Session-Id; the host serves MCP statelessly "
    "(sessions are optional in Streamable HTTP), so replicas and --workers need no shared session store",
)
async def test_tutorial_step_1_initialize_is_stateless() -> None:
    async with serve_capability(TUTORIAL / "step-1-shipyard-mock.yml") as host:
        session, result = await initialize(host)
    assert session is None and result["serverInfo"]["name"] == "shipyard-tools"


NOTION_PAGE = {
    "results": [
        {
            "properties": {
                "Name": {"title": [{"text": {"content": "Ada"}}]},
                "Status": {"select": {"name": "Committed"}},
            }
        },
        {
            "properties": {
                "Name": {"title": [{"text": {"content": "Alan"}}]},
                "Status": {"select": {"name": "Committed"}},
            }
        },
    ]
}


@replays("McpIntegrationTest", 12)
async def test_mcp_tool_wiring(fake: FakeUpstream) -> None:
    """The adapter's identity, the tool as listed, and a call: `with` fills the path, the body is sent."""
    fake.route("POST", "/v1/databases/{id}/query", json=NOTION_PAGE)
    async with serve_capability(
        RESOURCES / "mcp" / "mcp-capability.yaml", fake, namespaces={"mock-api": "/v1"}
    ) as host:
        _, result = await initialize(host)
        assert result["serverInfo"]["name"] == "test-mcp"
        assert "Test MCP server" in result["instructions"]
        async with host.mcp_client() as client:
            tools = (await client.list_tools()).tools
            assert [tool.name for tool in tools] == ["query-database"]
            assert "Query the test database" in (tools[0].description or "")
            assert tools[0].input_schema["type"] == "object"
            with fake.capture() as seen:
                called = await client.call_tool("query-database", {})
    assert not called.is_error
    assert [(request.method, request.path) for request in seen] == [
        ("POST", "/v1/databases/test-db-id-123/query")
    ]
    assert seen[0].headers["Content-Type"].startswith("application/json")
    assert seen[0].json() == {"filter": {"property": "Status", "select": {"equals": "Committed"}}}
    assert json.loads(called.content[0].text) == [  # type: ignore[union-attr]
        {"name": "Ada", "status": "Committed"},
        {"name": "Alan", "status": "Committed"},
    ]
