"""The REST port in process: `host.testing.serve_in_process` builds the host with `host.app.build` and serves
it through aiohttp's TestClient, the Tratta plugin pointed at the `fake_tratta` upstream (no process)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from openapi_spec_validator import validate

from host.testing import FakeUpstream, InProcessHost, serve_in_process
from tests.conftest import API_KEY, calls_for, tratta_base_uri

PATH = "/v1/customer-sessions"
PROBLEM = "application/problem+json"


@pytest.fixture
async def tratta(fake_tratta: FakeUpstream) -> AsyncIterator[InProcessHost]:
    config = {
        "consumes": {"tratta-customer-sessions": {"base_uri": tratta_base_uri(fake_tratta), "timeout": 2}}
    }
    async with serve_in_process(
        config, {"TRATTA_API_KEY": API_KEY}, plugins=["tratta-customer-sessions"]
    ) as served:
        yield served


async def test_a_resource_call_reaches_the_upstream_and_maps_the_answer(
    tratta: InProcessHost, fake_tratta: FakeUpstream
) -> None:
    response = await tratta.rest.post(PATH, json={"customer_id": "inproc-1", "valid_until": 24})
    assert response.status == 201, await response.text()
    session = (await response.json())["data"]
    assert session["id"] == "sess-1" and session["portal_url"].endswith("inproc-1-SECRETLINK")
    [call] = calls_for(fake_tratta, "inproc-1")
    assert (call.method, call.path) == ("POST", "/api/v1/customer-sessions")
    assert call.headers["Authorization"] == f"Bearer {API_KEY}"
    assert call.json() == {"customer_id": "inproc-1", "valid_until": 24}


async def test_invalid_arguments_are_a_422_problem_and_send_nothing(
    tratta: InProcessHost, fake_tratta: FakeUpstream
) -> None:
    before = len(fake_tratta.requests)
    response = await tratta.rest.post(PATH, json={"valid_until": 24})  # customer_id is required
    assert response.status == 422
    assert response.headers["Content-Type"].startswith(PROBLEM)
    problem = await response.json()
    assert problem["status"] == 422 and "customer_id" in problem["detail"]
    assert len(fake_tratta.requests) == before


async def test_an_unknown_path_is_a_404_problem(tratta: InProcessHost) -> None:
    response = await tratta.rest.get("/v1/nowhere")
    assert response.status == 404
    assert response.headers["Content-Type"].startswith(PROBLEM)
    assert (await response.json())["status"] == 404
    assert response.headers["X-Request-Id"]


async def test_healthz_answers_ok(tratta: InProcessHost) -> None:
    response = await tratta.rest.get("/healthz")
    assert response.status == 200
    assert (await response.json())["status"] == "ok"


async def test_openapi_describes_the_resource(tratta: InProcessHost) -> None:
    response = await tratta.rest.get("/openapi.json")
    assert response.status == 200
    document = await response.json()
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema
    assert "post" in document["paths"][PATH]


async def test_the_mcp_port_serves_the_same_engine(tratta: InProcessHost, fake_tratta: FakeUpstream) -> None:
    async with tratta.mcp_client() as client:
        result = await client.call_tool("create-customer-session", {"body": {"customer_id": "inproc-mcp"}})
        assert not result.is_error
    async with tratta.in_memory_mcp_client() as client:
        tools = [tool.name for tool in (await client.list_tools()).tools]
        assert tools == ["create-customer-session"]
        result = await client.call_tool("create-customer-session", {"body": {"customer_id": "inproc-mem"}})
        assert not result.is_error
    assert len(calls_for(fake_tratta, "inproc-mcp")) == len(calls_for(fake_tratta, "inproc-mem")) == 1


@pytest.fixture
def host_environment() -> dict[str, str]:
    return {"TRATTA_API_KEY": API_KEY}


@pytest.mark.host_plugins("tratta-customer-sessions")
async def test_the_host_in_process_fixture_serves_the_plugin_under_test(
    host_in_process: InProcessHost, fake_upstream: FakeUpstream
) -> None:
    session = {"id": "s-9", "portal_url": "https://portal.example/x", "return_url": None, "expiration": "z"}
    fake_upstream.route("POST", "/customer-sessions", status=201, json={"data": session})
    response = await host_in_process.rest.post(PATH, json={"customer_id": "fixture"})
    assert response.status == 201, await response.text()
    assert (await response.json())["data"]["id"] == "s-9"
    [call] = fake_upstream.requests
    assert call.json() == {"customer_id": "fixture"}
    loaded = {info.name for info in host_in_process.host.catalog.plugins if info.error is None}
    assert "tratta-customer-sessions" in loaded
