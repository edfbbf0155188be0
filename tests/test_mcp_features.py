"""MCP features beyond plain tool calls, against the conformance fixture plugin, in-process.

Content blocks (image, audio, embedded resources), binary resources, prompt content, completion,
logging/setLevel, progress and log notifications over SSE, required client capabilities,
Mcp-Param-* headers and the 2026-07-28 input requests (SEP-2322), over raw HTTP and with the
official SDK client in both protocol eras. tests/test_mcp_conformance.py runs the outside suite.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequestParams,
    ElicitResult,
    ListRootsResult,
    LoggingMessageNotificationParams,
    Root,
    TextContent,
)

import host.adapters.mcp
from host.adapters.mcp import (
    STATE_KEYS_ENV,
    request_state_security,
)
from host.config import HostConfig, LimitsConfig
from host.engine import Engine, Outcome, Target
from host.errors import StartupError
from host.model import InputRequest, InputRequired, InputRound, MockRequest, ResourceBlock
from host.reporting import SILENT, current_report
from host.testing import serve_in_process
from tests.conftest import ROOT

PLUGIN = ROOT / "tests/fixtures/plugins/host-conformance-plugin/host_conformance_plugin/__init__.py"
MODERN = "2026-07-28"
LEGACY = "2025-11-25"
BOTH = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
JSON_ONLY = {"Content-Type": "application/json", "Accept": "application/json"}


def _plugin() -> ModuleType:
    spec = importlib.util.spec_from_file_location("host_conformance_plugin_under_test", PLUGIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@asynccontextmanager
async def _serve(
    *, request_timeout: float = 30.0, environ: dict[str, str] | None = None
) -> AsyncIterator[tuple[TestClient[Any, Any], Engine]]:
    config = HostConfig(limits=LimitsConfig(request_timeout=request_timeout))
    plugins = [("conformance", _plugin())]
    async with serve_in_process(config, environ, extra_plugins=plugins, discover=False) as served:
        yield served.mcp, served.host.engine


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    async with _serve() as (test_client, _):
        yield test_client


def _body(
    method: str,
    params: dict[str, Any] | None = None,
    *,
    modern: bool = True,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    params = dict(params or {})
    envelope: dict[str, Any] = dict(meta or {})
    if modern:
        envelope.setdefault("io.modelcontextprotocol/protocolVersion", MODERN)
        envelope.setdefault("io.modelcontextprotocol/clientCapabilities", {})
    if envelope:
        params["_meta"] = envelope
    return {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}


def _headers(body: dict[str, Any], accept: dict[str, str], *, modern: bool = True) -> dict[str, str]:
    headers = dict(accept)
    if not modern:
        headers["MCP-Protocol-Version"] = LEGACY
        return headers
    headers.update({"MCP-Protocol-Version": MODERN, "Mcp-Method": body["method"]})
    name = body["params"].get("name") or body["params"].get("uri")
    if name:
        headers["Mcp-Name"] = name
    return headers


async def _post(
    client: TestClient[Any, Any],
    method: str,
    params: dict[str, Any] | None = None,
    *,
    modern: bool = True,
    meta: dict[str, Any] | None = None,
    accept: dict[str, str] = BOTH,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, list[dict[str, Any]]]:
    """Status, content type and the JSON-RPC messages of the answer (one for JSON, each event for SSE)."""
    body = _body(method, params, modern=modern, meta=meta)
    sent = {**_headers(body, accept, modern=modern), **(headers or {})}
    async with client.post("/mcp", json=body, headers=sent) as response:
        text = await response.text()
        kind = response.headers.get("Content-Type", "").split(";")[0]
        if kind == "text/event-stream":  # only tool answers stream here, all mocked
            assert response.headers.get("X-Host-Mock") == "true"
        if kind == "text/event-stream":
            events = [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]
            return response.status, kind, events
        return response.status, kind, [json.loads(text)]


async def _result(client: TestClient[Any, Any], method: str, params: dict[str, Any], **kw: Any) -> Any:
    status, _, messages = await _post(client, method, params, **kw)
    assert status == 200, messages
    assert "result" in messages[-1], messages
    return messages[-1]["result"]


# --- content -------------------------------------------------------------------------------------


@pytest.mark.parametrize("modern", [True, False])
async def test_binary_tool_answers_are_image_and_audio_content(
    client: TestClient[Any, Any], modern: bool
) -> None:
    plugin = _plugin()
    image = await _result(
        client, "tools/call", {"name": "test_image_content", "arguments": {}}, modern=modern
    )
    assert image["content"] == [
        {"type": "image", "data": base64.b64encode(plugin.PNG).decode(), "mimeType": "image/png"}
    ]
    audio = await _result(
        client, "tools/call", {"name": "test_audio_content", "arguments": {}}, modern=modern
    )
    assert audio["content"][0]["type"] == "audio" and audio["content"][0]["mimeType"] == "audio/wav"
    assert base64.b64decode(audio["content"][0]["data"]) == plugin.WAV


async def test_tool_content_blocks(client: TestClient[Any, Any]) -> None:
    embedded = await _result(client, "tools/call", {"name": "test_embedded_resource", "arguments": {}})
    assert embedded["content"] == [
        {
            "type": "resource",
            "resource": {
                "uri": "test://embedded-resource",
                "mimeType": "text/plain",
                "text": "This is an embedded resource content.",
            },
        }
    ]
    mixed = await _result(client, "tools/call", {"name": "test_multiple_content_types", "arguments": {}})
    assert [block["type"] for block in mixed["content"]] == ["text", "image", "resource"]
    assert json.loads(mixed["content"][2]["resource"]["text"]) == {"test": "data", "value": 123}


def test_resource_block_needs_exactly_one_body() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        ResourceBlock("test://x")
    with pytest.raises(ValueError, match="exactly one"):
        ResourceBlock("test://x", text="a", blob=b"b")


async def test_binary_resource_is_a_blob(client: TestClient[Any, Any]) -> None:
    result = await _result(client, "resources/read", {"uri": "test://static-binary"})
    (contents,) = result["contents"]
    assert contents["mimeType"] == "image/png" and "text" not in contents
    assert base64.b64decode(contents["blob"]) == _plugin().PNG
    text = await _result(client, "resources/read", {"uri": "test://template/42/data"})
    assert json.loads(text["contents"][0]["text"])["id"] == "42"


@pytest.mark.parametrize("modern", [True, False])
async def test_prompt_messages_carry_content_blocks(client: TestClient[Any, Any], modern: bool) -> None:
    params = {"name": "test_prompt_with_embedded_resource", "arguments": {"resourceUri": "test://picked"}}
    embedded = await _result(client, "prompts/get", params, modern=modern)
    first = embedded["messages"][0]["content"]
    assert first == {
        "type": "resource",
        "resource": {
            "uri": "test://picked",
            "mimeType": "text/plain",
            "text": "Embedded resource content for testing.",
        },
    }
    image = await _result(client, "prompts/get", {"name": "test_prompt_with_image"}, modern=modern)
    assert image["messages"][0]["content"]["type"] == "image"
    assert image["messages"][1]["content"] == {"type": "text", "text": "Please analyze the image above."}


@pytest.mark.parametrize(
    ("typed", "values"), [("PA", ["paris", "park", "party"]), ("part", ["party"]), ("x", [])]
)
async def test_completion_filters_choices_by_prefix(
    client: TestClient[Any, Any], typed: str, values: list[str]
) -> None:
    params = {
        "ref": {"type": "ref/prompt", "name": "test_prompt_with_arguments"},
        "argument": {"name": "arg1", "value": typed},
    }
    result = await _result(client, "completion/complete", params)
    assert result["completion"]["values"] == values and result["completion"]["total"] == len(values)
    other = {**params, "argument": {"name": "arg2", "value": ""}}
    assert (await _result(client, "completion/complete", other))["completion"]["values"] == []


async def test_logging_set_level_is_accepted_in_the_handshake_era_only(client: TestClient[Any, Any]) -> None:
    assert await _result(client, "logging/setLevel", {"level": "info"}, modern=False) == {}
    status, _, (error,) = await _post(client, "logging/setLevel", {"level": "info"})
    assert status == 404 and error["error"]["code"] == -32601


# --- notifications over SSE ---------------------------------------------------------------------


@pytest.mark.parametrize("modern", [True, False])
async def test_progress_switches_the_answer_to_sse(client: TestClient[Any, Any], modern: bool) -> None:
    params = {"name": "test_tool_with_progress", "arguments": {}}
    status, kind, messages = await _post(
        client, "tools/call", params, modern=modern, meta={"progressToken": "p-1"}
    )
    assert status == 200 and kind == "text/event-stream"
    *notes, final = messages
    assert [(n["method"], n["params"]["progress"], n["params"]["progressToken"]) for n in notes] == [
        ("notifications/progress", 0, "p-1"),
        ("notifications/progress", 50, "p-1"),
        ("notifications/progress", 100, "p-1"),
    ]
    assert final["id"] == 7 and final["result"]["content"][0]["text"].startswith("Tool with progress")


@pytest.mark.parametrize(
    ("meta", "accept"),
    [({}, BOTH), ({"progressToken": "p-1"}, JSON_ONLY)],
    ids=["no progress token", "client takes JSON only"],
)
async def test_without_token_or_sse_the_answer_stays_json(
    client: TestClient[Any, Any], meta: dict[str, Any], accept: dict[str, str]
) -> None:
    params = {"name": "test_tool_with_progress", "arguments": {}}
    status, kind, (message,) = await _post(client, "tools/call", params, meta=meta, accept=accept)
    assert (status, kind) == (200, "application/json") and "result" in message


@pytest.mark.parametrize(
    ("modern", "log_level", "expected"),
    [(False, None, 3), (True, None, 0), (True, "info", 3), (True, "error", 0)],
    ids=["handshake era: every level", "2026 without logLevel", "2026 at info", "2026 at error"],
)
async def test_log_messages_follow_the_requests_level(
    client: TestClient[Any, Any], modern: bool, log_level: str | None, expected: int
) -> None:
    meta = {"io.modelcontextprotocol/logLevel": log_level} if log_level else None
    params = {"name": "test_tool_with_logging", "arguments": {}}
    _, kind, messages = await _post(client, "tools/call", params, modern=modern, meta=meta)
    logs = [m["params"] for m in messages if m.get("method") == "notifications/message"]
    assert len(logs) == expected
    assert kind == ("text/event-stream" if expected else "application/json")
    if logs:
        assert logs[0] == {"level": "info", "data": "Tool execution started"}
    assert "result" in messages[-1]


async def test_sdk_client_receives_progress_and_logs_in_both_eras(client: TestClient[Any, Any]) -> None:
    url = str(client.make_url("/mcp"))
    for mode in ("auto", "legacy"):
        logs: list[LoggingMessageNotificationParams] = []
        progress: list[float] = []

        async def on_log(params: LoggingMessageNotificationParams) -> None:
            logs.append(params)  # noqa: B023

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(value)  # noqa: B023

        async with Client(url, mode=mode, logging_callback=on_log, log_level="debug") as sdk:
            result = await sdk.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
            assert not result.is_error
            assert progress == [0, 50, 100], mode
            await sdk.call_tool("test_tool_with_logging", {})
            assert [entry.data for entry in logs] == [
                "Tool execution started",
                "Tool processing data",
                "Tool execution completed",
            ], mode


async def test_a_stream_that_runs_out_of_time_ends_with_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host.adapters.mcp, "SSE_PING_INTERVAL", 0.05)
    async with _serve(request_timeout=0.5) as (test_client, engine):

        async def slow_run(target: Target, arguments: Any) -> Outcome:
            current_report().progress(1, 2)
            await asyncio.sleep(30)
            raise AssertionError("not reached")

        monkeypatch.setattr(engine, "run", slow_run)
        params = {"name": "test_tool_with_progress", "arguments": {}}
        body = _body("tools/call", params, meta={"progressToken": 5})
        async with test_client.post("/mcp", json=body, headers=_headers(body, BOTH)) as response:
            assert response.headers["Content-Type"] == "text/event-stream"
            text = await response.text()
    events = [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]
    assert events[0]["params"] == {"progressToken": 5, "progress": 1, "total": 2}
    assert events[-1]["id"] == 7 and "longer than 0.5 s" in events[-1]["error"]["message"]
    assert ": ping" in text  # keep-alive comments while the call was quiet


def test_mock_reports_outside_an_mcp_call_are_dropped() -> None:
    request = MockRequest("GET", "/x", {}, None)
    assert request.report is SILENT
    request.report.progress(1, 2)
    with pytest.raises(ValueError, match="not one of"):
        request.report.log("loud", "x")


async def test_reports_reach_an_in_process_client_too() -> None:
    """The same handlers serve stdio and in-process clients: reports use the SDK's request channel."""
    plugins = [("conformance", _plugin())]
    async with serve_in_process(extra_plugins=plugins, discover=False) as served:
        for mode in ("auto", "legacy"):
            progress: list[float] = []
            logs: list[Any] = []

            async def on_progress(value: float, total: float | None, message: str | None) -> None:
                progress.append(value)  # noqa: B023

            async def on_log(params: LoggingMessageNotificationParams) -> None:
                logs.append(params.data)  # noqa: B023

            client = served.in_memory_mcp_client(mode=mode, logging_callback=on_log, log_level="info")
            async with client as sdk:
                await sdk.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
                await sdk.call_tool("test_tool_with_logging", {})
            assert progress == [0, 50, 100] and len(logs) == 3, mode


# --- client capabilities and headers ------------------------------------------------------------


async def test_a_required_client_capability_is_checked_in_2026(client: TestClient[Any, Any]) -> None:
    params = {"name": "test_missing_capability", "arguments": {}}
    status, _, (error,) = await _post(client, "tools/call", params)
    assert status == 400
    assert error["error"]["code"] == -32021 and error["error"]["data"] == {
        "requiredCapabilities": {"sampling": {}}
    }
    declared = {"io.modelcontextprotocol/clientCapabilities": {"sampling": {}}}
    assert not (await _result(client, "tools/call", params, meta=declared))["isError"]
    # The handshake era declared capabilities on another request: nothing to check against.
    assert not (await _result(client, "tools/call", params, modern=False))["isError"]


@pytest.mark.parametrize(
    ("header", "status"),
    [("eu-west", 200), ("=?base64?ZXUtd2VzdA==?=", 200), ("us-east", 400), (None, 400)],
)
async def test_mcp_param_headers_must_match_the_arguments(
    client: TestClient[Any, Any], header: str | None, status: int
) -> None:
    extra = {"Mcp-Param-Region": header} if header is not None else {}
    params = {"name": "test_header_param", "arguments": {"region": "eu-west"}}
    got, _, (message,) = await _post(client, "tools/call", params, headers=extra)
    assert got == status, message
    if status == 400:
        assert message["error"]["code"] == -32020


async def test_header_values_lose_surrounding_whitespace(client: TestClient[Any, Any]) -> None:
    params = {"name": "test_simple_text", "arguments": {}}
    status, _, (message,) = await _post(
        client, "tools/call", params, headers={"Mcp-Name": "  test_simple_text \t"}
    )
    assert status == 200 and not message["result"]["isError"]


# --- input requests (SEP-2322) ------------------------------------------------------------------

ALL_CAPABILITIES = {
    "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}, "sampling": {}, "roots": {}}
}


async def test_input_request_round_trip_with_sealed_state(client: TestClient[Any, Any]) -> None:
    params: dict[str, Any] = {"name": "test_input_required_result_multi_round", "arguments": {}}
    first = await _result(client, "tools/call", params, meta=ALL_CAPABILITIES)
    assert first["resultType"] == "input_required" and list(first["inputRequests"]) == ["step1"]
    state = first["requestState"]
    assert "step" not in state  # encrypted, not just signed

    second = await _result(
        client,
        "tools/call",
        {
            **params,
            "inputResponses": {"step1": {"action": "accept", "content": {"name": "Ada"}}},
            "requestState": state,
        },
        meta=ALL_CAPABILITIES,
    )
    assert list(second["inputRequests"]) == ["step2"] and second["requestState"] != state

    tampered = {**params, "inputResponses": {"step2": {"action": "accept", "content": {"color": "red"}}}}
    status, _, (error,) = await _post(
        client,
        "tools/call",
        {**tampered, "requestState": second["requestState"][:-2] + "AA"},
        meta=ALL_CAPABILITIES,
    )
    assert status == 400 and error["error"]["code"] == -32602

    other_arguments = {**tampered, "arguments": {"x": 1}, "requestState": second["requestState"]}
    status, _, (error,) = await _post(client, "tools/call", other_arguments, meta=ALL_CAPABILITIES)
    assert status == 400 and error["error"]["code"] == -32602  # the state is bound to the call's arguments

    done = await _result(
        client, "tools/call", {**tampered, "requestState": second["requestState"]}, meta=ALL_CAPABILITIES
    )
    assert done["resultType"] == "complete" and done["content"][0]["text"] == "Ada likes red"


@pytest.mark.parametrize("shared", [True, False], ids=["shared key", "process-local keys"])
async def test_request_state_opens_on_another_worker_only_with_a_shared_key(shared: bool) -> None:
    environ = {STATE_KEYS_ENV: "k" * 40 + ", " + "o" * 32} if shared else {}
    params: dict[str, Any] = {"name": "test_input_required_result_request_state", "arguments": {}}
    async with _serve(environ=environ) as (first, _), _serve(environ=environ) as (second, _):
        asked = await _result(first, "tools/call", params, meta=ALL_CAPABILITIES)
        retry = {
            **params,
            "inputResponses": {"confirm": {"action": "accept", "content": {"ok": True}}},
            "requestState": asked["requestState"],
        }
        status, _, (message,) = await _post(second, "tools/call", retry, meta=ALL_CAPABILITIES)
    if shared:
        assert status == 200 and message["result"]["content"][0]["text"] == "state-ok: confirmed=True"
    else:
        assert status == 400 and message["error"]["code"] == -32602


def test_a_short_request_state_key_stops_start_up() -> None:
    with pytest.raises(StartupError, match=STATE_KEYS_ENV):
        request_state_security({STATE_KEYS_ENV: "too-short"})


async def test_input_requests_need_the_clients_capability(client: TestClient[Any, Any]) -> None:
    params = {"name": "test_input_required_result_elicitation", "arguments": {}}
    status, _, (error,) = await _post(client, "tools/call", params)  # no capabilities declared
    assert status == 400 and error["error"]["data"] == {"requiredCapabilities": {"elicitation": {}}}


async def test_input_requests_in_the_handshake_era_are_a_tool_error(client: TestClient[Any, Any]) -> None:
    result = await _result(
        client,
        "tools/call",
        {"name": "test_input_required_result_elicitation", "arguments": {}},
        modern=False,
    )
    assert result["isError"] and "2026-07-28" in result["content"][0]["text"]
    status, _, (error,) = await _post(
        client, "prompts/get", {"name": "test_input_required_result_prompt"}, modern=False
    )
    assert status == 200 and error["error"]["code"] == -32600


async def test_sdk_client_answers_input_requests(client: TestClient[Any, Any]) -> None:
    answers = {"name": "Grace", "color": "green", "context": "a test"}

    async def elicit(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        schema = getattr(params, "requested_schema", None) or {}
        return ElicitResult(action="accept", content={key: answers[key] for key in schema["properties"]})

    async def sample(
        context: ClientRequestContext, params: CreateMessageRequestParams
    ) -> CreateMessageResult:
        return CreateMessageResult(
            role="assistant", content=TextContent(type="text", text="Paris."), model="m"
        )

    async def roots(context: ClientRequestContext) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri="file:///work", name="work")])

    async with Client(
        str(client.make_url("/mcp")),
        elicitation_callback=elicit,
        sampling_callback=sample,
        list_roots_callback=roots,
    ) as sdk:
        assert sdk.protocol_version == MODERN
        texts = {}
        for tool in ("elicitation", "sampling", "list_roots", "multi_round", "multiple_inputs"):
            result = await sdk.call_tool(f"test_input_required_result_{tool}", {})
            assert not result.is_error, result
            block = result.content[0]
            assert isinstance(block, TextContent)
            texts[tool] = block.text
        prompt = await sdk.get_prompt("test_input_required_result_prompt")
    assert texts == {
        "elicitation": "Hello, Grace!",
        "sampling": "The model answered: Paris.",
        "list_roots": "Client roots: file:///work",
        "multi_round": "Grace likes green",
        "multiple_inputs": "Paris. Grace (1 root(s))",
    }
    assert prompt.messages[0].content == TextContent(type="text", text="Answer with this context: a test")


def test_input_round_helpers() -> None:
    inputs = InputRound(
        arguments={},
        responses={
            "form": {"action": "accept", "content": {"a": 1}},
            "no": {"action": "decline"},
            "llm": {"role": "assistant", "content": {"type": "text", "text": "hi"}, "model": "m"},
            "dirs": {"roots": [{"uri": "file:///a"}]},
        },
        state={},
    )
    assert (
        inputs.accepted("form") == {"a": 1} and inputs.accepted("no") is None and inputs.accepted("x") is None
    )
    assert inputs.sampled_text("llm") == "hi" and inputs.sampled_text("form") is None
    assert inputs.roots("dirs") == [{"uri": "file:///a"}] and inputs.roots("llm") is None
    with pytest.raises(ValueError, match="at least one"):
        InputRequired({})
    with pytest.raises(ValueError, match="not one of"):
        InputRequest("tools/call")
    assert InputRequest.sample("q", max_tokens=5).capability == "sampling"
