"""A tool's inbound token bound from a ``file:///`` secrets file (issue 11 #5, tutorial step 3).

The file's ``binds`` read MCP_SERVER_TOKEN from a secrets document; the MCP adapter's bearer
``authentication`` uses it. ``serve`` must accept it exactly as ``check --config`` does, and only a caller
presenting that token may call the tools.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from host.testing import serve_in_process
from host.testing.inprocess import InProcessHost

CAPABILITY = """\
naftiko: "1.0.0-alpha2"
binds:
  - namespace: "registry-env"
    location: "file:///./secrets.yaml"
    keys:
      MCP_SERVER_TOKEN: "mcp-server-token"
capability:
  exposes:
    - type: mcp
      namespace: shipyard-tools
      authentication:
        type: bearer
        token: "{{MCP_SERVER_TOKEN}}"
      tools:
        - name: get-ship
          description: "A ship"
          inputParameters:
            - name: imo
              type: string
              required: true
              description: "IMO number"
          outputParameters:
            - name: imo
              type: string
              value: "{{imo}}"
"""

TOKEN = "sk-mcp-from-the-secrets-file"


@pytest.fixture
def capability(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "secrets.yaml").write_text(f'mcp-server-token: "{TOKEN}"\n')
    path = tmp_path / "step-3.yaml"
    path.write_text(CAPABILITY)
    monkeypatch.chdir(tmp_path)  # the reference reads file:///./x from the working directory
    return path


async def _call(host: InProcessHost, token: str) -> tuple[int, Any]:
    answer = await host.mcp.post(
        "/mcp",
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "get-ship", "arguments": {"imo": "IMO-1"}},
        },
        headers={"Accept": "application/json, text/event-stream", "Authorization": f"Bearer {token}"},
    )
    assert answer.status == 200, await answer.text()  # an item's refusal is data: an isError result
    return answer.status, await answer.json()


async def test_inbound_token_from_a_bound_secrets_file(capability: Path) -> None:
    config = f'[plugins]\nload = []\n\n[[capabilities]]\npath = "{capability}"\n'
    async with serve_in_process(config, {}, discover=False) as host:
        status, answer = await _call(host, TOKEN)
        assert status == 200 and not answer["result"].get("isError"), answer
        assert json.loads(answer["result"]["content"][0]["text"]) == {"imo": "IMO-1"}
        _, refused = await _call(host, "wrong")
        assert refused["result"]["isError"] is True
        assert "imo" not in refused["result"]["content"][0]["text"]
