"""What operators rely on: OpenAPI, Prometheus metrics, request ids, structured logs."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
from mcp import Client
from openapi_spec_validator import validate

from host.testing import FakeUpstream, HostServer, start_host_process, write_host_toml
from tests.conftest import API_KEY, calls_for, tratta_base_uri


async def test_openapi_document_is_valid_3_1(tratta_host: HostServer) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(tratta_host.rest_url + "/openapi.json") as resp,
    ):
        assert resp.status == 200
        document = await resp.json()
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema
    assert document["openapi"] == "3.1.0"
    post = document["paths"]["/v1/customer-sessions"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["customer_id"] and body["properties"]["valid_until"]["maximum"] == 2160
    assert post["requestBody"]["required"] is True
    assert "422" in post["responses"]


async def test_metrics_count_requests_calls_and_upstreams(
    tratta_host: HostServer, fake_tratta: FakeUpstream
) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            tratta_host.rest_url + "/v1/customer-sessions", json={"customer_id": "metrics"}
        ) as resp:
            assert resp.status == 201
        async with session.post(tratta_host.rest_url + "/v1/customer-sessions", json={}) as resp:
            assert resp.status == 422
    async with Client(tratta_host.mcp_url) as client:
        await client.call_tool("create-customer-session", {"body": {"customer_id": "metrics-mcp"}})
    async with aiohttp.ClientSession() as session, session.get(tratta_host.rest_url + "/metrics") as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    assert 'host_http_requests_total{adapter="rest",route="/v1/customer-sessions",status="201"}' in text
    assert 'host_http_requests_total{adapter="rest",route="/v1/customer-sessions",status="422"}' in text
    assert 'host_http_requests_total{adapter="mcp",route="/mcp",status="200"}' in text
    assert 'host_calls_total{exposure="POST /v1/customer-sessions",outcome="ok"}' in text
    assert 'host_calls_total{exposure="POST /v1/customer-sessions",outcome="invalid-arguments"}' in text
    assert 'host_upstream_requests_total{namespace="tratta-customer-sessions",status="201"}' in text
    assert "host_upstream_request_duration_seconds_bucket" in text
    assert API_KEY not in text and "SECRETLINK" not in text and "metrics-mcp" not in text


async def test_request_id_is_returned_and_sent_upstream(
    tratta_host: HostServer, fake_tratta: FakeUpstream
) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            tratta_host.rest_url + "/v1/customer-sessions",
            json={"customer_id": "rid-1"},
            headers={"X-Request-Id": "trace-abc.123"},
        ) as resp:
            assert resp.headers["X-Request-Id"] == "trace-abc.123"
        async with session.post(
            tratta_host.rest_url + "/v1/customer-sessions",
            json={"customer_id": "rid-2"},
            headers={"X-Request-Id": "bad id\twith spaces"},
        ) as resp:
            generated = resp.headers["X-Request-Id"]
            assert generated != "bad id\twith spaces" and len(generated) == 32
        async with session.get(tratta_host.rest_url + "/nowhere") as resp:
            assert resp.status == 404 and resp.headers["X-Request-Id"]
    assert calls_for(fake_tratta, "rid-1")[0].headers["X-Request-Id"] == "trace-abc.123"
    assert calls_for(fake_tratta, "rid-2")[0].headers["X-Request-Id"] == generated


async def test_json_logs_one_object_per_line_with_request_id(
    tmp_path: Path, fake_tratta: FakeUpstream
) -> None:
    config = write_host_toml(
        tmp_path,
        f'[consumes.tratta-customer-sessions]\nbase_uri = "{tratta_base_uri(fake_tratta)}"\n'
        + '[logging]\nformat = "json"\n',
    )
    host = start_host_process(config, environment={"TRATTA_API_KEY": API_KEY})
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                host.rest_url + "/v1/customer-sessions",
                json={"customer_id": "json-log"},
                headers={"X-Request-Id": "jl-1"},
            ) as resp,
        ):
            assert resp.status == 201
    finally:
        assert host.stop() == 0
    lines = [json.loads(line) for line in host.log().splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message", "request_id"} <= set(line) for line in lines)
    assert any(
        line["request_id"] == "jl-1"
        and line["logger"] == "host.access"
        and "POST /v1/customer-sessions 201" in line["message"]
        for line in lines
    )
    assert API_KEY not in host.log()
