"""Inbound authentication on both adapters: static keys, and the MCP port as an OAuth 2.1 resource server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from host.testing import FakeUpstream, HostServer, start_host_process, write_host_toml
from tests.conftest import API_KEY, calls_for, tratta_base_uri
from tests.test_serve_process import run_cli

CI_KEY = "ci-key-0123456789abcdef0123456789"
AGENT_KEY = "agent-key-0123456789abcdef012345"
ISSUER = "https://issuer.test"
PRIVATE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def secured(fake_tratta: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostServer]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(PRIVATE_KEY.public_key()))
    fake_tratta.route(
        "GET", "/jwks.json", json={"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}
    )
    directory = tmp_path_factory.mktemp("auth")
    config = write_host_toml(
        directory,
        f"""
[consumes.tratta-customer-sessions]
base_uri = "{tratta_base_uri(fake_tratta)}"
[[auth.keys]]
name = "ci"
env = "HOST_KEY_CI"
[[auth.keys]]
name = "agent"
env = "HOST_KEY_AGENT"
adapters = ["mcp"]
[auth.oauth]
issuer = "{ISSUER}"
audience = "urn:capability-host:test"
jwks_url = "http://127.0.0.1:{fake_tratta.port}/jwks.json"
required_scopes = ["tools:call"]
""",
    )
    host = start_host_process(
        config,
        environment={"TRATTA_API_KEY": API_KEY, "HOST_KEY_CI": CI_KEY, "HOST_KEY_AGENT": AGENT_KEY},
    )
    yield host
    assert host.stop() == 0
    for secret in (CI_KEY, AGENT_KEY, API_KEY):
        assert secret not in host.log()


def token(*, key: Any = PRIVATE_KEY, kid: str = "k1", scope: str = "tools:call", **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": ISSUER,
        "aud": "urn:capability-host:test",
        "sub": "user-1",
        "exp": now + 300,
        "iat": now,
        "scope": scope,
        **claims,
    }
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})


async def rest(
    host: HostServer, headers: dict[str, str], customer: str = "auth"
) -> tuple[int, dict[str, str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            host.rest_url + "/v1/customer-sessions", json={"customer_id": customer}, headers=headers
        ) as resp,
    ):
        await resp.read()
        return resp.status, dict(resp.headers)


async def mcp(
    host: HostServer, headers: dict[str, str], url: str | None = None
) -> tuple[int, dict[str, str], Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url or host.mcp_url, json=body, headers={"Accept": "application/json", **headers}
        ) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.json(content_type=None)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": f"Bearer {CI_KEY}"}, 201),
        ({"X-API-Key": CI_KEY}, 201),
        ({"Authorization": f"Bearer {CI_KEY}x"}, 401),
        ({"Authorization": f"Basic {CI_KEY}"}, 401),
        ({"Authorization": f"Bearer {AGENT_KEY}"}, 401),  # that key is for the MCP port only
        ({"Authorization": f"Bearer {token()}"}, 401),  # OAuth tokens are for the MCP port
    ],
)
async def test_rest_keys(
    secured: HostServer, fake_tratta: FakeUpstream, headers: dict[str, str], status: int
) -> None:
    customer = f"auth-{status}-{len(fake_tratta.requests)}"
    got, response_headers = await rest(secured, headers, customer)
    assert got == status
    if status == 401:
        assert response_headers["WWW-Authenticate"].startswith("Bearer")
        assert response_headers["Content-Type"].startswith("application/problem+json")
        assert not calls_for(fake_tratta, customer)
    else:
        [call] = calls_for(fake_tratta, customer)
        assert call.headers["Authorization"] == f"Bearer {API_KEY}"  # the inbound key is never forwarded
        assert "X-API-Key" not in call.headers


async def test_health_needs_no_key(secured: HostServer) -> None:
    async with aiohttp.ClientSession() as session:
        for url in (
            secured.rest_url + "/healthz",
            secured.rest_url + "/readyz",
            f"http://127.0.0.1:{secured.mcp_port}/healthz",
        ):
            async with session.get(url) as resp:
                assert resp.status == 200


@pytest.mark.parametrize(
    ("make_headers", "status"),
    [
        (lambda: {}, 401),
        (lambda: {"Authorization": f"Bearer {CI_KEY}"}, 200),
        (lambda: {"X-API-Key": AGENT_KEY}, 200),
        (lambda: {"Authorization": f"Bearer {token()}"}, 200),
        (lambda: {"Authorization": f"Bearer {token(scope='tools:read other')}"}, 403),
        (lambda: {"Authorization": f"Bearer {token(exp=int(time.time()) - 600)}"}, 401),
        (lambda: {"Authorization": f"Bearer {token(aud='https://someone-else')}"}, 401),
        (lambda: {"Authorization": f"Bearer {token(iss='https://evil.test')}"}, 401),
        (lambda: {"Authorization": f"Bearer {token(key=OTHER_KEY)}"}, 401),
        (lambda: {"Authorization": f"Bearer {token(kid='unknown')}"}, 401),
        (lambda: {"Authorization": "Bearer not.a.jwt"}, 401),
    ],
)
async def test_mcp_keys_and_oauth(secured: HostServer, make_headers: Any, status: int) -> None:
    got, headers, body = await mcp(secured, make_headers())
    assert got == status, body
    metadata = f"http://127.0.0.1:{secured.mcp_port}/.well-known/oauth-protected-resource/mcp"
    if status == 401:
        assert headers["WWW-Authenticate"] == f'Bearer resource_metadata="{metadata}", scope="tools:call"'
        assert body["error"] == "invalid_token"
    if status == 403:
        assert 'error="insufficient_scope"' in headers["WWW-Authenticate"]
        assert body["error"] == "insufficient_scope"
    if status == 200:
        assert body["result"]["tools"][0]["name"] == "create-customer-session"


async def test_token_in_query_string_is_not_accepted(secured: HostServer) -> None:
    got, _, _ = await mcp(secured, {}, url=f"{secured.mcp_url}?access_token={token()}")
    assert got == 401


async def test_protected_resource_metadata(secured: HostServer) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"):
            async with session.get(f"http://127.0.0.1:{secured.mcp_port}{path}") as resp:
                assert resp.status == 200
                assert await resp.json() == {
                    "resource": "urn:capability-host:test",
                    "authorization_servers": [ISSUER],
                    "scopes_supported": ["tools:call"],
                    "bearer_methods_supported": ["header"],
                }


async def test_sdk_client_with_a_token_calls_the_tool(secured: HostServer, fake_tratta: FakeUpstream) -> None:
    bearer = token()
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {bearer}"}) as http,
        Client(streamable_http_client(secured.mcp_url, http_client=http)) as client,
    ):
        result = await client.call_tool("create-customer-session", {"body": {"customer_id": "oauth-call"}})
        assert not result.is_error
    [call] = calls_for(fake_tratta, "oauth-call")
    assert call.headers["Authorization"] == f"Bearer {API_KEY}"  # the access token is never passed through
    assert bearer not in json.dumps(dict(call.headers))


def test_startup_refuses_an_open_public_bind_and_missing_keys(tmp_path: Path) -> None:
    config = write_host_toml(tmp_path, "[consumes.tratta-customer-sessions]\nmock = true\n")
    config.write_text(config.read_text().replace('host = "127.0.0.1"', 'host = "0.0.0.0"'))
    result = run_cli("serve", "--config", str(config))
    assert result.returncode == 2
    assert "no inbound authentication" in result.stderr and "allow_unauthenticated" in result.stderr

    config.write_text(config.read_text() + '\n[[auth.keys]]\nname = "ci"\nenv = "HOST_KEY_CI"\n')
    result = run_cli("serve", "--config", str(config))
    assert result.returncode == 2 and "HOST_KEY_CI is not set" in result.stderr
    result = run_cli("serve", "--config", str(config), env={"HOST_KEY_CI": "short"})
    assert (
        result.returncode == 2
        and "shorter than 16" in result.stderr
        and "short" not in result.stderr.split("HOST_KEY_CI")[0]
    )


CAPABILITY_WITH_AUTH = """
naftiko: 1.0.0-alpha2
info: {label: Guarded, description: A capability whose adapters require their own credentials}
binds:
- namespace: env
  keys: {GUARD_TOKEN: CAP_GUARD_TOKEN, GUARD_KEY: CAP_GUARD_KEY}
capability:
  exposes:
  - type: rest
    namespace: guarded-rest
    authentication: {type: bearer, token: '{{GUARD_TOKEN}}'}
    resources:
    - path: /v1/guarded
      operations:
      - method: GET
        outputParameters:
        - {type: object, value: {secret: stuff}}
  - type: mcp
    namespace: guarded-mcp
    authentication: {type: apikey, key: X-Guard-Key, value: '{{GUARD_KEY}}', placement: header}
    tools:
    - name: guarded
      description: A guarded tool.
      outputParameters:
      - {type: object, value: {secret: stuff}}
"""


async def test_a_capability_files_own_exposes_authentication(tmp_path: Path) -> None:
    capability = tmp_path / "guarded.yaml"
    capability.write_text(CAPABILITY_WITH_AUTH)
    config = write_host_toml(tmp_path, f'[[capabilities]]\npath = "{capability}"\n')
    token, key = "guard-token-0123456789", "guard-key-0123456789"
    host = start_host_process(
        config,
        plugins=(),
        environment={"CAP_GUARD_TOKEN": token, "CAP_GUARD_KEY": key},
    )
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(host.rest_url + "/v1/guarded") as resp:
                assert resp.status == 401
            async with session.get(
                host.rest_url + "/v1/guarded", headers={"Authorization": "Bearer nope"}
            ) as resp:
                assert resp.status == 401
            async with session.get(
                host.rest_url + "/v1/guarded", headers={"Authorization": f"Bearer {token}"}
            ) as resp:
                assert resp.status == 200 and await resp.json() == {"secret": "stuff"}
        async with (
            httpx2.AsyncClient(headers={"X-Guard-Key": key}) as http,
            Client(streamable_http_client(host.mcp_url, http_client=http)) as client,
        ):
            result = await client.call_tool("guarded", {})
            assert not result.is_error and result.structured_content == {"secret": "stuff"}
        async with Client(host.mcp_url) as client:
            refused = await client.call_tool("guarded", {})
            assert refused.is_error and "Unauthorized" in refused.content[0].text  # type: ignore[union-attr]
    finally:
        assert host.stop() == 0
    assert token not in host.log() and key not in host.log()
