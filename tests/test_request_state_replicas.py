"""Issue 14, item 1: the MCP input-required state key works across replicas (separate host processes).

An input-required tool result (MCP 2026-07-28) carries ``requestState``, sealed with AES-256-GCM under
``HOST_REQUEST_STATE_KEYS`` and bound to the call and to the caller. The client's retry may reach any
replica: with the same keys there it opens (and only for the same caller); with other keys it is refused.
The conformance fixture plugin, pip-installed into a folder of its own, provides the tool.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from host.testing import HostServer, start_host_process, stop_hosts, write_host_toml
from tests.conftest import ROOT, pip_install

FIXTURE_PLUGIN = ROOT / "tests" / "fixtures" / "plugins" / "host-conformance-plugin"
MODERN = "2026-07-28"
TOOL = "test_input_required_result_request_state"
KEYS = {"alice": "alice-key-" + "a" * 32, "bob": "bob-key-" + "b" * 32}
SHARED = "replica-state-key-" + "s" * 32
AUTH = "".join(f'[[auth.keys]]\nname = "{name}"\nenv = "KEY_{name.upper()}"\n\n' for name in KEYS)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("conformance-site")
    pip_install(FIXTURE_PLUGIN, target=folder)
    return folder


def start_replica(directory: Path, site: Path, state_keys: str) -> HostServer:
    directory.mkdir()
    config = write_host_toml(directory, '[plugins]\nload = ["conformance"]\nstrict = true\n\n' + AUTH)
    environment = {
        "PYTHONPATH": str(site),
        "HOST_REQUEST_STATE_KEYS": state_keys,
        **{f"KEY_{name.upper()}": key for name, key in KEYS.items()},
    }
    return start_host_process(config, environment=environment, wait=False)


@pytest.fixture
def replicas(request: pytest.FixtureRequest, tmp_path: Path, site: Path) -> Iterator[list[HostServer]]:
    """Two replicas: the same HOST_REQUEST_STATE_KEYS, or (param "different") a key of their own each."""
    second = SHARED if request.param == "same" else "other-replica-key-" + "o" * 32
    hosts = [start_replica(tmp_path / "a", site, SHARED), start_replica(tmp_path / "b", site, second)]
    try:
        for host in hosts:
            host.wait_until_listening(90)
        yield hosts
    finally:
        codes = stop_hosts(hosts)
    assert codes == [0, 0]
    for host in hosts:
        assert SHARED not in host.log() and "Traceback" not in host.log()


async def call_tool(host: HostServer, caller: str, extra: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
    }
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": TOOL, "arguments": {}, "_meta": meta, **extra},
    }
    headers = {
        "Accept": "application/json",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/call",
        "Mcp-Name": TOOL,
        "Authorization": f"Bearer {KEYS[caller]}",
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(host.mcp_url, json=body, headers=headers) as resp,
    ):
        return resp.status, json.loads(await resp.text())


def confirm(state: str) -> dict[str, Any]:
    return {
        "inputResponses": {"confirm": {"action": "accept", "content": {"ok": True}}},
        "requestState": state,
    }


@pytest.mark.parametrize("replicas", ["same"], indirect=True)
async def test_a_request_state_from_one_replica_opens_on_another_with_the_same_keys(
    replicas: list[HostServer],
) -> None:
    a, b = replicas
    status, asked = await call_tool(a, "alice", {})
    assert status == 200 and asked["result"]["resultType"] == "input_required", asked
    state = asked["result"]["requestState"]

    status, answered = await call_tool(b, "alice", confirm(state))
    assert status == 200 and answered["result"]["content"][0]["text"] == "state-ok: confirmed=True", answered
    # Bound to the caller: the same state in another caller's retry is refused, on any replica.
    status, refused = await call_tool(b, "bob", confirm(state))
    assert status == 400 and refused["error"]["code"] == -32602, refused


@pytest.mark.parametrize("replicas", ["different"], indirect=True)
async def test_a_request_state_is_refused_by_a_replica_with_other_keys(replicas: list[HostServer]) -> None:
    a, b = replicas
    status, asked = await call_tool(a, "alice", {})
    assert status == 200, asked
    status, refused = await call_tool(b, "alice", confirm(asked["result"]["requestState"]))
    assert status == 400 and refused["error"]["code"] == -32602, refused
    status, answered = await call_tool(a, "alice", confirm(asked["result"]["requestState"]))
    assert status == 200 and "state-ok" in answered["result"]["content"][0]["text"], answered
