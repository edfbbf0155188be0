"""A caller's path argument is one path segment, never a way out of the operation's path (issue 10 #5).

``GET /v1/customers/%2e%2e`` used to reach ``GET /api/v1/`` upstream: aiohttp decodes ``%2e%2e`` to
``..``, and the client's URL normalisation resolved it. Dot segments from caller values are now sent
percent-encoded, and the upstream URL is never normalised.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from mcp import Client

from host.testing import FakeUpstream, HostServer
from tests.fuzz_capability import serve_fuzz_capability


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream()
    fake.start()
    fake.route("*", "*", status=404, json={"where": "outside the template"})
    fake.route("GET", "/api/v1/customers/{id}", json={"id": "x"})
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def host(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostServer]:
    server = serve_fuzz_capability(tmp_path_factory.mktemp("paths"), upstream)
    yield server
    server.stop()


@pytest.mark.parametrize(("raw", "value"), [("%2e%2e", ".."), ("%2E", "."), ("..", ".."), ("%2e", ".")])
async def test_rest_dot_segments_stay_inside_the_operation_path(
    host: HostServer, upstream: FakeUpstream, raw: str, value: str
) -> None:
    before = len(upstream.requests)
    async with (
        aiohttp.ClientSession() as session,
        session.get(aiohttp.client.URL(f"{host.rest_url}/v1/customers/{raw}", encoded=True)) as response,
    ):
        assert response.status in (200, 404, 422), await response.text()
    sent = upstream.requests[before:]
    if response.status == 200:  # sent: as one segment of the operation's own template
        [request] = sent
        assert request.path == f"/api/v1/customers/{value}" and request.path_params == {"id": value}
    else:  # refused by the host (aiohttp itself resolves a literal /.. in the caller's own URL)
        assert all(request.path.startswith("/api/v1/customers/") for request in sent)


@pytest.mark.parametrize("value", ["..", ".", "%2e%2e", "%2E"])
async def test_mcp_dot_segments_stay_inside_the_operation_path(
    host: HostServer, upstream: FakeUpstream, value: str
) -> None:
    before = len(upstream.requests)
    async with Client(host.mcp_url) as client:
        result = await client.call_tool("get-customer", {"id": value})
    assert not result.is_error, result
    [request] = upstream.requests[before:]
    assert request.path_params == {"id": value}
    assert request.path == f"/api/v1/customers/{value}"


def test_nothing_was_logged_as_an_error(host: HostServer) -> None:
    log = Path(host.log_path).read_text()
    assert "Traceback" not in log
