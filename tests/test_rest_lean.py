"""The leaner REST path (issue 13) changes costs, never results: each shortcut gives what it replaced."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from host import fastjson, upstream
from host.observability import JsonFormatter, RequestIdFilter, TextFormatter
from host.testing import FakeUpstream, serve_in_process

# Valid and invalid documents, including every case where orjson alone would differ from json.
DOCUMENTS = [
    b'{"customer_id": "c-1", "valid_until": 48}',
    b"[1, 2.5, -0, -0.0, 1e5, 1E-5, true, false, null]",
    b'{"a": 1, "a": 2}',
    b'"caf\\u00e9 \xc3\xa9 \\ud83d\\ude00"',
    b"123456789012345678",  # 18 digits: orjson's own
    b"12345678901234567890123",  # beyond 64 bits: json keeps it an exact integer
    b"-9223372036854775809",
    b"0.12345678901234567890123",
    b'{"id": "12345678901234567890"}',
    b"NaN",
    b"[Infinity, -Infinity]",
    b"1e400",
    b'"\\ud800"',  # a lone surrogate: json accepts it (check_text refuses it later)
    b'\xef\xbb\xbf{"bom": 1}',
    '{"utf16": 1}'.encode("utf-16-le"),
    b"[" * 1500 + b"]" * 1500,
    b"",
    b"{",
    b'{"a" 1}',
    b"[1,]",
    b'"\x01"',
    b"\xff\xfe\x00",
    b'{"a": 1} x',
    b"9" * 5000,
]


def _outcome(load: Any, data: bytes) -> tuple[str, Any]:
    try:
        value = load(data)
    except RecursionError:
        return "RecursionError", None
    except Exception as exc:
        return type(exc).__name__, str(exc)
    return "ok", json.dumps(value, sort_keys=True)  # NaN-safe comparison; int stays int, float stays float


@pytest.mark.parametrize("data", DOCUMENTS, ids=lambda d: repr(d[:24]))
def test_fastjson_loads_gives_what_json_gives(data: bytes) -> None:
    assert _outcome(fastjson.loads, data) == _outcome(json.loads, data)


@pytest.mark.parametrize(
    "value",
    [{"customer_id": "c-1"}, {"é": ["ü", 1.5, None, True]}, [float("nan"), 10**30], "x\n\u2028"],
)
def test_the_compact_encoder_writes_the_same_bytes(value: Any) -> None:
    assert fastjson.dumps_compact(value) == json.dumps(value, separators=(",", ":")).encode()


@pytest.mark.parametrize("formatter", [TextFormatter(), JsonFormatter()], ids=["text", "json"])
def test_cached_timestamps_match_the_standard_ones(formatter: logging.Formatter) -> None:
    reference = logging.Formatter()
    for created in (1_700_000_000.0, 1_700_000_000.999, 1_700_000_001.0005, 1_800_000_000.25):
        record = logging.LogRecord("x", logging.INFO, "", 0, "m", None, None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        for datefmt in (None, "%Y-%m-%dT%H:%M:%S%z"):
            assert formatter.formatTime(record, datefmt) == reference.formatTime(record, datefmt)


def test_upstream_targets_are_cached_within_a_bound() -> None:
    base = "http://127.0.0.1:1/api"
    for n in range(upstream._TARGETS_MAX + 50):
        url, target = upstream._target(base, f"/items/{n}")
        assert str(target) == url == f"{base}/items/{n}"
    assert len(upstream._TARGETS) <= upstream._TARGETS_MAX
    # Dot segments stay literal whether the URL comes from the cache or not.
    for _ in range(2):
        url, target = upstream._target(base, "/items/../admin")
        assert url == upstream.upstream_url(base, "/items/../admin") == f"{base}/items/%2E%2E/admin"
        assert target.raw_path == "/api/items/%2E%2E/admin"


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.addFilter(RequestIdFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_the_access_line_written_after_the_answer_keeps_its_request_id(tmp_path: Path) -> None:
    with FakeUpstream() as fake:
        fake.route("POST", "/api/v1/customer-sessions", status=201, json={"data": {"id": "s"}})
        config = {
            "consumes": {"tratta-customer-sessions": {"base_uri": fake.url + "/api/v1"}},
            "plugins": {"load": ["tratta-customer-sessions"]},
        }
        lines = _Lines()
        access = logging.getLogger("host.access")
        access.addHandler(lines)
        access.setLevel(logging.INFO)
        try:
            async with serve_in_process(config, {"TRATTA_API_KEY": "k" * 20}) as host:
                ids = []
                for n in range(3):
                    response = await host.rest.post("/v1/customer-sessions", json={"customer_id": f"c-{n}"})
                    assert response.status == 201
                    ids.append(response.headers["X-Request-Id"])
                await asyncio.sleep(0)
        finally:
            access.removeHandler(lines)
            access.setLevel(logging.NOTSET)
    written = [(r.request_id, r.getMessage()) for r in lines.records]  # type: ignore[attr-defined]
    assert [rid for rid, _ in written] == ids
    assert all("rest POST /v1/customer-sessions 201" in message for _, message in written)
