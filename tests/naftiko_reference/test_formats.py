"""Raw formats decoded before the output mapping: csv, yaml, xml, html, markdown.

Replays engine/consumes/http/CsvIntegrationTest, YamlIntegrationTest, XmlIntegrationTest,
HtmlIntegrationTest and MarkdownIntegrationTest: the fake upstream answers the sample file of
src/test/resources/schemas, the REST resource of the format's fixture is called, and the mapped users
are checked. The fixtures' consumed paths have no leading '/' ("api/users"): the reference glues them to
the base URI ("http://localhost:8080api/users"); the host joins them with one '/' (a deliberate
deviation, docs/naftiko-compatibility.md).
"""

from __future__ import annotations

from typing import Any

from host.formats import decode
from host.testing import FakeUpstream
from tests.naftiko_reference.conftest import RESOURCES, replays, serve_capability

SCHEMAS = RESOURCES / "schemas"
USERS = [
    {"id": "1", "name": "Alice Smith", "email": "alice@example.com"},
    {"id": "2", "name": "Bob Johnson", "email": "bob@example.com"},
    {"id": "3", "name": "Carol White", "email": "carol@example.com"},
]


async def _served_users(fake: FakeUpstream, kind: str, sample: str, media_type: str) -> Any:
    fake.route("GET", "/api/users", body=(SCHEMAS / sample).read_bytes(), content_type=media_type)
    capability = RESOURCES / "formats" / f"{kind}-capability.yaml"
    async with serve_capability(capability, fake, namespaces={f"mock-{kind}": ""}) as host:
        with fake.capture() as seen:
            answer = await host.rest.get(f"/{kind}/users")
            assert answer.status == 200, await answer.text()
            document = await answer.json()
    assert [request.path for request in seen] == ["/api/users"]
    return document


@replays("CsvIntegrationTest", 4)
async def test_csv_rows_become_objects(fake: FakeUpstream) -> None:
    assert await _served_users(fake, "csv", "sample-users.csv", "text/csv") == USERS


@replays("YamlIntegrationTest", 16)
async def test_yaml_users_are_mapped(fake: FakeUpstream) -> None:
    decoded = decode((SCHEMAS / "sample-users.yaml").read_bytes(), "yaml")
    assert isinstance(decoded, dict) and len(decoded["users"]) == 3
    assert [{key: str(user[key]) for key in ("id", "name", "email")} for user in decoded["users"]] == USERS
    assert await _served_users(fake, "yaml", "sample-users.yaml", "application/yaml") == USERS


@replays("XmlIntegrationTest", 12)
async def test_xml_users_are_decoded_without_the_root(fake: FakeUpstream) -> None:
    decoded = decode((SCHEMAS / "sample-users.xml").read_bytes(), "xml")
    assert isinstance(decoded, dict) and isinstance(decoded["user"], list) and len(decoded["user"]) == 3
    assert [{key: str(user[key]) for key in ("id", "name", "email")} for user in decoded["user"]] == USERS


async def _served(
    fake: FakeUpstream, kind: str, upstream_path: str, sample: str, media_type: str, path: str
) -> Any:
    fake.route("GET", upstream_path, body=(SCHEMAS / sample).read_bytes(), content_type=media_type)
    capability = RESOURCES / "formats" / f"{kind}-capability.yaml"
    async with serve_capability(capability, fake, namespaces={f"mock-{kind}": ""}) as host:
        answer = await host.rest.get(path)
        assert answer.status == 200, await answer.text()
        return await answer.json()


@replays("HtmlIntegrationTest", 4)
async def test_html_table_rows_become_objects(fake: FakeUpstream) -> None:
    products = await _served(
        fake, "html", "/api/products", "sample-products.html", "text/html", "/html/products"
    )
    assert products == [
        {"name": "Widget", "price": "$42", "stock": "150"},
        {"name": "Gadget", "price": "$99", "stock": "30"},
    ]


@replays("MarkdownIntegrationTest", 4)
async def test_markdown_sections_become_objects(fake: FakeUpstream) -> None:
    decoded = decode((SCHEMAS / "sample-readme.md").read_bytes(), "markdown")
    assert decoded["frontMatter"]["title"] == "Product Release Notes"
    assert len(decoded["tables"]) == 1 and decoded["tables"][0][0]["Status"] == "GA"
    assert decoded["sections"][0]["heading"] == "Overview"
    features = await _served(
        fake, "markdown", "/api/readme", "sample-readme.md", "text/markdown", "/markdown/features"
    )
    assert features == [
        {"feature": "HTML support", "status": "GA"},
        {"feature": "Markdown support", "status": "Beta"},
    ]
