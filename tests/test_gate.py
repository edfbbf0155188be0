"""The one inbound gate (host/gate.py): what every request on both ports passes before any adapter code.

In process: the apps come from the one builder (host.app.build) and run on aiohttp's TestServer.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

import aiohttp
import jwt
import pytest
import tratta_customer_sessions
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric import ec
from multidict import CIMultiDict

from host.adapters.mcp import SERVICE
from host.app import Host, build
from host.config import HostConfig, OAuthConfig
from host.errors import Forbidden, StartupError, Unauthorized
from host.inbound import Authenticator, JwtVerifier
from host.testing import start_host_server
from tests.conftest import ROOT
from tests.test_auth import CAPABILITY_WITH_AUTH

PATH = "/v1/customer-sessions"
SESSION = {"customer_id": "3f0c9a"}
KEY = "gate-key-0123456789abcdef"
TRATTA = [("tratta", tratta_customer_sessions)]


def config(**sections: Any) -> HostConfig:
    return HostConfig.model_validate({"consumes": {"tratta-customer-sessions": {"mock": True}}, **sections})


@asynccontextmanager
async def serving(
    host_config: HostConfig, app: str = "rest", environ: dict[str, str] | None = None
) -> AsyncIterator[TestClient[Any, Any]]:
    built = build(host_config, environ or {}, extra_plugins=TRATTA, discover=False)
    async with TestClient(TestServer(getattr(built, app), host="127.0.0.1")) as client:
        yield client


async def raw_exchange(client: TestClient[Any, Any], head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send bytes aiohttp's client would refuse to build; the status line and the rest of the answer."""
    assert client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        writer.write(head + b"\r\n" + body)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(65536), 10)
    finally:
        writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest


# --- issue 10 #6: the REST port gets the MCP port's Host and Origin rules, and JSON bodies only --------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Host": "evil.example:8080"}, 421),
        ({"Host": "127.0.0.1.evil.example:8080"}, 421),
        ({"Origin": "http://evil.example"}, 403),
        ({"Origin": "http://localhost.evil.example:8080"}, 403),
        ({"Origin": "http://localhost:3000"}, 201),
        ({"Host": "localhost:8080"}, 201),
        ({"Host": "api.example.com"}, 201),  # listed in allowed_hosts
        ({"Origin": "https://app.example.com"}, 201),  # listed in allowed_origins
        ({"Host": "10.0.0.7:8080"}, 201),  # an address is never a rebound name (probes, scrapers)
    ],
)
async def test_rest_port_checks_host_and_origin(headers: dict[str, str], status: int) -> None:
    server = {"allowed_hosts": ["api.example.com:*"], "allowed_origins": ["https://app.example.com"]}
    async with serving(config(server=server)) as client:
        response = await client.post(PATH, json=SESSION, headers=headers)
        assert response.status == status, await response.text()
        if status >= 400:
            assert response.content_type == "application/problem+json"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/jsonx"]
)
async def test_a_json_body_with_another_content_type_is_415(content_type: str) -> None:
    # A cross-site "simple" POST (text/plain) must not mint a portal link.
    async with serving(config()) as client:
        response = await client.post(PATH, data=json.dumps(SESSION), headers={"Content-Type": content_type})
        assert response.status == 415
        assert response.content_type == "application/problem+json"
        assert "portal_url" not in await response.text()


# --- issue 10 #12 (inbound): bad input in headers and tokens is a clean 4xx, never a 500 ----------------


async def test_a_nul_byte_in_a_request_header_is_a_clean_400(caplog: pytest.LogCaptureFixture) -> None:
    async with serving(config()) as client:
        head = f"GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1:{client.port}\r\nX-Thing: a\x00b\r\n".encode()
        status, _ = await raw_exchange(client, head)
    assert status == 400
    assert "Traceback" not in caplog.text and not [r for r in caplog.records if r.levelname == "ERROR"]


def _verifier(key: Any) -> JwtVerifier:
    verifier = JwtVerifier(OAuthConfig(issuer="https://issuer.test", audience="aud", jwks_url="http://x"))
    verifier.keys, verifier.fetched_at = {"k1": key}, time.monotonic()  # no fetch: the JWKS is known
    return verifier


def _claims(**extra: Any) -> dict[str, Any]:
    return {"iss": "https://issuer.test", "aud": "aud", "sub": "u", "exp": int(time.time()) + 300, **extra}


@pytest.mark.parametrize("alg", ["none", "RS256", "HS256", "ES256"])
async def test_a_token_whose_kid_names_a_key_of_another_type_is_401(alg: str) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    other_ec = ec.generate_private_key(ec.SECP256R1())
    signing: Any = {"none": None, "HS256": "x" * 32, "ES256": other_ec}.get(alg)
    if alg == "RS256":
        from cryptography.hazmat.primitives.asymmetric import rsa

        signing = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(_claims(), signing, algorithm=alg, headers={"kid": "k1"})
    with pytest.raises(Unauthorized):
        await _verifier(ec_key.public_key()).verify(forged)


@pytest.mark.parametrize("scope", [5, 5.5, True, {"a": 1}, [1, 2]])
async def test_a_scope_claim_that_is_not_text_is_refused_cleanly(scope: Any) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(_claims(scope=scope), private, algorithm="RS256", headers={"kid": "k1"})
    verifier = _verifier(private.public_key())
    verifier.config = verifier.config.model_copy(update={"required_scopes": ("tools:call",)})
    with pytest.raises((Unauthorized, Forbidden)):
        await verifier.verify(token)


# --- issue 10 #15: a slow body frees its slot long before request_timeout ------------------------------


async def test_a_stalled_body_gets_408_within_body_timeout() -> None:
    limits = {"body_timeout": 0.5, "request_timeout": 30, "max_concurrent_per_client": 2}
    async with serving(config(limits=limits)) as client:
        head = (
            f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{client.port}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n"
        ).encode()
        started = time.monotonic()
        stalled = [asyncio.create_task(raw_exchange(client, head, b'{"customer_id": ')) for _ in range(2)]
        await asyncio.sleep(0.2)
        # The stalled senders hold this client's two slots while their bodies are still arriving.
        assert (await client.post(PATH, json=SESSION)).status == 429
        statuses = [status for status, _ in await asyncio.gather(*stalled)]
        assert statuses == [408, 408] and time.monotonic() - started < 5
        assert (await client.post(PATH, json=SESSION)).status == 201  # the slots are free again


# --- issue 10 #17: small ones ---------------------------------------------------------------------------


@pytest.mark.parametrize("app", ["rest", "mcp"])
async def test_two_origin_headers_are_refused(app: str) -> None:
    headers = CIMultiDict([("Origin", "http://localhost:3000"), ("Origin", "http://evil.example")])
    async with serving(config(), app) as client:
        path = PATH if app == "rest" else "/mcp"
        response = await client.post(
            path, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=headers
        )
        assert response.status == 403


def test_an_all_whitespace_key_fails_the_length_check() -> None:
    host_config = config(auth={"keys": [{"name": "ci", "env": "HOST_KEY_CI"}]})
    with pytest.raises(StartupError, match="shorter than 16"):
        Authenticator(host_config.auth, {"HOST_KEY_CI": " " * 40}, "rest")


async def test_a_5000_digit_integer_says_what_it_is() -> None:
    async with serving(config()) as client:
        body = b'{"customer_id": ' + b"9" * 5000 + b"}"
        response = await client.post(PATH, data=body, headers={"Content-Type": "application/json"})
        assert response.status == 400
        detail = (await response.json())["detail"]
        assert "digits" in detail and "nested" not in detail


@pytest.mark.parametrize("app", ["rest", "mcp"])
async def test_the_total_header_size_is_capped(app: str) -> None:
    headers = {f"X-Filler-{n}": "x" * 8000 for n in range(95)}
    async with serving(config(), app) as client:
        response = await client.get("/openapi.json" if app == "rest" else "/mcp", headers=headers)
        assert response.status == 431


# --- the gate's own contract -----------------------------------------------------------------------------


async def test_public_paths_need_nothing_and_every_answer_has_a_request_id() -> None:
    environ = {"HOST_KEY_CI": KEY}
    secured = config(auth={"keys": [{"name": "ci", "env": "HOST_KEY_CI"}]})
    async with serving(secured, environ=environ) as client:
        for path in ("/healthz", "/readyz"):
            response = await client.get(path, headers={"Host": "10.0.0.7:8080"})  # a kubelet probe
            assert response.status == 200 and response.headers["X-Request-Id"]
        refused = await client.get("/openapi.json", headers={"X-Request-Id": "abc-123"})
        assert refused.status == 401 and refused.headers["X-Request-Id"] == "abc-123"
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_handler_is_never_reached_when_the_gate_refuses() -> None:
    built = build(config(), {}, extra_plugins=TRATTA, discover=False)
    reached: list[str] = []

    async def spy(request: web.Request) -> web.Response:
        reached.append(request.path)
        return web.json_response({})

    built.rest.router.add_post("/spy", spy)
    async with TestClient(TestServer(built.rest, host="127.0.0.1")) as client:
        assert (await client.post("/spy", data="x", headers={"Content-Type": "text/plain"})).status == 415
        assert (await client.post("/spy", json={}, headers={"Host": "evil.example"})).status == 421
        assert reached == []
        assert (await client.post("/spy", json={})).status == 200
        assert reached == ["/spy"]


# --- issue 10 #14: the access log cannot be forged ------------------------------------------------------


async def test_a_newline_in_a_path_cannot_start_a_log_line(tmp_path: Path) -> None:
    server = start_host_server(
        tmp_path, ["tratta-customer-sessions"], {"tratta-customer-sessions": {"mock": True}}
    )
    forged = "2026-01-01 00:00:00,000 INFO host.access [-]: rest GET /forged 200"
    try:
        async with aiohttp.ClientSession() as session:
            url = f"{server.rest_url}/x%0A{quote(forged)}%0D%1B[31m"
            async with session.get(url) as response:
                assert response.status == 404
    finally:
        assert server.stop() == 0
    lines = server.log().splitlines()
    assert not [line for line in lines if line.startswith("2026-01-01")], lines
    [access] = [line for line in lines if "/x\\n" in line]
    assert "host.access" in access and "\\r\\x1b[31m" in access


# --- issue 9: every REST route and every MCP method is refused without credentials ----------------------

# The documented public ones, by name; every other path and method needs credentials.
PUBLIC_REST = {"/healthz", "/readyz"}
PUBLIC_MCP = {
    "/healthz",
    "/.well-known/oauth-protected-resource",
    "/.well-known/oauth-protected-resource/mcp",
}
CONFORMANCE = ROOT / "tests/fixtures/plugins/host-conformance-plugin/host_conformance_plugin/__init__.py"


def _module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _secured() -> Host:
    secured = config(
        auth={
            "keys": [{"name": "ci", "env": "HOST_KEY_CI"}],
            "oauth": {"issuer": "https://issuer.test", "audience": "aud", "jwks_url": "http://127.0.0.1:9/"},
        }
    )
    plugins = [*TRATTA, ("conformance", _module(CONFORMANCE, "host_conformance_plugin_for_the_gate"))]
    return build(secured, {"HOST_KEY_CI": KEY}, extra_plugins=plugins, discover=False)


def _concrete(route: web.AbstractRoute) -> str:
    assert route.resource is not None
    return re.sub(r"\{[^}]+\}", "x", route.resource.canonical)


async def test_every_rest_route_is_refused_without_credentials() -> None:
    host = _secured()
    routes = [(route.method, _concrete(route)) for route in host.rest.router.routes()]
    assert ("POST", PATH) in routes and ("GET", "/metrics") in routes and ("GET", "/openapi.json") in routes
    open_paths = set()
    async with TestClient(TestServer(host.rest, host="127.0.0.1")) as client:
        for method, path in routes:
            response = await client.request("POST" if method == "*" else method, path, json={})
            if response.status != 401:
                open_paths.add(path)
        assert (await client.post(PATH, json=SESSION, headers={"X-API-Key": KEY})).status == 201
    assert open_paths == PUBLIC_REST


async def test_every_mcp_method_and_path_is_refused_without_credentials() -> None:
    host = _secured()
    # Every method the SDK server answers (derived, so that a new one cannot slip by), and initialize.
    methods = {*host.mcp[SERVICE].server._request_handlers, "initialize"}
    expected = {"tools/list", "tools/call", "resources/list", "resources/read", "resources/templates/list"}
    expected |= {"prompts/list", "prompts/get", "completion/complete", "logging/setLevel", "ping"}
    assert expected <= methods
    headers = {"Accept": "application/json, text/event-stream"}
    async with TestClient(TestServer(host.mcp, host="127.0.0.1")) as client:
        for method in sorted(methods):
            call = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {}}
            response = await client.post("/mcp", json=call, headers=headers)
            assert response.status == 401, method
            assert "resource_metadata=" in response.headers["WWW-Authenticate"]
        open_paths = set()
        for route in host.mcp.router.routes():
            path = _concrete(route)
            response = await client.request("POST" if route.method == "*" else route.method, path, json={})
            if response.status != 401:
                open_paths.add(path)
        assert open_paths == PUBLIC_MCP
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        allowed = await client.post("/mcp", json=ping, headers={**headers, "X-API-Key": KEY})
        assert allowed.status == 200


# --- a capability's own authentication covers every item of its adapters ---------------------------------

# The guarded capability of test_auth (a REST resource and a tool, each answering {"secret": "stuff"}),
# its MCP adapter given a resource and a prompt too.
GUARDED = (
    CAPABILITY_WITH_AUTH
    + """    resources:
    - {name: notes, uri: 'guarded://notes', location: notes.txt, mimeType: text/plain}
    prompts:
    - name: briefing
      description: A guarded prompt.
      template:
      - {role: user, content: prompt-stuff}
"""
)
GUARD_ENV = {"CAP_GUARD_TOKEN": "guard-token-0123456789", "CAP_GUARD_KEY": "guard-key-0123456789"}


def _guarded_host(tmp_path: Path) -> Host:
    (tmp_path / "guarded.yaml").write_text(GUARDED)
    (tmp_path / "notes.txt").write_text("resource-stuff")
    guarded = HostConfig.model_validate({"capabilities": [{"path": str(tmp_path / "guarded.yaml")}]})
    return build(guarded, GUARD_ENV, discover=False)


async def test_a_capability_route_needs_its_own_credential(tmp_path: Path) -> None:
    async with TestClient(TestServer(_guarded_host(tmp_path).rest, host="127.0.0.1")) as client:
        for headers in ({}, {"Authorization": "Bearer nope"}):
            refused = await client.get("/v1/guarded", headers=headers)
            assert refused.status == 401 and "stuff" not in await refused.text()
            assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        token = GUARD_ENV["CAP_GUARD_TOKEN"]
        served = await client.get("/v1/guarded", headers={"Authorization": f"Bearer {token}"})
        assert served.status == 200 and await served.json() == {"secret": "stuff"}


MCP_ITEMS = [
    pytest.param("tools/call", {"name": "guarded", "arguments": {}}, "stuff", id="tool"),
    pytest.param("resources/read", {"uri": "guarded://notes"}, "resource-stuff", id="resource"),
    pytest.param("prompts/get", {"name": "briefing"}, "prompt-stuff", id="prompt"),
]


@pytest.mark.parametrize(("method", "params", "secret"), MCP_ITEMS)
async def test_every_mcp_item_of_a_capability_needs_its_credential(
    tmp_path: Path, method: str, params: dict[str, Any], secret: str
) -> None:
    call = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    headers = {"Accept": "application/json"}
    async with TestClient(TestServer(_guarded_host(tmp_path).mcp, host="127.0.0.1")) as client:
        refused = await (await client.post("/mcp", json=call, headers=headers)).json()
        assert secret not in json.dumps(refused)
        assert "error" in refused or refused["result"].get("isError") is True
        key = {"X-Guard-Key": GUARD_ENV["CAP_GUARD_KEY"]}
        served = await (await client.post("/mcp", json=call, headers={**headers, **key})).json()
        assert secret in json.dumps(served)
