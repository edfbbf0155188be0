"""REST inputs: JSONPath body inputs, consumed header/query inputs, base URI joining.

Replays engine/exposes/rest/HttpBodyIntegrationTest, HeaderQueryIntegrationTest and
engine/consumes/http/BaseUriTrailingSlashIntegrationTest.
"""

from __future__ import annotations

import json
from pathlib import Path

from host.testing import FakeUpstream
from tests.naftiko_reference.conftest import RESOURCES, java_capability, replays, serve_capability


@replays("HttpBodyIntegrationTest", 4)
async def test_body_inputs_read_their_jsonpath(fake: FakeUpstream) -> None:
    fake.route("POST", "/create", json={"created": True})
    async with serve_capability(
        RESOURCES / "http" / "http-body-capability.yaml", fake, namespaces={"testns": ""}
    ) as host:
        with fake.capture() as seen:
            answer = await host.rest.post("/users", json={"user": {"id": "123", "name": "Alice"}})
            assert answer.status == 200, await answer.text()
    assert [(request.method, request.path) for request in seen] == [("POST", "/create")]
    assert json.loads(seen[0].body) == {"id": "123", "name": "Alice"}


@replays("HeaderQueryIntegrationTest", 4)
async def test_consumed_header_and_query_from_a_body_input(fake: FakeUpstream) -> None:
    fake.route("POST", "/items", json=[])
    capability = RESOURCES / "http" / "http-header-query-capability.yaml"
    async with serve_capability(capability, fake, namespaces={"testns": ""}) as host:
        with fake.capture() as seen:
            answer = await host.rest.post("/search", json={"user": {"id": "999"}})
            assert answer.status == 200, await answer.text()
    assert len(seen) == 1
    assert seen[0].headers["X-API-Key"] == "ABC123"
    assert seen[0].query.get("q") == "999"  # text, never the quoted JSON value "\"999\""


@replays(
    "BaseUriTrailingSlashIntegrationTest",
    1,
    deviation="the reference refuses a baseUri ending in '/'; "
    "the host joins base and path with exactly one '/'",
)
async def test_trailing_slash_base_uri_is_joined_with_one_slash(fake: FakeUpstream, tmp_path: Path) -> None:
    fake.route("GET", "/v1/items", json={"ok": True})
    text = (RESOURCES / "http" / "http-body-capability.yaml").read_text()
    capability = tmp_path / "slash.yaml"
    capability.write_text(
        text.replace('baseUri: "http://example.com"', f'baseUri: "{fake.url}/v1/"')
        .replace('path: "/create"', 'path: "items"')
        .replace(
            'method: "POST"\n              name: "create"', 'method: "GET"\n              name: "create"'
        )
    )
    async with serve_capability(capability) as host:
        with fake.capture() as seen:
            await host.rest.post("/users", json={"user": {"id": "1", "name": "A"}})
    assert [request.path for request in seen] == ["/v1/items"]


@replays("ForwardHeaderIntegrationTest", 5)
async def test_forward_sends_the_consumed_header_value(fake: FakeUpstream, tmp_path: Path) -> None:
    """A forwarded REST path reaches the consumed namespace with its declared `Notion-Version` value."""
    fake.route("GET", "/v1/pages", json={"ok": True})
    java = "engine/exposes/rest/ForwardHeaderIntegrationTest.java"
    async with serve_capability(java_capability(java, 0, tmp_path, fake.port)) as host:
        with fake.capture() as seen:
            answer = await host.rest.get("/notion/pages")
            assert answer.status == 200, await answer.text()
            assert answer.content_type == "application/json"
            assert await answer.json() == {"ok": True}
    assert [request.path for request in seen] == ["/v1/pages"]
    assert seen[0].headers["Notion-Version"] == "2025-09-03"
