"""OpenTelemetry traces (issue 12 part 2), end to end: `host serve` as a process with
`[observability] enabled = true`, the fake Tratta, and a real OTLP/HTTP receiver on loopback.

One REST call and one MCP tools/call, each with the caller's W3C traceparent: the receiver gets a
server span continuing the caller's trace and a client span under it, and the upstream receives a
traceparent of the same trace whose parent is that client span. Nothing secret is in any span.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from host.testing import FakeUpstream, HostServer, start_host_process, write_host_toml
from tests.conftest import API_KEY, calls_for, tratta_base_uri
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan

TOOL = "create-customer-session"
EXPORT_FAST = {"OTEL_BSP_SCHEDULE_DELAY": "50"}  # the batch processor's delay (ms): the tests wait less


def new_traceparent() -> tuple[str, str, str]:
    """(traceparent, trace id, parent span id): a sampled W3C trace context as a caller sends it."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


@pytest.fixture(scope="module")
def traced_host(
    fake_tratta: FakeUpstream, receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HostServer]:
    config = write_host_toml(
        tmp_path_factory.mktemp("traced"),
        f"""
[consumes.tratta-customer-sessions]
base_uri = "{tratta_base_uri(fake_tratta)}"

[observability]
enabled = true
""",
    )
    environment = {
        "TRATTA_API_KEY": API_KEY,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_SERVICE_NAME": "tracing-test",
        **EXPORT_FAST,
    }
    host = start_host_process(config, plugins=["tratta-customer-sessions"], environment=environment)
    yield host
    assert host.stop() == 0, host.log()


async def rest_call(host: HostServer, customer: str, headers: dict[str, str], query: str = "") -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{host.rest_url}/v1/customer-sessions{query}", json={"customer_id": customer}, headers=headers
        ) as response,
    ):
        await response.read()
        return response.status


async def mcp_call(host: HostServer, name: str, arguments: dict[str, Any], headers: dict[str, str]) -> Any:
    message = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            host.mcp_url, json=message, headers={"Accept": "application/json", **headers}
        ) as response,
    ):
        return json.loads(await response.read())


def one(spans: list[ReceivedSpan], kind: str) -> ReceivedSpan:
    [span] = [span for span in spans if span.kind == kind]
    return span


async def test_a_rest_call_continues_the_callers_trace_down_to_the_upstream(
    traced_host: HostServer, receiver: OtlpReceiver, fake_tratta: FakeUpstream
) -> None:
    traceparent, trace_id, caller_span = new_traceparent()
    customer = f"traced-{trace_id[:8]}"
    assert await rest_call(traced_host, customer, {"traceparent": traceparent}) == 201

    spans = receiver.trace(trace_id, 2)
    server, client = one(spans, "server"), one(spans, "client")
    assert server.parent_span_id == caller_span  # the caller's span is the server span's parent
    assert client.parent_span_id == server.span_id  # the upstream call is the server span's child
    assert server.name == "POST /v1/customer-sessions"
    assert server.attributes["http.request.method"] == "POST"
    assert server.attributes["http.route"] == "/v1/customer-sessions"
    assert server.attributes["http.response.status_code"] == 201
    assert server.attributes["url.path"] == "/v1/customer-sessions"
    assert server.attributes["server.address"] == "127.0.0.1"
    assert not server.error
    assert client.name == "POST"
    assert client.attributes["http.response.status_code"] == 201
    assert client.attributes["url.full"] == tratta_base_uri(fake_tratta) + "/customer-sessions"
    assert client.attributes["peer.service"] == "tratta-customer-sessions"
    assert server.resource["service.name"] == "tracing-test"

    [call] = calls_for(fake_tratta, customer)
    sent = call.headers["traceparent"].split("-")
    assert sent[1] == trace_id and sent[2] == client.span_id and sent[3] == "01"


async def test_an_mcp_tools_call_is_one_server_span_named_after_the_tool(
    traced_host: HostServer, receiver: OtlpReceiver, fake_tratta: FakeUpstream
) -> None:
    traceparent, trace_id, caller_span = new_traceparent()
    customer = f"traced-{trace_id[:8]}"
    answer = await mcp_call(
        traced_host, TOOL, {"body": {"customer_id": customer}}, {"traceparent": traceparent}
    )
    assert answer["result"].get("isError") is not True, answer

    spans = receiver.trace(trace_id, 2)
    server, client = one(spans, "server"), one(spans, "client")
    assert server.parent_span_id == caller_span
    assert client.parent_span_id == server.span_id
    assert server.name == f"tools/call {TOOL}"
    assert server.attributes["mcp.method.name"] == "tools/call"
    assert server.attributes["gen_ai.tool.name"] == TOOL
    assert server.attributes["gen_ai.operation.name"] == "execute_tool"
    assert server.attributes["jsonrpc.request.id"] == "7"
    assert server.attributes["http.response.status_code"] == 200
    assert "mcp.session.id" not in server.attributes  # stateless: no session of this host to name
    assert not server.error

    [call] = calls_for(fake_tratta, customer)
    assert call.headers["traceparent"].split("-")[1:3] == [trace_id, client.span_id]


async def test_a_call_without_traceparent_starts_a_trace_and_sends_it_upstream(
    traced_host: HostServer, receiver: OtlpReceiver, fake_tratta: FakeUpstream
) -> None:
    customer = f"root-{secrets.token_hex(4)}"
    assert await rest_call(traced_host, customer, {}) == 201
    [call] = calls_for(fake_tratta, customer)
    trace_id = call.headers["traceparent"].split("-")[1]
    spans = receiver.trace(trace_id, 2)
    assert one(spans, "server").parent_span_id == ""  # a root span: the host started the trace


async def test_failures_are_error_spans_with_their_type(
    traced_host: HostServer, receiver: OtlpReceiver
) -> None:
    traceparent, trace_id, _ = new_traceparent()
    assert await rest_call(traced_host, "status-503", {"traceparent": traceparent}) == 502
    spans = receiver.trace(trace_id, 2)
    server = one(spans, "server")
    assert server.error and server.attributes["error.type"] == "502"
    clients = [span for span in spans if span.kind == "client"]  # a POST is never retried
    assert [span.attributes["error.type"] for span in clients] == ["503"]

    traceparent, trace_id, _ = new_traceparent()
    answer = await mcp_call(
        traced_host, TOOL, {"body": {"customer_id": "status-422"}}, {"traceparent": traceparent}
    )
    assert answer["result"]["isError"] is True
    server = one(receiver.trace(trace_id, 2), "server")
    assert server.error and server.attributes["error.type"] == "tool_error"

    traceparent, trace_id, _ = new_traceparent()
    answer = await mcp_call(traced_host, "no-such-tool", {}, {"traceparent": traceparent})
    [server] = receiver.trace(trace_id, 1)
    assert server.attributes["error.type"] == server.attributes["rpc.response.status_code"]
    assert server.attributes["error.type"] == str(answer["error"]["code"])


async def test_no_span_carries_a_secret_a_query_value_or_a_portal_url(
    traced_host: HostServer, receiver: OtlpReceiver
) -> None:
    traceparent, trace_id, _ = new_traceparent()
    query = "?api_key=QUERYSECRET123456&customer=QUERYVALUE"
    status = await rest_call(traced_host, f"redact-{trace_id[:6]}", {"traceparent": traceparent}, query)
    assert status == 201
    answer = await mcp_call(
        traced_host, TOOL, {"body": {"customer_id": "ARGUMENTVALUE"}}, {"traceparent": traceparent}
    )
    assert "SECRETLINK" in json.dumps(answer)  # the caller got the portal URL ...
    spans = receiver.trace(trace_id, 4)
    server = next(span for span in spans if span.name == "POST /v1/customer-sessions")
    assert server.attributes["url.query"] == "api_key=REDACTED&customer=REDACTED"
    wire = b"".join(span.raw for span in spans)
    for secret in (API_KEY, "QUERYSECRET123456", "QUERYVALUE", "SECRETLINK", "ARGUMENTVALUE", "Bearer"):
        assert secret.encode() not in wire, secret  # ... no span did


async def test_probes_and_scrapes_are_not_traced(traced_host: HostServer, receiver: OtlpReceiver) -> None:
    traceparent, trace_id, _ = new_traceparent()
    async with aiohttp.ClientSession(headers={"traceparent": traceparent}) as session:
        for path in ("/healthz", "/readyz", "/metrics"):
            async with session.get(traced_host.rest_url + path) as response:
                assert response.status == 200
    marker_parent, marker_trace, _ = new_traceparent()
    await rest_call(traced_host, f"marker-{marker_trace[:6]}", {"traceparent": marker_parent})
    spans = receiver.trace(marker_trace, 2)  # exported after the probes: they would be here by now
    assert spans and not [span for span in receiver.spans if span.trace_id == trace_id]
