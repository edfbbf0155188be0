"""`[[capabilities]] openapi = "…"`: an OpenAPI document served directly, every operation end to end.

Each operation of two of the reference's fixtures (OpenAPI 3.1 with bearer auth; Swagger 2.0 with an
API key on one operation only) is called over REST and over MCP against a fake upstream. Both sides
must send the exact same upstream request (method, path, query, credentials, body), because they call
one consumed operation, and hand back the upstream's answer whole.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from mcp import Client

from host.testing import FakeUpstream, HostServer, RecordedRequest, start_host_server, write_host_toml

FIXTURES = (
    Path(__file__).resolve().parents[1].parent / "shared" / "naftiko-reference" / "src/test/resources/openapi"
)
if not FIXTURES.is_dir():
    pytest.skip(f"{FIXTURES} is absent: no OpenAPI fixtures to serve", allow_module_level=True)

TOKEN = "tok-3f0c9a7be1d24"
API_KEY = "key-8d7e6f5a4b3c2"
ANSWER = {"id": 7, "name": "Rex", "tags": ["a", "b"], "owner": {"name": "Ann"}}


@dataclass(frozen=True)
class Call:
    """One operation: the MCP arguments, the REST request, and the upstream request both must send."""

    tool: str
    arguments: dict[str, Any]
    rest: tuple[str, str, dict[str, str], Any]  # method, path with query, headers, JSON body
    upstream: tuple[str, str, dict[str, str], Any]  # method, path, query, JSON body
    credential: tuple[str, str] | None  # header name and value the upstream must get


PETSTORE_31 = [
    Call(
        "list-pets",
        {"limit": 5, "status": "sold"},
        ("GET", "/pets?limit=5&status=sold", {}, None),
        ("GET", "/pets", {"limit": "5", "status": "sold"}, None),
        ("Authorization", f"Bearer {TOKEN}"),
    ),
    Call(
        "create-pet",
        {"name": "Rex", "tag": "dog"},
        ("POST", "/pets", {}, {"name": "Rex", "tag": "dog"}),
        ("POST", "/pets", {}, {"name": "Rex", "tag": "dog"}),
        ("Authorization", f"Bearer {TOKEN}"),
    ),
    Call(
        "show-pet-by-id",
        {"petId": 7},
        ("GET", "/pets/7", {}, None),
        ("GET", "/pets/7", {}, None),
        ("Authorization", f"Bearer {TOKEN}"),
    ),
    Call(
        "delete-pet",
        {"petId": 7},
        ("DELETE", "/pets/7", {}, None),
        ("DELETE", "/pets/7", {}, None),
        ("Authorization", f"Bearer {TOKEN}"),
    ),
]

SWAGGER_FULL = [
    Call(
        "get-pet-by-id",
        {"petId": 3},
        ("GET", "/pet/3", {}, None),
        ("GET", "/v2/pet/3", {}, None),
        ("api_key", API_KEY),
    ),
    Call("delete-pet", {"petId": 3}, ("DELETE", "/pet/3", {}, None), ("DELETE", "/v2/pet/3", {}, None), None),
    Call(
        "add-pet",
        {"name": "Rex", "photoUrls": ["u1"], "category": {"id": 1, "name": "dogs"}},
        ("POST", "/pet", {}, {"name": "Rex", "photoUrls": ["u1"], "category": {"id": 1, "name": "dogs"}}),
        ("POST", "/v2/pet", {}, {"name": "Rex", "photoUrls": ["u1"], "category": {"id": 1, "name": "dogs"}}),
        None,
    ),
    Call(
        "find-pets-by-status",
        {"status": "available"},
        ("GET", "/pet/findByStatus?status=available", {}, None),
        ("GET", "/v2/pet/findByStatus", {"status": "available"}, None),
        None,
    ),
    Call(
        "place-order",
        {"petId": 3, "quantity": 2, "complete": False},
        ("POST", "/store/order", {}, {"petId": 3, "quantity": 2, "complete": False}),
        ("POST", "/v2/store/order", {}, {"petId": 3, "quantity": 2, "complete": False}),
        None,
    ),
    Call(
        "login-user",
        {"username": "ann", "password": "pw"},
        ("GET", "/user/login?username=ann&password=pw", {}, None),
        ("GET", "/v2/user/login", {"username": "ann", "password": "pw"}, None),
        None,
    ),
]


@dataclass
class Served:
    host: HostServer
    fake: FakeUpstream


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    upstream = FakeUpstream()
    upstream.start()
    upstream.route("*", "*", json=ANSWER)
    yield upstream
    upstream.stop()


def _serve(tmp: Path, fake: FakeUpstream, document: str, consumes: dict[str, str]) -> HostServer:
    extra = f'[[capabilities]]\nopenapi = "{FIXTURES / document}"\n'
    return start_host_server(
        tmp,
        [],
        {namespace: {"base_uri": fake.url + prefix} for namespace, prefix in consumes.items()},
        toml_extra=extra,
        environment={"PETSTORE_31_TOKEN": TOKEN, "SWAGGER_PETSTORE_API_KEY_API_KEY": API_KEY},
    )


@pytest.fixture(scope="module")
def petstore_31(tmp_path_factory: pytest.TempPathFactory, fake: FakeUpstream) -> Iterator[Served]:
    host = _serve(tmp_path_factory.mktemp("p31"), fake, "petstore-3.1.yaml", {"petstore-31": ""})
    yield Served(host, fake)
    host.stop()


@pytest.fixture(scope="module")
def swagger_full(tmp_path_factory: pytest.TempPathFactory, fake: FakeUpstream) -> Iterator[Served]:
    namespaces = {"swagger-petstore": "/v2", "swagger-petstore-api-key": "/v2"}
    host = _serve(tmp_path_factory.mktemp("sw2"), fake, "petstore-swagger2-full.json", namespaces)
    yield Served(host, fake)
    host.stop()


async def _over_rest(served: Served, call: Call) -> tuple[RecordedRequest, Any]:
    method, path, headers, body = call.rest
    served.fake.reset()
    served.fake.route("*", "*", json=ANSWER)
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, served.host.rest_url + path, headers=headers, json=body) as response,
    ):
        answer = await response.json()
        assert response.status == 200, answer
    (request,) = served.fake.requests
    return request, answer


async def _over_mcp(served: Served, call: Call) -> tuple[RecordedRequest, Any]:
    served.fake.reset()
    served.fake.route("*", "*", json=ANSWER)
    async with Client(served.host.mcp_url) as client:
        result = await client.call_tool(call.tool, call.arguments)
    assert not result.is_error, result
    (request,) = served.fake.requests
    return request, result.structured_content


def _assert_upstream(request: RecordedRequest, call: Call) -> None:
    method, path, query, body = call.upstream
    assert (request.method, request.path, dict(request.query)) == (method, path, query)
    assert request.json() == body
    if body is not None:
        assert request.headers["Content-Type"].startswith("application/json")
    for name in ("Authorization", "api_key"):
        expected = call.credential[1] if call.credential and call.credential[0] == name else None
        assert request.headers.get(name) == expected, f"{name} sent to {call.tool}"


@pytest.mark.parametrize("call", PETSTORE_31, ids=lambda c: c.tool)
async def test_openapi_31_operation_over_rest_and_mcp(petstore_31: Served, call: Call) -> None:
    rest_request, rest_answer = await _over_rest(petstore_31, call)
    mcp_request, mcp_answer = await _over_mcp(petstore_31, call)
    _assert_upstream(rest_request, call)
    _assert_upstream(mcp_request, call)
    assert rest_answer == mcp_answer == ANSWER


@pytest.mark.parametrize("call", SWAGGER_FULL, ids=lambda c: c.tool)
async def test_swagger_20_operation_over_rest_and_mcp(swagger_full: Served, call: Call) -> None:
    rest_request, rest_answer = await _over_rest(swagger_full, call)
    mcp_request, mcp_answer = await _over_mcp(swagger_full, call)
    _assert_upstream(rest_request, call)
    _assert_upstream(mcp_request, call)
    assert rest_answer == mcp_answer == ANSWER


async def test_served_tools_carry_the_openapi_input_schema(petstore_31: Served) -> None:
    async with Client(petstore_31.host.mcp_url) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == {"list-pets", "create-pet", "show-pet-by-id", "delete-pet"}
    create = tools["create-pet"].input_schema
    assert create["properties"]["name"]["type"] == "string"
    assert create["required"] == ["name"]
    assert tools["list-pets"].input_schema["properties"]["limit"]["type"] == "integer"
    assert tools["show-pet-by-id"].annotations is not None
    assert tools["show-pet-by-id"].annotations.read_only_hint is True


async def test_a_missing_required_argument_sends_nothing(petstore_31: Served) -> None:
    petstore_31.fake.reset()
    async with Client(petstore_31.host.mcp_url) as client:
        result = await client.call_tool("create-pet", {"tag": "dog"})
    assert result.is_error
    assert petstore_31.fake.requests == []


def test_check_config_explains_each_tool(tmp_path: Path) -> None:
    body = (
        '[consumes.petstore-31]\nbase_uri = "http://127.0.0.1:9"\n\n'
        f'[[capabilities]]\nopenapi = "{FIXTURES / "petstore-3.1.yaml"}"\n'
    )
    config = write_host_toml(tmp_path, body)  # free ports: check --config also checks they can be bound
    result = subprocess.run(
        [sys.executable, "-m", "host", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOST_LOAD_PLUGINS": "", "PETSTORE_31_TOKEN": TOKEN},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in result.stdout
    for tool in ("list-pets", "create-pet", "show-pet-by-id", "delete-pet"):
        assert f"note: tool {tool}: from " in result.stdout
    assert "from GET /pets (operationId listPets)" in result.stdout
    assert "limit (query, integer, optional)" in result.stdout
    assert TOKEN not in result.stdout + result.stderr


# A document of our own for what the fixtures lack: a form body, header and cookie parameters, a csv
# array, a oneOf body of objects (one whole-body input), OAuth 2 (a bearer token) and a query API key.
SHAPES = {
    "openapi": "3.1.0",
    "info": {"title": "Shapes", "version": "1"},
    "servers": [{"url": "https://shapes.example/{stage}", "variables": {"stage": {"default": "v1"}}}],
    "security": [{"oauth": ["read"]}],
    "components": {
        "securitySchemes": {
            "oauth": {
                "type": "oauth2",
                "flows": {"clientCredentials": {"tokenUrl": "https://x/t", "scopes": {}}},
            },
            "key": {"type": "apiKey", "in": "query", "name": "key"},
        },
        "schemas": {
            "Circle": {"type": "object", "title": "Circle", "properties": {"r": {"type": "number"}}},
            "Square": {"type": "object", "title": "Square", "properties": {"side": {"type": "number"}}},
        },
    },
    "paths": {
        "/tokens": {
            "post": {
                "operationId": "makeToken",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                "type": "object",
                                "properties": {"grant": {"type": "string"}, "n": {"type": "integer"}},
                            }
                        }
                    },
                },
                "responses": {"200": {"description": "ok"}},
            }
        },
        "/shapes/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "put": {
                "operationId": "putShape",
                "parameters": [
                    {"name": "X-Trace", "in": "header", "schema": {"type": "string"}},
                    {"name": "session", "in": "cookie", "schema": {"type": "string"}},
                    {
                        "name": "tags",
                        "in": "query",
                        "explode": False,
                        "schema": {"type": "array", "items": {"type": "string"}},
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    {"$ref": "#/components/schemas/Circle"},
                                    {"$ref": "#/components/schemas/Square"},
                                ]
                            }
                        }
                    },
                },
                "responses": {"200": {"description": "ok"}},
            },
            "get": {"security": [{"key": []}], "responses": {"200": {"description": "ok"}}},
        },
    },
}
ACCESS = "acc-5e4d3c2b1a09f"
KEY = "qk-0a1b2c3d4e5f6"


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory, fake: FakeUpstream) -> Iterator[Served]:
    import yaml

    directory = tmp_path_factory.mktemp("shapes")
    (directory / "shapes.yaml").write_text(yaml.safe_dump(SHAPES, sort_keys=False))
    host = start_host_server(
        directory,
        [],
        {ns: {"base_uri": fake.url + "/v1"} for ns in ("shapes", "shapes-key")},
        toml_extra='[[capabilities]]\nopenapi = "shapes.yaml"\n',
        environment={"SHAPES_ACCESS_TOKEN": ACCESS, "SHAPES_KEY_API_KEY": KEY},
    )
    yield Served(host, fake)
    host.stop()


async def _form_token(served: Served, over: str) -> RecordedRequest:
    call = Call(
        "make-token",
        {"grant": "client", "n": 2},
        ("POST", "/tokens", {}, {"grant": "client", "n": 2}),
        ("", "", {}, None),
        None,
    )
    request, _ = await (_over_rest if over == "rest" else _over_mcp)(served, call)
    return request


@pytest.mark.parametrize("over", ["rest", "mcp"])
async def test_form_body_header_cookie_csv_oneof_and_auth(shapes: Served, over: str) -> None:
    via = _over_rest if over == "rest" else _over_mcp
    token = await _form_token(shapes, over)
    assert (token.method, token.path) == ("POST", "/v1/tokens")
    assert token.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert token.text in ("grant=client&n=2", "n=2&grant=client")
    assert token.headers["Authorization"] == f"Bearer {ACCESS}"

    shape = {"side": 2.5}
    put = Call(
        "put-shape",
        {"id": 4, "X-Trace": "t-1", "session": "s 1", "tags": "a,b", "body": shape},
        ("PUT", "/shapes/4?tags=a,b", {"X-Trace": "t-1", "Cookie": "session=s 1"}, shape),
        ("", "", {}, None),
        None,
    )
    request, _ = await via(shapes, put)
    assert (request.method, request.path, dict(request.query)) == ("PUT", "/v1/shapes/4", {"tags": "a,b"})
    assert request.headers["X-Trace"] == "t-1"
    assert request.json() == shape
    assert request.headers["Authorization"] == f"Bearer {ACCESS}"
    if over == "mcp":  # the REST caller's own cookies never reach the upstream; a declared cookie input does
        assert request.headers["Cookie"] == "session=s%201"

    get = Call("get-shapes-id", {"id": 9}, ("GET", "/shapes/9", {}, None), ("", "", {}, None), None)
    request, _ = await via(shapes, get)
    assert (request.path, dict(request.query)) == ("/v1/shapes/9", {"key": KEY})
    assert "Authorization" not in request.headers
