"""Outbound authentication as the catalogue writes it (issue 11: tools callable end to end).

Each case is modelled on a catalogue file whose every tool failed with "apikey without a key name" or
did not start. The spec's ``apikey`` / ``bearer`` / ``basic`` are read from the catalogue's dialects, and
a ``{{TOKEN}}`` no bind names is the environment variable of that name (as for the base URI).
"""

from __future__ import annotations

import asyncio
import contextlib
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from host.errors import StartupError
from host.naftiko import load_capability
from host.testing import FakeUpstream, serve_in_process

TEMPLATE = """\
naftiko: "1.0.0-alpha2"
capability:
  consumes:
    - type: http
      namespace: api
      baseUri: "https://api.example.com/v1"
      authentication:
{auth}
      resources:
        - name: items
          path: /items
          operations:
            - name: list-items
              method: GET
  exposes:
    - type: mcp
      namespace: api-tools
      tools:
        - name: list-items
          description: List items
          call: api.list-items
"""

CASES = {
    # advanced-micro-devices__ai-gpu-computing.yaml
    "header-token": (
        {"type": "apiKey", "header": "X-API-Key", "token": "{{AMD_API_KEY}}"},
        {"AMD_API_KEY": "k1"},
        {"X-API-Key": "k1"},
        (),
    ),
    # albato__ipaas-automation.yaml (under `auth`, read as `authentication`)
    "header-value": (
        {"type": "apiKey", "header": "Authorization", "value": "{{env.ALBATO_API_KEY}}"},
        {"ALBATO_API_KEY": "k2"},
        {"Authorization": "k2"},
        (),
    ),
    # appsumo__license-management.yaml: the header's name under `header`, the value under `key`
    "header-key": (
        {"type": "apikey", "header": "X-AppSumo-API-Key", "key": "{{APPSUMO_API_KEY}}"},
        {"APPSUMO_API_KEY": "k3"},
        {"X-AppSumo-API-Key": "k3"},
        (),
    ),
    # datadog__incident-management.yaml: two keys
    "headers": (
        {
            "type": "apikey",
            "headers": {"DD-API-KEY": "{{DATADOG_API_KEY}}", "DD-APPLICATION-KEY": "{{DD_APP}}"},
        },
        {"DATADOG_API_KEY": "k4", "DD_APP": "a4"},
        {"DD-API-KEY": "k4", "DD-APPLICATION-KEY": "a4"},
        (),
    ),
    # email-verifier-api__email-verification.yaml
    "query-token": (
        {"type": "apiKey", "in": "query", "name": "apiKey", "token": "{{EMAIL_VERIFIER_API_KEY}}"},
        {"EMAIL_VERIFIER_API_KEY": "k5"},
        {},
        (("apiKey", "k5"),),
    ),
    # gravitee__access-management.yaml
    "bearer-value": (
        {"type": "bearer", "value": "{{GRAVITEE_AM_TOKEN}}", "placement": "header"},
        {"GRAVITEE_AM_TOKEN": "t6"},
        {"Authorization": "Bearer t6"},
        (),
    ),
    # abacus__expense-management.yaml: no bind names the token
    "unbound-bearer": (
        {"type": "bearer", "token": "{{ABACUS_ACCESS_TOKEN}}"},
        {"ABACUS_ACCESS_TOKEN": "t7"},
        {"Authorization": "Bearer t7"},
        (),
    ),
    # stackone__customer-engagement.yaml: the API key as the username, an empty password
    "basic-empty-password": (
        {"type": "basic", "username": "{{STACKONE_API_KEY}}", "password": ""},
        {"STACKONE_API_KEY": "user8"},
        {"Authorization": "Basic dXNlcjg6"},
        (),
    ),
}


def _write(tmp_path: Path, auth: dict[str, Any], key: str = "authentication") -> Path:
    import yaml

    block = textwrap.indent(yaml.safe_dump(auth, sort_keys=False), " " * 8)
    text = TEMPLATE.format(auth=block.rstrip())
    if key != "authentication":
        text = text.replace("authentication:", f"{key}:")
    path = tmp_path / "capability.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def _client(path: Path, base_uri: str, environ: dict[str, str]) -> AsyncIterator[Any]:
    config = f'[consumes.api]\nbase_uri = "{base_uri}"\n[[capabilities]]\npath = "{path}"\n'
    async with (
        serve_in_process(config, environ, plugins=(), discover=False) as served,
        served.in_memory_mcp_client() as client,
    ):
        yield client


@pytest.mark.parametrize("case", sorted(CASES))
async def test_the_dialect_authenticates_the_call(tmp_path: Path, case: str) -> None:
    auth, environ, headers, query = CASES[case]
    path = _write(tmp_path, auth, "auth" if case == "header-value" else "authentication")
    report = load_capability(path)
    assert report.errors == [] and report.tools, report.warnings
    assert not any("calls will fail" in w or "not supported" in w for w in report.warnings)
    assert report.tools[0].input_schema.get("properties", {}) == {}  # no credential is a caller's input
    with FakeUpstream() as upstream:
        upstream.route("GET", "*", json={"items": []})
        async with _client(path, upstream.url, environ) as client:
            result = await client.call_tool("list-items", {})
            assert not result.is_error, result.content
        [request] = upstream.requests
    assert {name: request.headers.get(name) for name in headers} == headers
    assert tuple((k, v) for k, v in request.query.items() if k == "apiKey") == query


def test_an_unbound_credential_names_the_environment_variable(tmp_path: Path) -> None:
    path = _write(tmp_path, CASES["unbound-bearer"][0])

    async def start() -> None:
        async with _client(path, "http://127.0.0.1:1", {}):
            pass

    with pytest.raises(StartupError, match="environment variable ABACUS_ACCESS_TOKEN is not set"):
        asyncio.run(start())


def test_a_per_request_signature_is_not_read_from_the_environment(tmp_path: Path) -> None:
    # tillo__gift-card-rewards.yaml: "HMAC {{TILLO_API_KEY}}:{{signature}}" needs a signature per request,
    # which no operator value can be: start-up keeps naming it.
    auth = {"type": "apikey", "key": "Authorization", "value": "HMAC {{TILLO_API_KEY}}:{{signature}}"}
    path = _write(tmp_path, auth)

    async def start() -> None:
        async with _client(path, "http://127.0.0.1:1", {"TILLO_API_KEY": "k", "signature": "s"}):
            pass

    with pytest.raises(StartupError, match=r"\{signature\} has no value"):
        asyncio.run(start())
