"""Aggregates used by ``ref`` from both adapters.

Replays engine/exposes/rest/AggregateSharedMockIntegrationTest: one mock aggregate function answers the
MCP tool and the REST operation with the same payload.
"""

from __future__ import annotations

import json

from tests.naftiko_reference.conftest import RESOURCES, replays, serve_capability


@replays("AggregateSharedMockIntegrationTest", 5)
async def test_a_shared_aggregate_mock_answers_both_adapters() -> None:
    async with serve_capability(RESOURCES / "aggregates" / "aggregate-shared-mock.yaml") as host:
        async with host.mcp_client() as client:
            result = await client.call_tool("hello", {"name": "Nina"})
        assert not result.is_error
        over_mcp = json.loads(result.content[0].text)  # type: ignore[union-attr]
        answer = await host.rest.get("/hello", params={"name": "Nina"})
        assert answer.status == 200, await answer.text()
        over_rest = await answer.json()
    assert over_mcp == {"message": "Hello, Nina!", "source": "aggregate-mock"}
    assert over_rest == over_mcp
