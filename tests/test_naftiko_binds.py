"""Operator-bound variables always win over caller arguments of the same name (issue 10, finding 2).

A capability file binds ``TENANT`` from the environment and ``REGION`` from a ``file://`` document, and
host.toml maps ``ACCOUNT`` to an environment variable. Whatever a caller sends under those names, through
a REST query parameter, a REST JSON body key or an MCP argument, the upstream sees the operator's values,
the derived MCP input schemas never mention them, and the log names the ignored argument, never its value.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from mcp import Client

from host.testing import FakeUpstream, HostServer, start_host_server

TENANT, ACCOUNT, REGION = "tenant-ok", "account-ok", "eu-from-file"
EVIL = "evil-7f3a"  # what a caller tries; it must reach neither the upstream nor the log

CAPABILITY = """\
naftiko: 1.0.0-alpha2
info: {{label: Tenancy, description: One tenant per deployment}}
binds:
  - namespace: env
    keys: {{TENANT: TENANCY_TENANT_ID}}
  - namespace: settings
    location: file://{settings}
    keys: {{REGION: region}}
capability:
  consumes:
    - type: http
      namespace: orders-api
      baseUri: https://orders.example.com
      resources:
        - name: orders
          path: /tenants/{{{{TENANT}}}}/accounts/{{{{ACCOUNT}}}}/orders
          operations:
            - name: list-orders
              method: GET
              inputParameters:
                - {{name: status, in: query}}
                - {{name: region, in: query, value: "{{{{REGION}}}}"}}
            - name: create-order
              method: POST
              body:
                type: json
                data: {{tenant: "{{{{TENANT}}}}", region: "{{{{REGION}}}}", item: "{{{{item}}}}"}}
  exposes:
    - type: rest
      namespace: orders-rest
      port: 8081
      resources:
        - path: /orders
          operations:
            - {{method: GET, call: orders-api.list-orders}}
            - {{method: POST, call: orders-api.create-order}}
    - type: mcp
      namespace: orders-mcp
      port: 9091
      tools:
        - {{name: list-orders, description: List the orders, call: orders-api.list-orders}}
        - {{name: create-order, description: Create an order, call: orders-api.create-order}}
"""

BOUND = ("TENANT", "ACCOUNT", "REGION")


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream()
    fake.start()
    fake.route("*", "*", json={"ok": True})
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(scope="module")
def server(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostServer]:
    directory = tmp_path_factory.mktemp("binds")
    settings = directory / "settings.json"
    settings.write_text(json.dumps({"region": REGION}))
    capability = directory / "tenancy.yaml"
    capability.write_text(CAPABILITY.format(settings=settings))
    host = start_host_server(
        directory,
        (),
        {"orders-api": {"base_uri": upstream.url, "retries": 0, "variables": {"ACCOUNT": "TENANCY_ACCOUNT"}}},
        environment={"TENANCY_TENANT_ID": TENANT, "TENANCY_ACCOUNT": ACCOUNT},
        toml_extra=f'[[capabilities]]\npath = "{capability.name}"\n',
    )
    try:
        yield host
    finally:
        host.stop()


def _last(upstream: FakeUpstream) -> Any:
    return upstream.requests[-1]


def _assert_bound_values_sent(upstream: FakeUpstream) -> None:
    request = _last(upstream)
    assert request.path == f"/tenants/{TENANT}/accounts/{ACCOUNT}/orders"
    assert EVIL not in request.path and EVIL not in str(dict(request.query))
    if request.method == "POST":
        assert request.json() == {"tenant": TENANT, "region": REGION, "item": "widget"}


def _assert_logged_not_leaked(server: HostServer) -> None:
    log = server.log()
    assert EVIL not in log
    assert "TENANT" in log and "ignored" in log


async def test_rest_query_cannot_replace_bound_variables(server: HostServer, upstream: FakeUpstream) -> None:
    query = {name: EVIL for name in BOUND} | {"status": "open", "region": EVIL}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{server.rest_url}/orders", params=query) as response,
    ):
        assert response.status == 200, await response.text()
    _assert_bound_values_sent(upstream)
    assert dict(_last(upstream).query) == {"status": "open", "region": REGION}
    _assert_logged_not_leaked(server)


async def test_rest_body_keys_cannot_replace_bound_variables(
    server: HostServer, upstream: FakeUpstream
) -> None:
    body = {name: EVIL for name in BOUND} | {"item": "widget"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{server.rest_url}/orders", json=body) as response,
    ):
        assert response.status in (200, 201), await response.text()
    _assert_bound_values_sent(upstream)
    _assert_logged_not_leaked(server)


async def test_mcp_arguments_cannot_replace_bound_variables(
    server: HostServer, upstream: FakeUpstream
) -> None:
    async with Client(server.mcp_url) as client:
        result = await client.call_tool("create-order", {name: EVIL for name in BOUND} | {"item": "widget"})
        assert not result.is_error, result
        _assert_bound_values_sent(upstream)
        result = await client.call_tool("list-orders", {name: EVIL for name in BOUND})
        assert not result.is_error, result
        _assert_bound_values_sent(upstream)
    _assert_logged_not_leaked(server)


async def test_names_the_file_binds_are_not_caller_inputs(server: HostServer) -> None:
    """The file's binds are known when it loads. (host.toml's ``variables`` are not: ACCOUNT may still be
    advertised, but its caller value is ignored all the same, as the tests above show.)"""
    async with Client(server.mcp_url) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for name in ("list-orders", "create-order"):
        schema = tools[name].input_schema
        mentioned = set(schema.get("properties", {})) | set(schema.get("required", []))
        assert not mentioned & {"TENANT", "REGION", "tenant", "region"}, (name, schema)
    assert "item" in tools["create-order"].input_schema["properties"]


def test_bound_names_are_known_to_the_loader(tmp_path: Path) -> None:
    """Without a running host: the loader already keeps file binds out of derived schemas."""
    from host.naftiko import load_capability

    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"region": REGION}))
    capability = tmp_path / "tenancy.yaml"
    capability.write_text(CAPABILITY.format(settings=settings))
    report = load_capability(capability)
    assert not report.errors, report.errors
    for tool in report.tools:
        assert not set(tool.input_schema["properties"]) & {"TENANT", "REGION"}, tool.input_schema


# --- issue 11 #5: a tool's inbound token bound from a file:// secrets file (tutorial step 3) -------

TUTORIAL = Path(__file__).resolve().parents[2] / "shared" / "naftiko-reference" / "src" / "main" / "resources"


@pytest.mark.skipif(not TUTORIAL.is_dir(), reason="no reference fixtures")
async def test_inbound_token_bound_from_a_secrets_file(tmp_path: Path, upstream: FakeUpstream) -> None:
    """Step 3 binds MCP_SERVER_TOKEN (and the registry's token) from file:///./shared/secrets.yaml."""
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    tutorial = TUTORIAL / "tutorial"
    shutil.copy(tutorial / "step-3-shipyard-auth.yml", tmp_path / "step-3.yml")
    shutil.copytree(tutorial / "shared", tmp_path / "shared")
    secrets = yaml.safe_load((tmp_path / "shared" / "secrets.yaml").read_text())
    host = start_host_server(
        tmp_path,
        (),
        {"registry": {"base_uri": upstream.url, "retries": 0}},
        toml_extra='[[capabilities]]\npath = "step-3.yml"\n',
    )
    try:
        token = secrets["mcp-server-token"]
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http,
            Client(streamable_http_client(host.mcp_url, http_client=http)) as client,
        ):
            result = await client.call_tool("list-ships", {"status": "active"})
            assert not result.is_error, result
        request = upstream.requests[-1]
        assert request.path == "/ships" and dict(request.query) == {"status": "active"}
        assert request.headers["Authorization"] == f"Bearer {secrets['registry-bearer-token']}"
        assert request.headers["Registry-Version"] == secrets["registry-api-version"]
        async with (
            httpx2.AsyncClient(headers={"Authorization": "Bearer wrong"}) as http,
            Client(streamable_http_client(host.mcp_url, http_client=http)) as client,
        ):
            refused = await client.call_tool("list-ships", {})
            assert refused.is_error
    finally:
        host.stop()
    assert token not in host.log()
