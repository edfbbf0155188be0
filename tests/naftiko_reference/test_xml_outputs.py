"""XML answers mapped on both adapters, the capability read from the Java test's own text block.

Replays engine/exposes/rest/RestXmlOutputFormatIntegrationTest and
engine/exposes/mcp/McpXmlOutputIntegrationTest: the consumed operation declares ``outputRawFormat: xml``
and the exposure maps ``$.vessel`` (the reference drops the root element, and so does the host).
"""

from __future__ import annotations

import json
from pathlib import Path

from host.testing import FakeUpstream
from tests.naftiko_reference.conftest import java_capability, replays, serve_capability


def vessels_xml(second: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><vessels>'
        "<vessel><vesselCode>V001</vesselCode><vesselName>Sea Eagle</vesselName></vessel>"
        f"<vessel><vesselCode>V002</vesselCode><vesselName>{second}</vesselName></vessel></vessels>"
    ).encode()


@replays("RestXmlOutputFormatIntegrationTest", 7)
async def test_rest_maps_an_xml_answer(fake: FakeUpstream, tmp_path: Path) -> None:
    fake.route("GET", "/vessels", body=vessels_xml("Harbor Star"), content_type="application/xml")
    capability = java_capability(
        "engine/exposes/rest/RestXmlOutputFormatIntegrationTest.java", 0, tmp_path, fake.port
    )
    async with serve_capability(capability) as host:
        answer = await host.rest.get("/legacy/vessels")
        assert answer.status == 200, await answer.text()
        assert await answer.json() == [
            {"code": "V001", "name": "Sea Eagle"},
            {"code": "V002", "name": "Harbor Star"},
        ]


@replays("McpXmlOutputIntegrationTest", 8)
async def test_mcp_maps_an_xml_answer(fake: FakeUpstream, tmp_path: Path) -> None:
    fake.route("GET", "/vessels", body=vessels_xml("Ocean Star"), content_type="application/xml")
    capability = java_capability(
        "engine/exposes/mcp/McpXmlOutputIntegrationTest.java", 0, tmp_path, fake.port
    )
    async with serve_capability(capability) as host, host.mcp_client() as client:
        result = await client.call_tool("list-legacy-vessels", {})
    assert not result.is_error and result.content
    assert json.loads(result.content[0].text) == [  # type: ignore[union-attr]
        {"vesselCode": "V001", "name": "Sea Eagle"},
        {"vesselCode": "V002", "name": "Ocean Star"},
    ]
