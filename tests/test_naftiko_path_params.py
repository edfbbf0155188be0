"""Path parameters a tool never offers (issue 11: "required parameters a tool cannot supply").

Unlike a header or a query parameter, a path parameter cannot be left out: without it the URL cannot be
built. Two catalogue shapes:

- ``kvdb__kvdb-capability.yaml``: the consumed resource's path is ``/{bucket_id}``, and the tool declares
  only its query inputs. The host offers ``bucket_id`` as a required tool input (described from the
  consumed parameter when there is one) and says so in a load warning naming the operation and parameter.
- ``whatfix__digital-adoption.yaml``: the path is ``/{{WHATFIX_ACCOUNT_ID}}/end-users`` and the variable
  is bound to the environment. Its value is the operator's, never the caller's: a missing one is a
  start-up error naming the environment variable (as for the base URI), not a caller error at call time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from host.errors import StartupError
from host.naftiko import load_capability
from host.testing import FakeUpstream, serve_in_process

KVDB = """\
naftiko: "1.0.0-alpha2"
capability:
  consumes:
    - type: http
      namespace: kvdb
      baseUri: "https://kvdb.example.com"
      resources:
        - name: bucket
          path: "/{bucket_id}"
          operations:
            - name: listkeys
              method: GET
              inputParameters:
                - name: prefix
                  in: query
                  type: string
        - name: bucket-key
          path: "/{bucket_id}/{key}"
          operations:
            - name: getkey
              method: GET
              inputParameters:
                - name: key
                  in: path
                  type: string
                  description: "The key to read"
  exposes:
    - type: mcp
      namespace: kvdb-tools
      tools:
        - name: listkeys
          description: List keys
          call: kvdb.listkeys
          with:
            prefix: tools.prefix
          inputParameters:
            - name: prefix
              type: string
              required: false
              description: "Only keys with this prefix"
        - name: getkey
          description: Get a key
          call: kvdb.getkey
          inputParameters:
            - name: bucket_id
              type: string
              required: true
              description: "The bucket"
"""

WHATFIX = """\
naftiko: "1.0.0-alpha2"
binds:
  - namespace: env
    keys:
      WHATFIX_ACCOUNT_ID: WHATFIX_ACCOUNT_ID
capability:
  consumes:
    - type: http
      namespace: whatfix
      baseUri: "https://whatfix.example.com/v1"
      resources:
        - name: end-users
          path: "/{{WHATFIX_ACCOUNT_ID}}/end-users"
          operations:
            - name: list-end-users
              method: GET
  exposes:
    - type: mcp
      namespace: whatfix-tools
      tools:
        - name: list-end-users
          description: List end users
          call: whatfix.list-end-users
"""


def _toml(path: Path, namespace: str, base_uri: str) -> str:
    return f'[consumes.{namespace}]\nbase_uri = "{base_uri}"\n[[capabilities]]\npath = "{path}"\n'


@contextlib.asynccontextmanager
async def _client(config: str, environ: dict[str, str]) -> AsyncIterator[Any]:
    """The SDK client of a host built in process from ``config``."""
    async with (
        serve_in_process(config, environ, plugins=(), discover=False) as served,
        served.in_memory_mcp_client() as client,
    ):
        yield client


def test_an_unoffered_path_parameter_is_a_required_input_with_a_warning(tmp_path: Path) -> None:
    capability = tmp_path / "kvdb.yaml"
    capability.write_text(KVDB, encoding="utf-8")
    report = load_capability(capability)
    assert report.status == "WARN"
    [warning] = [w for w in report.warnings if "bucket_id" in w]
    assert "kvdb.listkeys" in warning and "required input" in warning
    tools = {tool.name: tool.input_schema for tool in report.tools}
    assert tools["listkeys"]["required"] == ["bucket_id"]
    assert set(tools["listkeys"]["properties"]) == {"prefix", "bucket_id"}
    # A declared consumed path parameter lends its description and type.
    assert tools["getkey"]["properties"]["key"] == {"type": "string", "description": "The key to read"}
    assert sorted(tools["getkey"]["required"]) == ["bucket_id", "key"]


async def test_the_offered_path_parameter_builds_the_url(tmp_path: Path) -> None:
    capability = tmp_path / "kvdb.yaml"
    capability.write_text(KVDB, encoding="utf-8")
    with FakeUpstream() as upstream:
        upstream.route("GET", "*", json={"keys": ["a"]})
        config = _toml(capability, "kvdb", upstream.url)
        async with _client(config, {}) as client:
            listed = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert "bucket_id" in listed["listkeys"].input_schema["required"]
            result = await client.call_tool("listkeys", {"bucket_id": "b1", "prefix": "user"})
            assert not result.is_error, result.content
            refused = await client.call_tool("listkeys", {"prefix": "user"})
            assert refused.is_error
        [request] = upstream.requests
        assert request.path == "/b1"
        assert dict(request.query) == {"prefix": "user"}


def test_a_bound_path_variable_without_a_value_stops_start_up(tmp_path: Path) -> None:
    capability = tmp_path / "whatfix.yaml"
    capability.write_text(WHATFIX, encoding="utf-8")
    report = load_capability(capability)
    [tool] = report.tools
    assert "WHATFIX_ACCOUNT_ID" not in tool.input_schema.get("properties", {})
    config = _toml(capability, "whatfix", "http://127.0.0.1:1")

    async def start() -> None:
        async with serve_in_process(config, {}, plugins=(), discover=False):
            pass

    with pytest.raises(StartupError, match="environment variable WHATFIX_ACCOUNT_ID is not set"):
        asyncio.run(start())


async def test_a_bound_path_variable_fills_the_path(tmp_path: Path) -> None:
    capability = tmp_path / "whatfix.yaml"
    capability.write_text(WHATFIX, encoding="utf-8")
    with FakeUpstream() as upstream:
        upstream.route("GET", "*", json=[])
        config = _toml(capability, "whatfix", upstream.url)
        environ = {"WHATFIX_ACCOUNT_ID": "acct-7"}
        async with _client(config, environ) as client:
            result = await client.call_tool("list-end-users", {})
            assert not result.is_error, result.content
        [request] = upstream.requests
        assert request.path == "/acct-7/end-users"
