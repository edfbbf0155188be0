"""Avro and Protobuf upstream answers decoded by their ``outputSchema`` file (issue 11 #10).

Built from the reference's AvroIntegrationTest / ProtobufIntegrationTest fixtures
(``formats/avro-capability.yaml``, ``formats/proto-capability.yaml``, ``schemas/test-records.avsc|proto``):
the fixture and its schema are copied side by side, the operation names the schema in ``outputSchema``
and an MCP tool is added beside the REST resource. The fake upstream answers with bytes encoded by the
same libraries from the records the reference's tests use.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import fastavro
import pytest
import yaml

from host.binary_formats import _protobuf_class, check_schema
from host.formats import decode
from host.naftiko import load_capability
from host.testing import FakeUpstream, serve_in_process
from host.testing.inprocess import InProcessHost

REFERENCE = Path("/work/shared/naftiko-reference")
RESOURCES = REFERENCE / "src" / "test" / "resources"
pytestmark = pytest.mark.skipif(not RESOURCES.is_dir(), reason="the Naftiko reference is absent")

RECORDS = [
    {"id": "rec-1", "title": "First", "description": "The first record"},
    {"id": "rec-2", "title": "Second", "description": None},
]
FIXTURES = {  # format: (capability file, schema file, REST path, consumes namespace)
    "avro": ("avro-capability.yaml", "test-records.avsc", "/avro/records", "mock-avro"),
    "protobuf": ("proto-capability.yaml", "test-records.proto", "/proto/records", "mock-proto"),
}


def _avro_bytes(schema_file: Path) -> bytes:
    out = io.BytesIO()
    schema = fastavro.parse_schema(json.loads(schema_file.read_text()))
    fastavro.schemaless_writer(out, schema, {"records": RECORDS})
    return out.getvalue()


def _protobuf_bytes(schema_file: Path) -> bytes:
    message = _protobuf_class(str(schema_file))()
    for record in RECORDS:  # proto2 `required`: an absent description is sent empty
        message.records.add(**{k: v or "" for k, v in record.items()})
    data: bytes = message.SerializeToString()
    return data


def _capability(tmp_path: Path, fmt: str, schema: str | None = None) -> Path:
    """The reference fixture, its schema beside it, ``outputSchema`` set, and an MCP tool added."""
    capability_file, schema_file, _, _ = FIXTURES[fmt]
    document = yaml.safe_load((RESOURCES / "formats" / capability_file).read_text())
    shutil.copy(RESOURCES / "schemas" / schema_file, tmp_path / schema_file)
    consumed = document["capability"]["consumes"][0]["resources"][0]["operations"][0]
    assert consumed["outputRawFormat"] == fmt
    consumed["outputSchema"] = schema if schema is not None else schema_file
    rest_operation = document["capability"]["exposes"][0]["resources"][0]["operations"][0]
    document["capability"]["exposes"].append(
        {
            "type": "mcp",
            "namespace": f"{fmt}-tools",
            "port": 9191,
            "tools": [
                {
                    "name": "list-records",
                    "description": "The records",
                    "call": rest_operation["call"],
                    "outputParameters": rest_operation["outputParameters"],
                }
            ],
        }
    )
    path = tmp_path / capability_file
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _config(capability: Path, namespace: str, upstream: FakeUpstream) -> str:
    return (
        f'[plugins]\nload = []\n\n[[capabilities]]\npath = "{capability}"\n\n'
        f'[consumes.{namespace}]\nbase_uri = "{upstream.url}"\n'
    )


async def _tool(host: InProcessHost) -> Any:
    answer = await host.mcp.post(
        "/mcp",
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "list-records", "arguments": {}},
        },
        headers={"Accept": "application/json, text/event-stream"},
    )
    assert answer.status == 200, await answer.text()
    return (await answer.json())["result"]


EXPECTED = {
    "avro": RECORDS,
    "protobuf": [{**r, "description": r["description"] or ""} for r in RECORDS],
}


@pytest.mark.parametrize("fmt", ["avro", "protobuf"])
async def test_rest_and_mcp_answers_carry_the_decoded_records(tmp_path: Path, fmt: str) -> None:
    capability = _capability(tmp_path, fmt)
    _, schema_file, rest_path, namespace = FIXTURES[fmt]
    encode = _avro_bytes if fmt == "avro" else _protobuf_bytes
    with FakeUpstream() as upstream:
        upstream.route("GET", "/api/records", body=encode(tmp_path / schema_file))
        async with serve_in_process(_config(capability, namespace, upstream), {}, discover=False) as host:
            answer = await host.rest.get(rest_path)
            assert answer.status == 200, await answer.text()
            assert await answer.json() == EXPECTED[fmt]
            result = await _tool(host)
            assert not result.get("isError"), result
            assert json.loads(result["content"][0]["text"]) == EXPECTED[fmt]


@pytest.mark.parametrize("fmt", ["avro", "protobuf"])
async def test_a_body_that_does_not_decode_is_a_502_naming_the_format(tmp_path: Path, fmt: str) -> None:
    capability = _capability(tmp_path, fmt)
    _, _, rest_path, namespace = FIXTURES[fmt]
    with FakeUpstream() as upstream:
        upstream.route("GET", "/api/records", body=b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")
        async with serve_in_process(_config(capability, namespace, upstream), {}, discover=False) as host:
            answer = await host.rest.get(rest_path)
            assert answer.status == 502, await answer.text()
            assert answer.content_type == "application/problem+json"
            assert fmt in (await answer.json())["detail"]
            result = await _tool(host)
            assert result["isError"] is True and fmt in result["content"][0]["text"]


@pytest.mark.parametrize("fmt", ["avro", "protobuf"])
def test_a_missing_schema_file_is_a_load_error_naming_file_and_key(tmp_path: Path, fmt: str) -> None:
    report = load_capability(_capability(tmp_path, fmt, schema="missing.schema"))
    assert report.status == "ERROR" and not report.rest
    assert any("missing.schema" in e and "outputSchema" in e for e in report.errors), report.errors


@pytest.mark.parametrize("fmt", ["avro", "protobuf"])
def test_a_schema_outside_the_capability_folder_is_refused(tmp_path: Path, fmt: str) -> None:
    folder = tmp_path / "capability"
    folder.mkdir()
    outside = RESOURCES / "schemas" / FIXTURES[fmt][1]
    report = load_capability(_capability(folder, fmt, schema=f"file://{outside}"))
    assert report.status == "ERROR" and not report.rest
    assert any("outside" in e and "outputSchema" in e for e in report.errors), report.errors


def test_an_unusable_schema_is_a_load_error(tmp_path: Path) -> None:
    (tmp_path / "bad.avsc").write_text('{"type": "record"}')
    (tmp_path / "bad.proto").write_text("message {")
    for fmt, name in (("avro", "bad.avsc"), ("protobuf", "bad.proto")):
        with pytest.raises(ValueError):
            check_schema(fmt, tmp_path / name)


def test_an_avro_container_file_needs_no_schema(tmp_path: Path) -> None:
    schema = fastavro.parse_schema(json.loads((RESOURCES / "schemas" / "test-records.avsc").read_text()))
    out = io.BytesIO()
    fastavro.writer(out, schema, [{"records": RECORDS}])
    assert decode(out.getvalue(), "avro") == {"records": RECORDS}
    with pytest.raises(ValueError, match="avro"):
        decode(b"\x02\x00", "avro")
