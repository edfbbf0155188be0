"""Configured secrets never reach a caller through an upstream's answer (issue 10 #8).

An upstream that echoes the credential it was sent (``Bearer <key>``) in a 4xx body or a header must
not hand the key to the caller, over REST or MCP: every configured secret is redacted exactly as in
the logs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from mcp import Client

from host.testing import FakeResponse, FakeUpstream, HostServer, RecordedRequest, start_host_server

KEY = "tok_live_9f8e7d6c5b4a39281706"
ORG = "acme-org"


def _echo(request: RecordedRequest) -> object:
    sent = request.headers.get("Authorization", "")
    return FakeResponse.of_json(
        {"message": f"token {sent} is not allowed", "errors": {"auth": [sent]}, "raw": KEY},
        status=403,
        headers={"X-Debug-Auth": sent},
    )


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream()
    fake.start()
    fake.route("POST", "/api/v1/customer-sessions", handler=_echo)
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def host(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostServer]:
    server = start_host_server(
        tmp_path_factory.mktemp("redaction"),
        ["tratta-customer-sessions"],
        {"tratta-customer-sessions": {"base_uri": upstream.url + "/api/v1"}},
        environment={"TRATTA_API_KEY": KEY, "TRATTA_ORG_UUID": ORG},
    )
    yield server
    server.stop()


async def test_rest_caller_never_gets_the_key_an_upstream_echoes(
    host: HostServer, upstream: FakeUpstream
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{host.rest_url}/v1/customer-sessions",
            json={"customer_id": "c1"},
        ) as response,
    ):
        body = await response.text()
        assert response.status == 403
        assert KEY not in body and KEY not in str(response.headers)
        assert "***" in body
    assert upstream.requests[-1].headers["Authorization"] == f"Bearer {KEY}"  # the key was really sent


async def test_mcp_caller_never_gets_the_key_an_upstream_echoes(host: HostServer) -> None:
    async with Client(host.mcp_url) as client:
        result = await client.call_tool("create-customer-session", {"body": {"customer_id": "c1"}})
    dumped = result.model_dump_json()
    assert result.is_error and "403" in dumped
    assert KEY not in dumped and "***" in dumped


def test_log_is_redacted_too(host: HostServer) -> None:
    assert KEY not in Path(host.log_path).read_text()
