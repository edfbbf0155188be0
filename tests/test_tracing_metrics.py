"""Exemplars (issue 12 part 2): with tracing on, the request-duration histogram links a bucket to the trace
of a sampled request, seen by a scraper that asks for the OpenMetrics format; the classic text format
stays the default, and the existing metrics are unchanged."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from host.testing import FakeUpstream, serve_in_process
from tests.test_tracing_config import capability

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        fake.route("GET", "*", json={"items": []})
        yield fake


def exemplars(text: str, route: str) -> set[str]:
    """Trace ids of the exemplars on the duration histogram's buckets of ``route``."""
    bucket = rf'^host_http_request_duration_seconds_bucket\{{[^}}]*route="{re.escape(route)}"[^}}]*\}}'
    pattern = bucket + r" \S+ # \{([^}]*)\}"
    found = set()
    for labels in re.findall(pattern, text, re.MULTILINE):
        found |= set(re.findall(r'trace_id="([0-9a-f]{32})"', labels))
    return found


async def test_the_duration_histogram_carries_the_trace_id_of_a_sampled_request(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    name = f"ex{secrets.token_hex(3)}"
    config = {"capabilities": [capability(tmp_path, name, upstream.url)], "observability": {"enabled": True}}
    trace_id = secrets.token_hex(16)
    environ = {"OTEL_TRACES_EXPORTER": "none"}  # spans made (and sampled), not exported
    async with serve_in_process(config, environ, discover=False) as served:
        headers = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
        assert (await served.rest.get(f"/{name}/items", headers=headers)).status == 200
        scraped = await served.rest.get("/metrics", headers={"Accept": OPENMETRICS})
        assert scraped.content_type == "application/openmetrics-text"
        text = await scraped.text()
        assert exemplars(text, f"/{name}/items") == {trace_id}
        assert text.rstrip().endswith("# EOF")

        classic = await served.rest.get("/metrics")
        assert classic.content_type == "text/plain"
        body = await classic.text()
        assert "host_http_requests_total" in body and trace_id not in body  # no exemplars in text 0.0.4


async def test_no_exemplar_without_a_sampled_trace(tmp_path: Path, upstream: FakeUpstream) -> None:
    name = f"ex{secrets.token_hex(3)}"
    config = {
        "capabilities": [capability(tmp_path, name, upstream.url)],
        "observability": {"enabled": True, "sampling": 0},
    }
    async with serve_in_process(config, {"OTEL_TRACES_EXPORTER": "none"}, discover=False) as served:
        assert (await served.rest.get(f"/{name}/items")).status == 200
        text = await (await served.rest.get("/metrics", headers={"Accept": OPENMETRICS})).text()
    assert f'route="/{name}/items"' in text
    assert exemplars(text, f"/{name}/items") == set()


async def test_tracing_off_leaves_no_exemplar(tmp_path: Path, upstream: FakeUpstream) -> None:
    name = f"ex{secrets.token_hex(3)}"
    config = {"capabilities": [capability(tmp_path, name, upstream.url)]}
    async with serve_in_process(config, discover=False) as served:
        headers = {"traceparent": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"}
        assert (await served.rest.get(f"/{name}/items", headers=headers)).status == 200
        text = await (await served.rest.get("/metrics", headers={"Accept": OPENMETRICS})).text()
    assert exemplars(text, f"/{name}/items") == set()
