"""The shipyard tutorial against its Microcks mocks (src/main/resources/tutorial, .github/microcks).

Replays tutorial/Step2ShipyardMcpClientIntegrationTest: the tools listed with their input schemas, and
each call's mapped answer, the registry namespace pointed at the mock answers.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from mcp import Client

from host.testing import FakeUpstream, RecordedRequest
from host.testing.inprocess import InProcessHost
from tests.naftiko_reference.conftest import MICROCKS, TUTORIAL, replays, serve_capability
from tests.naftiko_reference.microcks import serve_microcks

SHIP_FIELDS = {"imo", "name", "type", "flag", "status"}


async def _call(client: Client, tool: str, arguments: dict[str, Any]) -> Any:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result
    return json.loads(result.content[0].text)  # type: ignore[union-attr]


@replays("Step2ShipyardMcpClientIntegrationTest", 27)
async def test_step_2_wiring() -> None:
    with FakeUpstream() as fake:
        serve_microcks(fake, MICROCKS / "naftiko-shipyard-maritime-registry-api.yaml")
        capability = TUTORIAL / "step-2-shipyard-wiring.yml"
        async with (
            serve_capability(capability, fake, namespaces={"registry": ""}) as host,
            host.mcp_client() as client,
        ):
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert list(tools) == ["list-ships", "get-ship"]
            listing, lookup = tools["list-ships"].input_schema, tools["get-ship"].input_schema
            assert listing["properties"]["status"]["type"] == "string"
            assert "status" not in listing.get("required", [])
            assert lookup["properties"]["imo"]["type"] == "string"
            assert "imo" in lookup["required"]
            ships = await _call(client, "list-ships", {})
            assert isinstance(ships, list) and ships
            assert set(ships[0]) >= SHIP_FIELDS and ships[0]["imo"] and ships[0]["name"]
            active = await _call(client, "list-ships", {"status": "active"})
            assert active and all(ship["status"] == "active" for ship in active)
            ship = await _call(client, "get-ship", {"imo": "IMO-9321483"})
            assert isinstance(ship, dict) and set(ship) >= SHIP_FIELDS
            assert ship["imo"] == "IMO-9321483"


MCP_TOKEN = "sk-mcp-YYYYYYYYYYYY"  # tutorial/shared/secrets.yaml, as the Java tests read it
HEADERS = {"Accept": "application/json, text/event-stream", "Authorization": f"Bearer {MCP_TOKEN}"}


async def _rpc(host: InProcessHost, method: str, params: dict[str, Any]) -> Any:
    answer = await host.mcp.post(
        "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, headers=HEADERS
    )
    assert answer.status == 200, await answer.text()
    return (await answer.json())["result"]


async def _tool(host: InProcessHost, name: str, arguments: dict[str, Any]) -> Any:
    result = await _rpc(host, "tools/call", {"name": name, "arguments": arguments})
    assert not result.get("isError"), result
    return json.loads(result["content"][0]["text"])


async def _secured_step(
    step: str, monkeypatch: pytest.MonkeyPatch, *, legacy: bytes | None = None
) -> tuple[Any, Any, list[RecordedRequest], Any]:
    """Tools listed, then list-ships and get-ship called with the MCP token from the secrets file.
    ``legacy``: the legacy dockyard's XML answer to ``GET /vessels`` (step 5), served on the same fake."""
    monkeypatch.chdir(TUTORIAL)  # binds read file:///./shared/secrets.yaml from the working directory
    with FakeUpstream() as fake:
        serve_microcks(fake, MICROCKS / "naftiko-shipyard-maritime-registry-api.yaml")
        namespaces, vessels = {"registry": ""}, None
        if legacy is not None:
            fake.route("GET", "/vessels", body=legacy, content_type="application/xml")
            namespaces["legacy"] = ""
        async with serve_capability(TUTORIAL / step, fake, namespaces=namespaces) as host:
            tools = (await _rpc(host, "tools/list", {}))["tools"]
            extra = ["list-legacy-vessels"] if legacy is not None else []
            assert [tool["name"] for tool in tools] == ["list-ships", "get-ship", *extra]
            listing, lookup = tools[0]["inputSchema"], tools[1]["inputSchema"]
            assert listing["properties"]["status"]["type"] == "string"
            assert "status" not in listing.get("required", [])
            assert lookup["properties"]["imo"]["type"] == "string"
            assert "imo" in lookup["required"]
            with fake.capture() as seen:
                ships = await _tool(host, "list-ships", {})
                ship = await _tool(host, "get-ship", {"imo": "IMO-9321483"})
                if legacy is not None:
                    assert "status" not in tools[2]["inputSchema"].get("required", [])
                    assert tools[2]["inputSchema"]["properties"]["status"]["type"] == "string"
                    vessels = await _tool(host, "list-legacy-vessels", {})
    assert isinstance(ships, list) and ships
    assert set(ships[0]) >= SHIP_FIELDS and ships[0]["imo"] and ships[0]["name"]
    assert isinstance(ship, dict) and set(ship) >= SHIP_FIELDS
    assert ship["imo"] == "IMO-9321483"
    return ships, ship, seen, vessels


@replays("Step3ShipyardMcpClientIntegrationTest", 27)
async def test_step_3_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    _, _, seen, _ = await _secured_step("step-3-shipyard-auth.yml", monkeypatch)
    assert [request.headers["Authorization"] for request in seen] == ["Bearer dummy-token"] * 2
    assert {request.headers["Registry-Version"] for request in seen} == {"1.0.0-alpha2"}


@replays("Step4ShipyardMcpClientIntegrationTest", 33)
async def test_step_4_output_shaping(monkeypatch: pytest.MonkeyPatch) -> None:
    _, ship, _, _ = await _secured_step("step-4-shipyard-output-shaping.yml", monkeypatch)
    _assert_shaped(ship)


def _assert_shaped(ship: dict[str, Any]) -> None:
    assert all(ship[name] for name in ("name", "type", "flag", "status"))
    specs = ship["specs"]
    assert isinstance(specs, dict)
    for name in ("yearBuilt", "tonnage", "length"):
        assert isinstance(specs[name], int | float) and not isinstance(specs[name], bool), specs


LEGACY_XML = b"""<vessels>
  <vessel><vesselCode>LEGACY-4012</vesselCode><vesselName>Old Faithful</vesselName><category>cargo</category>
    <flagState>GB</flagState><operationalStatus>active</operationalStatus></vessel>
  <vessel><vesselCode>LEGACY-2087</vesselCode><vesselName>Iron Maiden</vesselName>
    <category>bulk_carrier</category><flagState>PA</flagState><operationalStatus>laid_up</operationalStatus></vessel>
</vessels>"""


@replays("Step5ShipyardMcpClientIntegrationTest", 45)
async def test_step_5_multi_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """Imported consumes (shared/step5-registry-consumes.yaml, legacy-consumes.yaml), two binds, XML."""
    _, ship, _, vessels = await _secured_step(
        "step-5-shipyard-multi-source.yml", monkeypatch, legacy=LEGACY_XML
    )
    _assert_shaped(ship)
    assert isinstance(vessels, list) and vessels
    assert {"vesselCode", "name", "type", "flag", "status"} <= set(vessels[0])
    assert vessels[0]["vesselCode"] == "LEGACY-4012" and vessels[0]["name"] == "Old Faithful"


VOYAGE = {
    "shipImo": "IMO-9321483",
    "departurePort": "Oslo",
    "arrivalPort": "Singapore",
    "departureDate": "2026-04-10",
    "arrivalDate": "2026-05-02",
    "crewIds": ["CREW-001", "CREW-003"],
    "cargoIds": ["CARGO-2024-0451"],
}


@replays("Step6ShipyardMcpClientIntegrationTest", 33)
async def test_step_6_write_operations(monkeypatch: pytest.MonkeyPatch) -> None:
    """create-voyage: array inputs, which are required, and the mapped voyage (both Microcks mocks)."""
    with both_mocks(monkeypatch) as fake:
        capability = TUTORIAL / "step-6-shipyard-write-operations.yml"
        async with serve_capability(capability, fake, namespaces={"registry": "", "legacy": ""}) as host:
            tools = (await _rpc(host, "tools/list", {}))["tools"]
            names = ["list-ships", "get-ship", "list-legacy-vessels", "create-voyage"]
            assert [tool["name"] for tool in tools] == names
            schema = tools[3]["inputSchema"]
            assert set(VOYAGE) <= set(schema["properties"])
            assert (
                schema["properties"]["crewIds"]["type"] == schema["properties"]["cargoIds"]["type"] == "array"
            )
            assert set(schema["required"]) == set(VOYAGE) - {"cargoIds"}
            voyage = await _tool(host, "create-voyage", VOYAGE)
    assert isinstance(voyage, dict) and voyage["voyageId"]
    assert voyage["shipImo"] == "IMO-9321483"
    assert voyage["route"] == {"from": "Oslo", "to": "Singapore"}
    assert voyage["dates"] == {"departure": "2026-04-10", "arrival": "2026-05-02"}
    assert isinstance(voyage["crewIds"], list) and voyage["crewIds"]
    assert isinstance(voyage["cargoIds"], list) and voyage["status"]


@contextlib.contextmanager
def both_mocks(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeUpstream]:
    """The registry and the legacy dockyard on their Microcks mocks; binds read from the tutorial folder."""
    monkeypatch.chdir(TUTORIAL)
    with FakeUpstream() as fake:
        serve_microcks(fake, MICROCKS / "naftiko-shipyard-maritime-registry-api.yaml")
        serve_microcks(fake, MICROCKS / "naftiko-shipyard-legacy-dockyard-api.yaml")
        yield fake


@replays("Step7ShipyardMcpClientIntegrationTest", 23)
async def test_step_7_orchestrated_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    """get-ship-with-crew: a ship from the registry and its crew from the dockyard, in one mapped answer."""
    capability = TUTORIAL / "step-7-shipyard-orchestrated-lookup.yml"
    with both_mocks(monkeypatch) as fake:
        async with serve_capability(capability, fake, namespaces={"registry": "", "legacy": ""}) as host:
            tools = (await _rpc(host, "tools/list", {}))["tools"]
            names = ["list-ships", "get-ship", "list-legacy-vessels", "create-voyage", "get-ship-with-crew"]
            assert [tool["name"] for tool in tools] == names
            schema = tools[4]["inputSchema"]
            assert schema["properties"]["imo"]["type"] == "string" and "imo" in schema["required"]
            result = await _tool(host, "get-ship-with-crew", {"imo": "IMO-9321483"})
    assert isinstance(result, dict) and {"imo", "name", "status", "crew"} <= set(result)
    assert result["imo"] and result["name"]
    crew = result["crew"]
    assert isinstance(crew, list) and crew
    assert {"fullName", "role"} <= set(crew[0]) and crew[0]["fullName"]


@replays("Step10ShipyardRestAdapterIntegrationTest", 20)
async def test_step_10_rest_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same capability on the REST port: GET /ships and POST /voyages (the skill half: not served)."""
    capability = TUTORIAL / "step-10-shipyard-rest-adapter.yml"
    with both_mocks(monkeypatch) as fake:
        async with serve_capability(capability, fake, namespaces={"registry": "", "legacy": ""}) as host:
            listed = await host.rest.get("/ships")
            assert listed.status == 200, await listed.text()
            ships = await listed.json()
            created = await host.rest.post("/voyages", json=VOYAGE)
            assert created.status == 201, await created.text()
            voyage = await created.json()
    assert isinstance(ships, list) and ships and set(ships[0]) >= SHIP_FIELDS
    assert isinstance(voyage, dict) and voyage["voyageId"] and voyage["shipImo"] == "IMO-9321483"
    assert voyage["route"] == {"from": "Oslo", "to": "Singapore"}
    assert voyage["dates"] == {"departure": "2026-04-10", "arrival": "2026-05-02"}
    assert voyage["crewIds"] and isinstance(voyage["cargoIds"], list) and voyage["status"]


@replays("Step11ShipyardFleetManifestIntegrationTest", 11)
async def test_step_11_fleet_manifest_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    """Six tools, the orchestrated ones with their required inputs (the skill half: not served)."""
    capability = TUTORIAL / "step-11-shipyard-fleet-manifest.yml"
    with both_mocks(monkeypatch) as fake:
        async with serve_capability(capability, fake, namespaces={"registry": "", "legacy": ""}) as host:
            tools = (await _rpc(host, "tools/list", {}))["tools"]
    names = ["list-ships", "get-ship", "list-legacy-vessels", "create-voyage", "get-ship-with-crew"]
    assert [tool["name"] for tool in tools] == [*names, "get-voyage-manifest"]
    for tool, argument in ((tools[4], "imo"), (tools[5], "voyageId")):
        schema = tool["inputSchema"]
        assert schema["properties"][argument]["type"] == "string" and argument in schema["required"]
