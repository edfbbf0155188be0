"""The one builder (host.app.build): both apps served in process, the engine bound to their lifecycle."""

from __future__ import annotations

import json
from typing import Any

import pytest
import tratta_customer_sessions
from aiohttp.test_utils import TestClient, TestServer

from host.app import Host, build
from host.config import ConsumeConfig, HostConfig
from host.errors import StartupError

MOCKED = HostConfig(consumes={"tratta-customer-sessions": ConsumeConfig(mock=True)})
TRATTA = [("tratta", tratta_customer_sessions)]
SESSION = {"customer_id": "3f0c9a", "valid_until": 48, "destination": "accounts_list"}
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def _built(config: HostConfig = MOCKED, environ: dict[str, str] | None = None) -> Host:
    return build(config, environ or {}, extra_plugins=TRATTA, discover=False)


async def test_rest_app_serves_in_process_with_no_extra_call() -> None:
    host = _built()
    async with TestClient(TestServer(host.rest, host="127.0.0.1")) as client:
        response = await client.post("/v1/customer-sessions", json=SESSION)
        assert response.status == 201, await response.text()
        assert (await response.json())["data"]["portal_url"]
        assert response.headers["X-Request-Id"]
        assert (await client.get("/readyz")).status == 200
        assert (await client.get("/metrics")).status == 200


async def test_mcp_app_serves_in_process() -> None:
    host = _built()
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    async with TestClient(TestServer(host.mcp, host="127.0.0.1")) as client:
        response = await client.post("/mcp", data=json.dumps(call), headers=MCP_HEADERS)
        assert response.status == 200, await response.text()
        tools = (await response.json())["result"]["tools"]
        assert [tool["name"] for tool in tools] == ["create-customer-session"]


async def test_the_engine_starts_with_the_first_app_and_closes_with_the_last() -> None:
    config = HostConfig(
        consumes={"tratta-customer-sessions": ConsumeConfig(base_uri="http://127.0.0.1:9/api/v1")}
    )
    host = _built(config, {"TRATTA_API_KEY": "k" * 32, "TRATTA_ORG_UUID": "org"})
    assert host.engine._sessions == {}, "building starts nothing"
    rest, mcp = TestServer(host.rest, host="127.0.0.1"), TestServer(host.mcp, host="127.0.0.1")
    await rest.start_server()
    started: dict[str, Any] = dict(host.engine._sessions)
    assert started, "the REST app's start starts the engine"
    await mcp.start_server()
    assert host.engine._sessions == started, "the second app reuses the running engine"
    await rest.close()
    assert host.engine._sessions == started, "the engine outlives the first app to stop"
    await mcp.close()
    assert host.engine._sessions == {}
    assert all(session.closed for session in started.values())


async def test_readiness_turns_unready_when_draining() -> None:
    host = _built()
    async with TestClient(TestServer(host.rest, host="127.0.0.1")) as client:
        host.draining = True
        response = await client.get("/readyz")
        assert response.status == 503
        assert (await response.json())["draining"] is True


def test_a_start_up_problem_is_a_startup_error() -> None:
    config = HostConfig.model_validate(
        {
            "consumes": {"tratta-customer-sessions": {"mock": True}},
            "auth": {"keys": [{"name": "ci", "env": "HOST_KEY_CI"}]},
        }
    )
    with pytest.raises(StartupError, match="HOST_KEY_CI is not set"):
        _built(config)
