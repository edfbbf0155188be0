"""Hostile argument values get a clean refusal, never a traceback (issue 10 #12, #16, a rough edge).

A NUL byte in a header argument, or a lone surrogate in a path or body argument, gave 500 / -32603
and an ERROR traceback; control characters and 20 KB values in header arguments were sent upstream.
The fuzz test feeds such values into every argument location over REST and MCP.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import tratta_customer_sessions
from mcp import Client

from host.arguments import ArgumentValidator, check_text
from host.config import ConsumeConfig, HostConfig
from host.engine import Engine
from host.errors import InvalidArguments
from host.plugins import load_catalog
from host.testing import FakeUpstream, HostServer
from tests.fuzz_capability import serve_fuzz_capability

HOSTILE: list[Any] = [
    "\x00",
    "a\x00b",
    "a\x0bb",
    "a\x7fb",
    "\ud800",
    "x\udfffy",
    "a\r\nX-Injected: 1",
    "\n",
    "x" * 20_000,
    "..",
    ".",
    "%2e%2e",
    "../../admin",
    10**30,
    -(10**40),
]


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream()
    fake.start()
    fake.route("*", "*", json={"ok": True})
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def host(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostServer]:
    server = serve_fuzz_capability(tmp_path_factory.mktemp("fuzz"), upstream)
    yield server
    server.stop()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _url_quote(value: Any) -> str:
    return quote(_text(value).encode("utf-8", "surrogatepass"), safe="")


async def _rest(session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> None:
    async with session.request(method, aiohttp.client.URL(url, encoded=True), **kwargs) as response:
        body = await response.read()
        assert response.status < 500, (url, response.status, body[:300])
        if response.status == 422:  # the host's own refusal of an argument names it
            assert response.content_type == "application/problem+json", (url, body[:300])
            assert json.loads(body)["errors"], body[:300]


async def test_rest_every_location(host: HostServer) -> None:
    base = f"{host.rest_url}/v1/customers"
    async with aiohttp.ClientSession() as session:
        for value in HOSTILE:
            quoted = _url_quote(value)
            # A request line over 8 KB is refused by the HTTP parser, before any argument exists.
            if len(quoted) < 4096:
                await _rest(session, "GET", f"{base}/{quoted}")
                await _rest(session, "GET", f"{base}/1?q={quoted}")
                await _rest(session, "GET", f"{base}/1?X-Trace={quoted}")
            raw = json.dumps({"note": value, "nested": [value]}).encode()
            headers = {"Content-Type": "application/json"}
            await _rest(session, "PUT", f"{base}/1", data=raw, headers=headers)
        huge = b'{"note": ' + b"9" * 5000 + b"}"
        await _rest(session, "PUT", f"{base}/1", data=huge, headers={"Content-Type": "application/json"})
    _assert_clean_log(host)


MODERN = "2026-07-28"  # the stateless protocol era: every request stands alone


async def call_tool(session: aiohttp.ClientSession, url: str, name: str, arguments: Any) -> dict[str, Any]:
    """tools/call as raw JSON-RPC: the SDK client cannot even encode a lone surrogate, a caller can."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    message = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments, "_meta": meta},
    }
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/call",
        "Mcp-Name": name,
    }
    async with session.post(url, data=json.dumps(message), headers=headers) as response:
        text = await response.text()
        assert response.status < 500, (name, response.status, text[:300])
    if response.content_type == "text/event-stream":
        events = [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]
        return dict(events[-1])
    return dict(json.loads(text))


def _assert_clean_answer(answer: dict[str, Any]) -> None:
    if "error" in answer:
        assert answer["error"]["code"] == -32602, answer
    else:
        assert isinstance(answer["result"].get("isError", False), bool), answer


async def test_mcp_every_location(host: HostServer) -> None:
    async with aiohttp.ClientSession() as session:
        for value in HOSTILE:
            for name, arguments in [
                ("get-customer", {"id": value}),
                ("get-customer", {"id": "1", "q": value}),
                ("get-customer", {"id": "1", "X-Trace": value}),
                ("update-customer", {"id": "1", "body": {"note": value, "list": [value]}}),
            ]:
                _assert_clean_answer(await call_tool(session, host.mcp_url, name, arguments))
    _assert_clean_log(host)


REFUSED_HEADER_VALUES = ["a\x00b", "a\x0bb", "a\x7fb", "a\x1fb", "a\rb", "a\nb"]


@pytest.mark.parametrize("value", REFUSED_HEADER_VALUES)
async def test_rest_header_argument_with_control_characters_is_422_naming_it(
    host: HostServer, upstream: FakeUpstream, value: str
) -> None:
    before = len(upstream.requests)
    url = f"{host.rest_url}/v1/customers/1?X-Trace={_url_quote(value)}"
    async with (
        aiohttp.ClientSession() as session,
        session.get(aiohttp.client.URL(url, encoded=True)) as response,
    ):
        problem = await response.json(content_type=None)
    assert response.status == 422, problem
    [reason] = problem["errors"]["X-Trace"]
    assert "control characters" in reason or "line breaks" in reason
    assert len(upstream.requests) == before  # nothing sent


@pytest.mark.parametrize("value", [*REFUSED_HEADER_VALUES, "x" * 9000, "x" * 20_000])
async def test_mcp_header_argument_with_control_characters_or_too_long_names_it(
    host: HostServer, upstream: FakeUpstream, value: str
) -> None:
    before = len(upstream.requests)
    async with Client(host.mcp_url) as client:
        result = await client.call_tool("get-customer", {"id": "1", "X-Trace": value})
    text = result.model_dump_json()
    assert result.is_error and "X-Trace" in text, text
    assert any(reason in text for reason in ("control characters", "line breaks", "at most 8192 bytes")), text
    assert len(upstream.requests) == before


async def test_lone_surrogates_are_refused_naming_the_argument(
    host: HostServer, upstream: FakeUpstream
) -> None:
    before = len(upstream.requests)
    async with aiohttp.ClientSession() as session:
        in_path = await call_tool(session, host.mcp_url, "get-customer", {"id": "\ud800"})
        in_body = await call_tool(
            session, host.mcp_url, "update-customer", {"id": "1", "body": {"note": "x\udfff"}}
        )
    for answer, name in ((in_path, "id"), (in_body, "body.note")):
        text = json.dumps(answer)
        assert answer["result"]["isError"] and name in text and "lone surrogate" in text, text
    assert len(upstream.requests) == before


def _assert_clean_log(host: HostServer) -> None:
    log = host.log()
    assert "Traceback" not in log, log[log.find("Traceback") - 300 :][:4000]
    assert " ERROR " not in log and '"level": "ERROR"' not in log, log[-3000:]


async def test_integral_floats_for_integer_fields_are_sent_as_integers(upstream: FakeUpstream) -> None:
    upstream.route("POST", "/api/v1/customer-sessions", status=201, json={"data": {"id": "s1"}})
    catalog = load_catalog(extra_plugins=[("tratta", tratta_customer_sessions)], discover=False, environ={})
    consume = ConsumeConfig(base_uri=upstream.url + "/api/v1")
    config = HostConfig(consumes={"tratta-customer-sessions": consume})
    engine = Engine.from_catalog(catalog, config, {"TRATTA_API_KEY": "tok_float_0123456789"})
    await engine.start()
    try:
        response = await engine.call(
            "tratta-customer-sessions.createcustomersession",
            {"body": {"customer_id": "c1", "valid_until": 21.0}},
        )
    finally:
        await engine.close()
    assert response.status == 201
    sent = upstream.requests[-1]
    assert sent.body == b'{"customer_id":"c1","valid_until":21}'
    assert json.loads(sent.body)["valid_until"] == 21


def test_integral_floats_become_integers_only_where_the_schema_says_integer() -> None:
    validator = ArgumentValidator(
        {
            "type": "object",
            "properties": {
                "counts": {"type": "array", "items": {"type": "integer"}},
                "limits": {"type": "object", "additionalProperties": {"type": ["integer", "null"]}},
                "ratio": {"type": "number"},
            },
        }
    )
    checked = validator.check({"counts": [1.0, 2], "limits": {"a": 4.0, "b": None}, "ratio": 5.0})
    assert checked == {"counts": [1, 2], "limits": {"a": 4, "b": None}, "ratio": 5.0}
    assert [type(n) for n in checked["counts"]] == [int, int] and type(checked["ratio"]) is float
    unchanged = {"counts": [1, 2], "ratio": 0.5}
    assert validator.check(unchanged) is unchanged  # nothing to convert: nothing copied


def test_a_lone_surrogate_in_a_key_is_named_in_a_message_that_can_be_sent() -> None:
    with pytest.raises(InvalidArguments) as refused:
        check_text({"body": {"\udc00k": "v", "ok": ["fine", "x\ud800"]}})
    assert set(refused.value.errors) == {"body.\\udc00k", "body.ok.1"}
    refused.value.detail.encode()  # no surrogate left to break a response or a log line
