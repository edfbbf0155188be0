"""A host whose tools never ask for input builds the requestState boundary only when a request needs it.

The answer is the one the boundary always gave: a requestState this host never issued is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from host.adapters.mcp.sealing import StateBoundary
from host.errors import StartupError
from host.testing import FakeUpstream, serve_in_process
from tests.test_mcp_fastpath_differential import CAPABILITY, KEY, MODERN

ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
}


@pytest.mark.parametrize("method", ["tools/call", "resources/read", "prompts/get"])
async def test_a_foreign_request_state_is_refused_without_input_hooks(
    tmp_path: Path, fake_upstream: FakeUpstream, method: str
) -> None:
    (tmp_path / "notes.yaml").write_text(CAPABILITY)
    config = {
        "capabilities": [{"path": str(tmp_path / "notes.yaml")}],
        "consumes": {"notes": {"base_uri": fake_upstream.url + "/api", "retries": 0}},
    }
    name = {"uri": "data://x"} if method == "resources/read" else {"name": "get-note"}
    params = {**name, "arguments": {"id": "n1"}, "requestState": "v1.forged", "_meta": ENVELOPE}
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": method,
        "Mcp-Name": next(iter(name.values())),
    }
    async with serve_in_process(config, {"CAP_GUARD_KEY": KEY}, discover=False) as served:
        response = await served.mcp.post("/mcp", data=json.dumps(body), headers=headers)
        answer = await response.json()
    assert answer["error"]["code"] == -32602
    assert answer["error"]["message"] == "Invalid or expired requestState"
    assert fake_upstream.requests == []


def test_configured_keys_are_checked_at_start_up_even_without_input_hooks() -> None:
    with pytest.raises(StartupError, match="HOST_REQUEST_STATE_KEYS"):
        StateBoundary({"HOST_REQUEST_STATE_KEYS": "short"}, asks_for_input=False)
