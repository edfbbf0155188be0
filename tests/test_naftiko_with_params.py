"""Path parameters an exposure maps in ``with`` (issue 11: tools callable end to end).

- ``snyk-container__container-security.yaml``: ``with: {org_id: '{{SNYK_ORG_ID}}'}``, the variable bound to
  the environment. Binds reach every template, ``with`` included: the operator's value fills the path.
  (It was looked up among the caller's arguments only, so every call was refused: "org_id is required".)
- ``google-analytics__integrations-and-linking.yaml``: ``with: {parent: tools.parent}`` where ``parent`` is
  the consumed path's ``{parent}``. The derived input ``parent`` must be required: without it the URL
  cannot be built (it was advertised as optional, and a call without it refused).
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

CAPABILITY = """\
naftiko: "1.0.0-alpha2"
binds:
  - namespace: env
    keys:
      SNYK_ORG_ID: SNYK_ORG_ID
capability:
  consumes:
    - type: http
      namespace: snyk
      baseUri: "https://api.snyk.example"
      resources:
        - name: projects
          path: "/orgs/{org_id}/projects"
          operations:
            - name: list-projects
              method: GET
              inputParameters:
                - {name: org_id, in: path, type: string, required: true, description: Organization UUID}
                - {name: version, in: query, type: string, required: true}
        - name: links
          path: "/v1beta/{parent}/firebaseLinks"
          operations:
            - name: list-links
              method: GET
              inputParameters:
                - {name: parent, in: path, type: string, description: "Format: properties/{property_id}"}
                - {name: pageSize, in: query, type: integer}
  exposes:
    - type: mcp
      namespace: tools
      tools:
        - name: list-projects
          description: List projects
          call: snyk.list-projects
          with:
            org_id: "{{SNYK_ORG_ID}}"
            version: "2024-10-15"
        - name: list-projects-labelled
          description: List projects, the organisation written into a longer value
          call: snyk.list-projects
          with:
            org_id: "org-{{SNYK_ORG_ID}}"
            version: "2024-10-15"
        - name: list-links
          description: List Firebase links
          call: snyk.list-links
          with:
            parent: tools.parent
"""


@contextlib.asynccontextmanager
async def _client(path: Path, base_uri: str, environ: dict[str, str]) -> AsyncIterator[Any]:
    config = f'[consumes.snyk]\nbase_uri = "{base_uri}"\n[[capabilities]]\npath = "{path}"\n'
    async with (
        serve_in_process(config, environ, plugins=(), discover=False) as served,
        served.in_memory_mcp_client() as client,
    ):
        yield client


def test_a_mapped_path_parameter_is_a_required_input(tmp_path: Path) -> None:
    path = tmp_path / "snyk.yaml"
    path.write_text(CAPABILITY, encoding="utf-8")
    tools = {tool.name: tool.input_schema for tool in load_capability(path).tools}
    assert tools["list-links"]["required"] == ["parent"]
    assert "SNYK_ORG_ID" not in tools["list-projects"].get("properties", {})


async def test_a_bound_variable_in_with_fills_the_path(tmp_path: Path) -> None:
    path = tmp_path / "snyk.yaml"
    path.write_text(CAPABILITY, encoding="utf-8")
    with FakeUpstream() as upstream:
        upstream.route("GET", "*", json={"data": []})
        async with _client(path, upstream.url, {"SNYK_ORG_ID": "o-1"}) as client:
            for tool in ("list-projects", "list-projects-labelled"):
                result = await client.call_tool(tool, {})
                assert not result.is_error, result.content
            # A caller's text is never a template: braces in an argument reach the upstream as written.
            linked = await client.call_tool("list-links", {"parent": "{{SNYK_ORG_ID}}"})
            assert not linked.is_error, linked.content
        first, second, third = upstream.requests
    assert (first.path, dict(first.query)) == ("/orgs/o-1/projects", {"version": "2024-10-15"})
    assert second.path == "/orgs/org-o-1/projects"
    assert third.path == "/v1beta/{{SNYK_ORG_ID}}/firebaseLinks"


def test_a_bound_variable_a_with_value_needs_is_required_at_start_up(tmp_path: Path) -> None:
    # Unset, every call of the tool was refused with "org_id is required": a caller error for the operator's
    # missing setting. Now start-up names the environment variable, as for the base URI.
    path = tmp_path / "snyk.yaml"
    path.write_text(CAPABILITY, encoding="utf-8")

    async def start() -> None:
        async with _client(path, "http://127.0.0.1:1", {}):
            pass

    with pytest.raises(StartupError, match="environment variable SNYK_ORG_ID is not set"):
        asyncio.run(start())
