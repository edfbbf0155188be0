"""Every sample Naftiko capability file, served verbatim by `host serve`, end to end.

The samples live outside the repository, in ``../shared/naftiko-capabilities`` (naftiko-spec.md §7). Each
file gets its own `host serve` process: ``[[capabilities]] path = <the file>``, every consumed namespace
pointed (``[consumes.<ns>] base_uri``) at a scriptable fake upstream on 127.0.0.1, installed plugins off
(``HOST_LOAD_PLUGINS=""``), and a dummy value for every environment variable the file binds or
authenticates with. The tests call the REST resources with aiohttp and the MCP tools with the official SDK
client, and check the exact request the upstream received (method, path, query, credentials, content type,
body) and what the caller got back (the file's output mapping applied to the fake's answer).

The base URIs are overridden, so no value from the environment has a reason to appear in the host's
output: every one of them is checked to be absent from the log.

Expected behaviour is naftiko-spec.md §4. Where the host deviates, the test states the spec's behaviour
and is marked ``xfail(strict=True)`` with what the host does instead.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest
import yaml
from mcp import Client, MCPError
from mcp.types import CallToolResult, Tool

from host.testing import FakeUpstream, HostServer, RecordedRequest, start_host_process, write_host_toml
from tests.conftest import ROOT

SAMPLES = ROOT.parent / "shared" / "naftiko-capabilities"
if not SAMPLES.is_dir():
    pytest.skip(f"{SAMPLES} is absent: no sample capability files to serve", allow_module_level=True)

SAMPLE_FILES = (
    "air-quality-monitoring.yaml",
    "community-pass-and-inclusion.yaml",
    "customer360-context-composition.yaml",
    "debt-collection-workflow.yaml",
    "gong-capability.yaml",
    "integrations-and-connectors.yaml",
    "logrocket-capability.yaml",
    "openfeature-capability.yaml",
    "recipe-data-enrichment.yaml",
    "tratta-customer-sessions.yaml",
    "tratta-customers.yaml",
)

F = TypeVar("F", bound=Callable[..., Any])


# -- the fake upstream: answers as scripted per (method, decoded path), 404 otherwise
@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


# -- one `host serve` per sample file
def load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((SAMPLES / name).read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def consumed_namespaces(document: dict[str, Any]) -> list[str]:
    capability = document.get("capability") or {}
    blocks = [*(capability.get("consumes") or []), *(document.get("consumes") or [])]
    return [str(block["namespace"]) for block in blocks]


def needed_variables(document: dict[str, Any]) -> list[str]:
    """Environment variables the file binds (``binds[].keys`` values) or names in its credentials."""
    capability = document.get("capability") or {}
    names: list[str] = []
    for bind in [*(document.get("binds") or []), *(capability.get("binds") or [])]:
        names += [str(provider) for provider in (bind.get("keys") or {}).values()]
    for block in [*(capability.get("consumes") or []), *(document.get("consumes") or [])]:
        for value in (block.get("authentication") or {}).values():
            if isinstance(value, str):
                names += [n.rsplit(".", 1)[-1] for n in re.findall(r"\{\{\s*([\w.-]+)\s*\}\}", value)]
    return list(dict.fromkeys(names))


def dummy_value(name: str) -> str:
    # Long, unique, and with characters a careless encoder breaks: '+' (a space in a query), '/', '='.
    return f"{name.lower().replace('_', '-')}-{secrets.token_hex(4)}+/="


@dataclass
class Served:
    file: Path
    host: HostServer
    env: dict[str, str]
    ready: bool = False
    failure: str | None = None

    def log_leaks(self) -> list[str]:
        log = self.host.log()
        values = list(self.env.values())
        values += [base64.b64encode(f"{a}:{b}".encode()).decode() for a in values for b in values if a != b]
        return [value for value in values if value in log]


def sample(name: str) -> Callable[[F], F]:
    """Declare the sample file a test uses; the test then receives that file's host as ``served``."""

    def mark(function: F) -> F:
        function.sample_file = name  # type: ignore[attr-defined]
        return function

    return mark


def selected_files(session: pytest.Session) -> list[str]:
    """The sample files the selected tests of this module use."""
    names: set[str] = set()
    for item in session.items:
        if getattr(item, "module", None) is not sys.modules[__name__]:
            continue
        name = getattr(getattr(item, "function", None), "sample_file", None)
        callspec = getattr(item, "callspec", None)
        if name is None and callspec is not None:
            name = callspec.params.get("name")
        if name is not None:
            names.add(name)
    return sorted(names)


class Hosts:
    """One `host serve` per sample file. Start-up is CPU-bound, so the hosts the selected tests need are
    all spawned at once and each is awaited on first use. A host that failed to start fails every use."""

    def __init__(self, directory: Path, fake: FakeUpstream) -> None:
        self.directory = directory
        self.fake = fake
        self.served: dict[str, Served] = {}

    def spawn(self, name: str) -> Served:
        document = load(name)
        consumes = "".join(
            f'[consumes.{ns}]\nbase_uri = "{self.fake.url}/{ns}"\ntimeout = 5\n'
            for ns in consumed_namespaces(document)
        )
        directory = self.directory / Path(name).stem
        directory.mkdir()
        config = write_host_toml(directory, consumes + f'[[capabilities]]\npath = "{SAMPLES / name}"\n')
        env = {var: dummy_value(var) for var in needed_variables(document)}
        host = start_host_process(config, plugins=(), environment=env, wait=False)
        self.served[name] = Served(SAMPLES / name, host, env)
        return self.served[name]

    def __call__(self, name: str) -> Served:
        served = self.served.get(name) or self.spawn(name)
        if not served.ready and served.failure is None:
            try:
                # All hosts start at once and start-up is CPU-bound: on a loaded machine the first waits.
                served.host.wait_until_listening(120)
                served.ready = True
            except RuntimeError as exc:
                served.failure = f"{name}: {exc}"
        if served.failure is not None:
            raise AssertionError(served.failure)
        return served

    def stop_all(self) -> list[str]:
        """SIGTERM every host at once, then collect: a host that served must exit 0, no log may leak."""
        for served in self.served.values():
            served.host.terminate()
        problems = []
        for name, served in self.served.items():
            code = served.host.stop(20)
            if code == -signal.SIGKILL:
                problems.append(f"{name}: host did not stop within 20 s of SIGTERM")
            elif served.ready and code != 0:
                problems.append(f"{name}: host exited with {code}:\n{served.host.log()}")
            if served.log_leaks():
                problems.append(f"{name}: environment values leaked into the host's log")
        return problems


@pytest.fixture(scope="module")
def hosts(
    fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Hosts]:
    pool = Hosts(tmp_path_factory.mktemp("naftiko-samples"), fake)
    try:
        for name in selected_files(request.session):
            pool.spawn(name)
        yield pool
    finally:
        problems = pool.stop_all()
    # Reported on the module's last test: keep a plain (not xfail) test last, or this would be masked.
    assert not problems, "\n".join(problems)


@pytest.fixture
def served(hosts: Hosts, request: pytest.FixtureRequest) -> Served:
    return hosts(request.function.sample_file)


@pytest.fixture(autouse=True)
def logs_stay_clean(hosts: Hosts) -> Iterator[None]:
    yield
    for name, served in hosts.served.items():
        assert not served.log_leaks(), f"{name}: environment values leaked into the host's log"


# -- calling the host
@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def rest(
    served: Served, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None
) -> Reply:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, served.host.rest_url + path, json=body, headers=headers) as resp,
    ):
        reply = Reply(resp.status, dict(resp.headers), await resp.read())
    assert_no_secret(served, reply.body.decode(errors="replace") + json.dumps(reply.headers))
    return reply


async def call_tool(served: Served, name: str, arguments: dict[str, Any]) -> CallToolResult:
    async with Client(served.host.mcp_url) as client:
        result = await client.call_tool(name, arguments)
    assert_no_secret(served, result.model_dump_json())
    return result


def assert_no_secret(served: Served, text: str) -> None:
    """Credentials are never written to responses or errors (README: Secrets)."""
    assert not [name for name, value in served.env.items() if value in text]


async def list_tools(served: Served) -> dict[str, Tool]:
    async with Client(served.host.mcp_url) as client:
        return {tool.name: tool for tool in (await client.list_tools()).tools}


def text_of(result: CallToolResult) -> str:
    return "\n".join(str(getattr(block, "text", "")) for block in result.content)


NO_BODY: Any = object()


def assert_request(
    seen: list[RecordedRequest],
    method: str,
    path: str,
    query: list[tuple[str, str]] | None = None,
    *,
    headers: dict[str, str | None],
    body: Any = NO_BODY,
) -> None:
    """Exactly one request, exactly this one. ``headers``: name -> value, or None for "not sent"."""
    assert len(seen) == 1, f"expected one upstream request, got {[(s.method, s.raw_path) for s in seen]}"
    [request] = seen
    sent = urlsplit(request.raw_path)  # as sent: percent-encoding kept, query parameters in order
    assert (request.method, sent.path, parse_qsl(sent.query, keep_blank_values=True)) == (
        method,
        path,
        query or [],
    )
    for name, value in headers.items():
        assert request.headers.get(name.lower()) == value, f"header {name}"
    if body is NO_BODY:
        assert request.body == b""
    else:
        assert request.headers.get("content-type") == "application/json"
        assert json.loads(request.body) == body


def bearer(served: Served, variable: str) -> dict[str, str | None]:
    return {"Authorization": f"Bearer {served.env[variable]}"}


# -- every file: loads, lists the tools it declares, with their hints
def declared_tools(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The tools of the file's HTTP MCP adapters (stdio adapters are not served on the MCP port)."""
    tools: dict[str, dict[str, Any]] = {}
    for adapter in (document.get("capability") or {}).get("exposes") or []:
        if adapter.get("type") == "mcp" and adapter.get("transport", "http") == "http":
            tools.update({str(tool["name"]): tool for tool in adapter.get("tools") or []})
    return tools


def test_the_sample_folder_holds_the_eleven_files() -> None:
    assert sorted(p.name for p in SAMPLES.glob("*.yaml")) == sorted(SAMPLE_FILES)


@pytest.mark.parametrize(
    "name",
    [
        name
        for name in SAMPLE_FILES
        if name != "community-pass-and-inclusion.yaml"  # cannot be served (oauth1): see its own tests
    ],
)
async def test_file_loads_and_lists_its_tools(hosts: Hosts, name: str) -> None:
    document = load(name)
    served = hosts(name)
    tools = await list_tools(served)
    declared = declared_tools(document)
    assert set(tools) == set(declared)
    for tool_name, spec in declared.items():
        tool = tools[tool_name]
        assert tool.input_schema["type"] == "object"
        hints = spec.get("hints") or {}
        annotations = tool.annotations
        got = {
            "readOnly": annotations.read_only_hint if annotations else None,
            "destructive": annotations.destructive_hint if annotations else None,
            "idempotent": annotations.idempotent_hint if annotations else None,
            "openWorld": annotations.open_world_hint if annotations else None,
        }
        assert got == {key: hints.get(key) for key in got}, tool_name
    assert " ERROR " not in served.host.log()


# -- tratta-customer-sessions.yaml: the target, served verbatim
SESSIONS = "tratta-customer-sessions.yaml"
SESSION = {
    "data": {
        "id": "sess-1",
        "portal_url": "https://portal.example/login/abc",
        "return_url": None,
        "expiration": "2026-12-01T00:00:00Z",
    }
}


@sample(SESSIONS)
async def test_sessions_rest_posts_the_json_body_to_the_files_path(
    served: Served, fake: FakeUpstream
) -> None:
    fake.route("POST", "/tratta-customer-sessions/customer_sessions", json=SESSION, status=201)
    body = {"customer_id": "cus-rest", "valid_until": 48, "destination": "accounts_list"}
    with fake.capture() as seen:
        # The caller's own Authorization is never forwarded: the file's bearer token replaces it.
        reply = await rest(
            served, "POST", "/v1/customer-sessions", body, headers={"Authorization": "Bearer mine"}
        )
    assert_request(
        seen,
        "POST",
        "/tratta-customer-sessions/customer_sessions",  # the file's path, as written (§5)
        headers=bearer(served, "TRATTA_API_KEY"),
        body=body,
    )
    assert reply.status == 201
    assert reply.json() == SESSION  # {type: object, mapping: $.}: the whole document (§4.8)


@sample(SESSIONS)
async def test_sessions_mcp_tool_takes_body_and_posts_it(served: Served, fake: FakeUpstream) -> None:
    fake.route("POST", "/tratta-customer-sessions/customer_sessions", json=SESSION, status=201)
    schema = (await list_tools(served))["create-customer-session"].input_schema
    assert schema["properties"]["body"]["type"] == "object" and schema["required"] == ["body"]  # §4.9
    body = {"customer_id": "cus-mcp", "tags": [{"name": "utm_source", "value": "agent"}]}
    with fake.capture() as seen:
        result = await call_tool(served, "create-customer-session", {"body": body})
    assert_request(
        seen,
        "POST",
        "/tratta-customer-sessions/customer_sessions",
        headers=bearer(served, "TRATTA_API_KEY"),
        body=body,
    )
    assert not result.is_error
    assert result.structured_content == SESSION
    assert json.loads(text_of(result)) == SESSION


@sample(SESSIONS)
async def test_sessions_mcp_without_body_is_an_error_and_sends_nothing(
    served: Served, fake: FakeUpstream
) -> None:
    with fake.capture() as seen:
        result = await call_tool(served, "create-customer-session", {})
    assert result.is_error and "body" in text_of(result)
    assert seen == []


# -- tratta-customers.yaml: four operations, {id} by name, body passthrough
CUSTOMERS = "tratta-customers.yaml"


@sample(CUSTOMERS)
async def test_customers_rest_list_get_create_update(served: Served, fake: FakeUpstream) -> None:
    auth = bearer(served, "TRATTA_API_KEY")
    listing = {"data": [{"id": "cus-1"}], "meta": {"total": 1}}
    one = {"data": {"id": "cus-42", "email": "ada@example.com"}}
    fake.route("GET", "/tratta-customers/customers", json=listing)
    fake.route("GET", "/tratta-customers/customers/cus-42", json=one)
    fake.route("PUT", "/tratta-customers/customers/cus-42", json=one)
    fake.route("POST", "/tratta-customers/customers", json={"data": {"id": "cus-43"}}, status=201)

    with fake.capture() as seen:
        reply = await rest(served, "GET", "/v1/customers")
    assert_request(seen, "GET", "/tratta-customers/customers", headers={**auth, "Content-Type": None})
    assert (reply.status, reply.json()) == (200, listing)

    with fake.capture() as seen:
        reply = await rest(served, "GET", "/v1/customers/cus-42")
    assert_request(seen, "GET", "/tratta-customers/customers/cus-42", headers=auth)
    assert (reply.status, reply.json()) == (200, one)

    with fake.capture() as seen:
        reply = await rest(served, "PUT", "/v1/customers/cus-42", {"email": "ada@example.com"})
    assert_request(
        seen, "PUT", "/tratta-customers/customers/cus-42", headers=auth, body={"email": "ada@example.com"}
    )
    assert (reply.status, reply.json()) == (200, one)

    with fake.capture() as seen:
        reply = await rest(served, "POST", "/v1/customers", {"first_name": "Ada", "last_name": "Lovelace"})
    assert_request(
        seen,
        "POST",
        "/tratta-customers/customers",
        headers=auth,
        body={"first_name": "Ada", "last_name": "Lovelace"},
    )
    assert (reply.status, reply.json()) == (201, {"data": {"id": "cus-43"}})


@sample(CUSTOMERS)
async def test_customers_mcp_id_is_one_encoded_segment(served: Served, fake: FakeUpstream) -> None:
    auth = bearer(served, "TRATTA_API_KEY")
    fake.route("GET", "/tratta-customers/customers/cus/42 x", json={"data": {"id": "cus/42 x"}})
    fake.route(
        "PUT", "/tratta-customers/customers/cus-7", json={"data": {"id": "cus-7", "email": "b@example.com"}}
    )
    fake.route("GET", "/tratta-customers/customers", json={"data": []})

    with fake.capture() as seen:
        result = await call_tool(served, "get-customer", {"id": "cus/42 x"})
    assert_request(seen, "GET", "/tratta-customers/customers/cus%2F42%20x", headers=auth)  # §4.4
    assert not result.is_error and result.structured_content == {"data": {"id": "cus/42 x"}}

    with fake.capture() as seen:
        result = await call_tool(
            served, "update-customer", {"id": "cus-7", "body": {"email": "b@example.com"}}
        )
    assert_request(
        seen, "PUT", "/tratta-customers/customers/cus-7", headers=auth, body={"email": "b@example.com"}
    )
    assert not result.is_error and result.structured_content == {
        "data": {"id": "cus-7", "email": "b@example.com"}
    }

    with fake.capture() as seen:
        result = await call_tool(served, "list-customers", {})
    assert_request(seen, "GET", "/tratta-customers/customers", headers=auth)
    assert not result.is_error and result.structured_content == {"data": []}


@sample(CUSTOMERS)
async def test_customers_upstream_404_passes_through(served: Served, fake: FakeUpstream) -> None:
    missing = {"message": "Customer not found."}
    fake.route("GET", "/tratta-customers/customers/cus-404", json=missing, status=404)
    with fake.capture() as seen:
        reply = await rest(served, "GET", "/v1/customers/cus-404")
    assert_request(
        seen, "GET", "/tratta-customers/customers/cus-404", headers=bearer(served, "TRATTA_API_KEY")
    )
    assert (reply.status, reply.json()) == (404, missing)  # upstream 4xx: same status and body (§4.10)

    with fake.capture() as seen:
        result = await call_tool(served, "get-customer", {"id": "cus-404"})
    assert len(seen) == 1
    assert result.is_error and "404" in text_of(result) and "Customer not found." in text_of(result)


# -- debt-collection-workflow.yaml: {{TRATTA_ORG_UUID}} base, query params, {type: json} bodies
DEBT = "debt-collection-workflow.yaml"


@sample(DEBT)
async def test_debt_rest_list_customers_sends_query_params(served: Served, fake: FakeUpstream) -> None:
    page = {"data": [{"id": "cus-1"}], "meta": {"page": 2}}
    fake.route("GET", "/tratta/customers", json=page)
    with fake.capture() as seen:
        reply = await rest(served, "GET", "/v1/customers?limit=25&page=2&include=debt_accounts")
    assert_request(
        seen,
        "GET",
        "/tratta/customers",
        # limit/page through `with: rest.x`; include undeclared on the REST side, passed by name (§4.1)
        [("limit", "25"), ("page", "2"), ("include", "debt_accounts")],
        headers=bearer(served, "TRATTA_BEARER_TOKEN"),
    )
    assert (reply.status, reply.json()) == (200, page)


@sample(DEBT)
async def test_debt_rest_create_customer_renders_the_json_body(served: Served, fake: FakeUpstream) -> None:
    fake.route("POST", "/tratta/customers", json={"data": {"id": "cus-9"}}, status=201)
    with fake.capture() as seen:
        reply = await rest(
            served,
            "POST",
            "/v1/customers",
            {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
        )
    assert_request(
        seen,
        "POST",
        "/tratta/customers",
        headers=bearer(served, "TRATTA_BEARER_TOKEN"),
        # `phone: '{{tools.phone}}'` is unresolved, so the leaf is dropped (§4.6)
        body={"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
    )
    assert (reply.status, reply.json()) == (201, {"data": {"id": "cus-9"}})


@sample(DEBT)
async def test_debt_mcp_list_transactions_and_create_session(served: Served, fake: FakeUpstream) -> None:
    auth = bearer(served, "TRATTA_BEARER_TOKEN")
    fake.route("GET", "/tratta/transactions", json={"data": [{"id": "tx-1", "amount": 1250}]})
    fake.route(
        "POST", "/tratta/customer_sessions", json={"data": {"url": "https://portal.example/s"}}, status=201
    )

    with fake.capture() as seen:
        result = await call_tool(
            served, "list-transactions", {"start_date": "2026-01-01", "end_date": "2026-01-31", "limit": 10}
        )
    assert_request(
        seen,
        "GET",
        "/tratta/transactions",
        [("limit", "10"), ("start_date", "2026-01-01"), ("end_date", "2026-01-31")],
        headers=auth,
    )
    assert not result.is_error
    assert result.structured_content == {"data": [{"id": "tx-1", "amount": 1250}]}

    with fake.capture() as seen:
        result = await call_tool(
            served,
            "create-customer-session",
            {"customer_id": "cus-1", "redirect_url": "https://example.com/back"},
        )
    assert_request(
        seen,
        "POST",
        "/tratta/customer_sessions",
        headers=auth,
        # the file's (stale) path; expires_in was not given, so its leaf is dropped
        body={"customer_id": "cus-1", "redirect_url": "https://example.com/back"},
    )
    assert not result.is_error
    assert result.structured_content == {"data": {"url": "https://portal.example/s"}}


@sample(DEBT)
async def test_debt_rest_json_body_keeps_numbers_and_arrays(served: Served, fake: FakeUpstream) -> None:
    auth = bearer(served, "TRATTA_BEARER_TOKEN")
    fake.route("POST", "/tratta/debt_accounts", json={"data": {"id": "da-1"}}, status=201)
    fake.route("POST", "/tratta/webhooks", json={"data": {"id": "wh-1"}}, status=201)

    account = {"customer_id": "cus-1", "original_balance": 1250.5, "account_number": "ACC-9"}
    with fake.capture() as seen:
        reply = await rest(served, "POST", "/v1/debt-accounts", account)
    # a leaf that is exactly one placeholder takes the argument's JSON value: 1250.5 stays a number (§4.6)
    assert_request(seen, "POST", "/tratta/debt_accounts", headers=auth, body=account)
    assert (reply.status, reply.json()) == (201, {"data": {"id": "da-1"}})

    webhook = {"url": "https://example.com/hook", "events": ["payment.created", "plan.completed"]}
    with fake.capture() as seen:
        reply = await rest(served, "POST", "/v1/webhooks", webhook)
    assert_request(seen, "POST", "/tratta/webhooks", headers=auth, body=webhook)
    assert (reply.status, reply.json()) == (201, {"data": {"id": "wh-1"}})


# -- air-quality-monitoring.yaml: query apikey, /feed/geo:{lat};{lng}/
AIR = "air-quality-monitoring.yaml"


def token(served: Served) -> tuple[str, str]:
    return ("token", served.env["AQICN_API_TOKEN"])


@sample(AIR)
async def test_air_rest_city_coordinates_and_search(served: Served, fake: FakeUpstream) -> None:
    no_auth_header: dict[str, str | None] = {"Authorization": None}
    sao_paulo = {"status": "ok", "data": {"aqi": 42, "city": {"name": "São Paulo"}}}
    fake.route("GET", "/aqicn/feed/São Paulo/", json=sao_paulo)
    fake.route("GET", "/aqicn/feed/geo:48.85;2.35/", json={"status": "ok", "data": {"aqi": 17}})
    fake.route("GET", "/aqicn/search/", json={"status": "ok", "data": [{"uid": 5722}]})

    with fake.capture() as seen:
        reply = await rest(served, "GET", "/v1/air-quality/city/S%C3%A3o%20Paulo")
    # the key is a query parameter, URL-encoded (its '+' must not turn into a space)
    assert_request(seen, "GET", "/aqicn/feed/S%C3%A3o%20Paulo/", [token(served)], headers=no_auth_header)
    assert (reply.status, reply.json()) == (200, sao_paulo)

    with fake.capture() as seen:
        reply = await rest(served, "GET", "/v1/air-quality/coordinates?lat=48.85&lng=2.35")
    assert_request(seen, "GET", "/aqicn/feed/geo:48.85;2.35/", [token(served)], headers=no_auth_header)
    assert (reply.status, reply.json()) == (200, {"status": "ok", "data": {"aqi": 17}})

    with fake.capture() as seen:
        reply = await rest(served, "GET", "/v1/stations/search?keyword=paris")
    assert_request(
        seen, "GET", "/aqicn/search/", [("keyword", "paris"), token(served)], headers=no_auth_header
    )
    assert (reply.status, reply.json()) == (200, {"status": "ok", "data": [{"uid": 5722}]})


@sample(AIR)
async def test_air_mcp_coordinates_city_and_missing_keyword(served: Served, fake: FakeUpstream) -> None:
    fake.route("GET", "/aqicn/feed/geo:-33.9;18.4/", json={"status": "ok", "data": {"aqi": 9}})
    fake.route("GET", "/aqicn/feed/a/b/", json={"status": "error", "data": "Unknown station"})

    with fake.capture() as seen:
        result = await call_tool(served, "get-aqi-by-coordinates", {"lat": -33.9, "lng": 18.4})
    assert_request(
        seen, "GET", "/aqicn/feed/geo:-33.9;18.4/", [token(served)], headers={"Authorization": None}
    )
    assert not result.is_error and result.structured_content == {"status": "ok", "data": {"aqi": 9}}

    with fake.capture() as seen:
        result = await call_tool(served, "get-aqi-by-city", {"city": "a/b"})
    assert_request(seen, "GET", "/aqicn/feed/a%2Fb/", [token(served)], headers={})
    assert not result.is_error and result.structured_content == {"status": "error", "data": "Unknown station"}

    with fake.capture() as seen:
        result = await call_tool(served, "search-air-quality-stations", {})
    assert result.is_error and "keyword" in text_of(result)
    assert seen == []


@sample(AIR)
async def test_air_rest_unresolved_path_placeholder_is_400(served: Served, fake: FakeUpstream) -> None:
    with fake.capture() as seen:
        reply = await rest(served, "GET", "/v1/air-quality/coordinates?lat=48.85")
    assert seen == []
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert "lng" in reply.json()["detail"]
    assert reply.status == 400  # §4.4: "unresolved at call time -> REST 400 naming the missing argument"


# -- gong-capability.yaml: basic auth, required query params, declared MCP inputs
GONG = "gong-capability.yaml"
WINDOW = {"fromDateTime": "2026-01-01T00:00:00Z", "toDateTime": "2026-01-02T00:00:00Z"}
LOGS = {"requestId": "r-1", "records": {"totalRecords": 1}, "logEntries": [{"userId": "u-1"}]}


def basic(served: Served) -> dict[str, str | None]:
    pair = f"{served.env['GONG_USERNAME']}:{served.env['GONG_PASSWORD']}"
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


@sample(GONG)
async def test_gong_rest_retrieves_logs_with_basic_auth(served: Served, fake: FakeUpstream) -> None:
    fake.route("GET", "/gong/logs", json=LOGS)
    with fake.capture() as seen:
        reply = await rest(
            served,
            "GET",
            "/logs?logType=UserAction&fromDateTime=2026-01-01T00:00:00Z&toDateTime=2026-01-02T00:00:00Z",
        )
    assert_request(
        seen,
        "GET",
        "/gong/logs",
        [
            ("logType", "UserAction"),
            ("fromDateTime", WINDOW["fromDateTime"]),
            ("toDateTime", WINDOW["toDateTime"]),
        ],
        headers=basic(served),
    )
    assert (reply.status, reply.json()) == (200, LOGS)


@sample(GONG)
async def test_gong_mcp_optional_cursor_and_missing_required(served: Served, fake: FakeUpstream) -> None:
    fake.route("GET", "/gong/logs", json=LOGS)
    schema = (await list_tools(served))["retrieveauditlogs"].input_schema
    assert schema["required"] == ["logType", "fromDateTime", "toDateTime"]  # cursor has no `required`

    with fake.capture() as seen:
        result = await call_tool(
            served, "retrieveauditlogs", {"logType": "SystemEvent", **WINDOW, "cursor": "c-2"}
        )
    assert_request(
        seen,
        "GET",
        "/gong/logs",
        [
            ("logType", "SystemEvent"),
            ("fromDateTime", WINDOW["fromDateTime"]),
            ("toDateTime", WINDOW["toDateTime"]),
            ("cursor", "c-2"),
        ],
        headers=basic(served),
    )
    assert not result.is_error and result.structured_content == LOGS

    with fake.capture() as seen:
        result = await call_tool(served, "retrieveauditlogs", WINDOW)
    assert result.is_error and "logType" in text_of(result)
    assert seen == []


@sample(GONG)
async def test_gong_rest_missing_required_query_param_is_400(served: Served, fake: FakeUpstream) -> None:
    with fake.capture() as seen:
        reply = await rest(
            served, "GET", "/logs?fromDateTime=2026-01-01T00:00:00Z&toDateTime=2026-01-02T00:00:00Z"
        )
    assert seen == []  # §4.5: absent required -> fail before any upstream call
    assert "logType" in reply.json()["detail"]
    assert reply.status == 400  # §4.10: "Missing argument, unresolved placeholder: 400 / isError"


@sample(GONG)
async def test_gong_mcp_server_is_named_after_the_adapter(served: Served) -> None:
    async with Client(served.host.mcp_url, mode="legacy") as client:
        info, instructions = client.server_info, client.instructions
    assert info is not None and info.name == "gong-mcp"  # §4.9: serverInfo.name = adapter namespace
    assert instructions == "MCP adapter for Gong Auditing API for AI agent use."  # §2: description


# -- logrocket-capability.yaml: apikey {in, name, value} on Authorization; GraphQL POST without body
LOGROCKET = "logrocket-capability.yaml"
GRAPHQL = {"query": "{ sessions(first: 2) { id } }", "variables": {"app": "acme/web"}}
SESSIONS_DATA = {"data": {"sessions": [{"id": "s-1"}, {"id": "s-2"}]}}


@sample(LOGROCKET)
async def test_logrocket_rest_passes_the_graphql_body(served: Served, fake: FakeUpstream) -> None:
    fake.route("POST", "/logrocket/graphql", json=SESSIONS_DATA)
    with fake.capture() as seen:
        reply = await rest(served, "POST", "/graphql", GRAPHQL, headers={"Authorization": "Bearer caller"})
    # the dialect apikey {in: header, name: Authorization} sends the raw token, no scheme
    assert_request(
        seen,
        "POST",
        "/logrocket/graphql",
        headers={"Authorization": served.env["LOGROCKET_TOKEN"]},
        body=GRAPHQL,
    )
    assert (reply.status, reply.json()) == (200, SESSIONS_DATA)


@sample(LOGROCKET)
async def test_logrocket_mcp_body_argument_is_the_request_body(served: Served, fake: FakeUpstream) -> None:
    fake.route("POST", "/logrocket/graphql", json=SESSIONS_DATA)
    with fake.capture() as seen:
        result = await call_tool(served, "executegraphqlquery", {"body": GRAPHQL})
    assert_request(
        seen,
        "POST",
        "/logrocket/graphql",
        headers={"Authorization": served.env["LOGROCKET_TOKEN"]},
        body=GRAPHQL,
    )
    assert not result.is_error and result.structured_content == SESSIONS_DATA


# -- recipe-data-enrichment.yaml: header apikey, {type: json} body keeping an array
RECIPE = "recipe-data-enrichment.yaml"
PARSED = {
    "results": [{"ingredientRaw": "2 cups flour", "ingredientParsed": {"quantity": 2.0, "unit": "cup"}}],
    "requestsRemaining": 29,
}


@sample(RECIPE)
async def test_recipe_rest_body_keeps_the_array(served: Served, fake: FakeUpstream) -> None:
    fake.route("POST", "/zestful/parseIngredients", json=PARSED)
    ingredients = ["2 cups flour", "1 egg", "½ tsp salt"]
    with fake.capture() as seen:
        reply = await rest(served, "POST", "/v1/ingredients/parse", {"ingredients": ingredients})
    assert_request(
        seen,
        "POST",
        "/zestful/parseIngredients",
        headers={"X-Api-Key": served.env["ZESTFUL_API_KEY"], "Authorization": None},
        body={"ingredients": ingredients},  # one-placeholder leaf: the array stays an array (§4.6)
    )
    assert (reply.status, reply.json()) == (200, PARSED)  # exposed {object, mapping: $.}


@sample(RECIPE)
async def test_recipe_mcp_parses_ingredients(served: Served, fake: FakeUpstream) -> None:
    fake.route("POST", "/zestful/parseIngredients", json=PARSED)
    schema = (await list_tools(served))["parse-recipe-ingredients"].input_schema
    assert set(schema["properties"]) == {"ingredients"}  # derived from `with` (§4.9)
    with fake.capture() as seen:
        result = await call_tool(served, "parse-recipe-ingredients", {"ingredients": "2 cups flour"})
    assert_request(
        seen,
        "POST",
        "/zestful/parseIngredients",
        headers={"X-Api-Key": served.env["ZESTFUL_API_KEY"]},
        body={"ingredients": "2 cups flour"},
    )
    assert not result.is_error and result.structured_content == PARSED


# -- openfeature-capability.yaml: baseUri '' from config, path {key}, header If-None-Match
OPENFEATURE = "openfeature-capability.yaml"
FLAG = {"key": "new-checkout", "value": True, "reason": "TARGETING_MATCH", "variant": "on"}


@sample(OPENFEATURE)
async def test_openfeature_rest_evaluate_one_and_bulk(served: Served, fake: FakeUpstream) -> None:
    auth = bearer(served, "OPENFEATURE_TOKEN")
    context = {"context": {"targetingKey": "user-1", "plan": "pro"}}
    fake.route("POST", "/openfeature/ofrep/v1/evaluate/flags/new-checkout", json=FLAG)
    fake.route("POST", "/openfeature/ofrep/v1/evaluate/flags", json={"flags": [FLAG]})

    with fake.capture() as seen:
        reply = await rest(served, "POST", "/ofrep/v1/evaluate/flags/new-checkout", context)
    assert_request(
        seen, "POST", "/openfeature/ofrep/v1/evaluate/flags/new-checkout", headers=auth, body=context
    )
    assert (reply.status, reply.json()) == (200, FLAG)

    with fake.capture() as seen:
        reply = await rest(served, "POST", "/ofrep/v1/evaluate/flags", context)
    assert_request(seen, "POST", "/openfeature/ofrep/v1/evaluate/flags", headers=auth, body=context)
    assert (reply.status, reply.json()) == (200, {"flags": [FLAG]})


@sample(OPENFEATURE)
async def test_openfeature_mcp_key_and_if_none_match(served: Served, fake: FakeUpstream) -> None:
    auth = bearer(served, "OPENFEATURE_TOKEN")
    fake.route("POST", "/openfeature/ofrep/v1/evaluate/flags/beta/flag", json={**FLAG, "key": "beta/flag"})
    fake.route(
        "POST", "/openfeature/ofrep/v1/evaluate/flags", body=b"", status=304, headers={"ETag": '"e-1"'}
    )

    with fake.capture() as seen:
        result = await call_tool(served, "evaluateflag", {"key": "beta/flag"})
    assert_request(seen, "POST", "/openfeature/ofrep/v1/evaluate/flags/beta%2Fflag", headers=auth)
    assert not result.is_error and result.structured_content == {**FLAG, "key": "beta/flag"}

    with fake.capture() as seen:
        result = await call_tool(served, "evaluateflagsbulk", {"If-None-Match": '"e-1"'})
    assert_request(
        seen, "POST", "/openfeature/ofrep/v1/evaluate/flags", headers={**auth, "If-None-Match": '"e-1"'}
    )
    assert not result.is_error  # 304, empty: success with empty content (§4.10)
    assert result.structured_content is None and text_of(result) == ""


# -- integrations-and-connectors.yaml: {{SNOWFLAKE_ACCOUNT_URL}} base, named outputs, http + stdio MCP
SNOWFLAKE = "integrations-and-connectors.yaml"
INTEGRATIONS = {"data": [{"name": "api-int-1", "enabled": True}, {"name": "api-int-2", "enabled": False}]}


@sample(SNOWFLAKE)
async def test_snowflake_rest_list_and_create(served: Served, fake: FakeUpstream) -> None:
    auth = bearer(served, "SNOWFLAKE_JWT_TOKEN")
    fake.route("GET", "/snowflake-api-integration/api/v2/api-integrations", json=INTEGRATIONS)
    fake.route(
        "POST",
        "/snowflake-catalog-integration/api/v2/catalog-integrations",
        json={"name": "cat-1", "status": "created"},
    )

    with fake.capture() as seen:
        reply = await rest(served, "GET", "/v1/api-integrations")
    assert_request(seen, "GET", "/snowflake-api-integration/api/v2/api-integrations", headers=auth)
    # the first output mapping to a non-null value wins: integrations = $.data (§4.8)
    assert (reply.status, reply.json()) == (200, INTEGRATIONS["data"])

    created = {"name": "cat-1", "catalog_source": "GLUE", "table_format": "ICEBERG"}
    with fake.capture() as seen:
        reply = await rest(served, "POST", "/v1/catalog-integrations", created)
    assert_request(
        seen, "POST", "/snowflake-catalog-integration/api/v2/catalog-integrations", headers=auth, body=created
    )
    assert (reply.status, reply.json()) == (200, "cat-1")  # integrationName = $.name


@sample(SNOWFLAKE)
async def test_snowflake_mcp_list_and_delete(served: Served, fake: FakeUpstream) -> None:
    auth = bearer(served, "SNOWFLAKE_JWT_TOKEN")
    fake.route("GET", "/snowflake-api-integration/api/v2/api-integrations", json=INTEGRATIONS)
    fake.route(
        "DELETE",
        "/snowflake-notification-integration/api/v2/notification-integrations",
        json={"status": "deleted"},
    )

    with fake.capture() as seen:
        result = await call_tool(served, "list-api-integrations", {})
    assert_request(seen, "GET", "/snowflake-api-integration/api/v2/api-integrations", headers=auth)
    assert not result.is_error
    assert result.structured_content is None  # an array is not an object (§4.9)
    assert json.loads(text_of(result)) == INTEGRATIONS["data"]

    with fake.capture() as seen:
        result = await call_tool(served, "delete-notification-integration", {"name": "n-1"})
    # the file's path has no {name}, and input `mapping` is ignored (§6): the name goes nowhere
    assert_request(
        seen, "DELETE", "/snowflake-notification-integration/api/v2/notification-integrations", headers=auth
    )
    assert not result.is_error and text_of(result) == "deleted"


@sample(SNOWFLAKE)
async def test_snowflake_rest_missing_declared_input_sends_nothing(
    served: Served, fake: FakeUpstream
) -> None:
    with fake.capture() as seen:
        reply = await rest(
            served, "POST", "/v1/catalog-integrations", {"name": "cat-1", "catalog_source": "GLUE"}
        )
    assert seen == []
    # 422 when a declared REST input is missing (schema), 400 when the request cannot be built (§4.10)
    assert reply.status in (400, 422) and "table_format" in reply.json()["detail"]


# -- community-pass-and-inclusion.yaml: oauth1, which this host cannot perform
COMMUNITY = "community-pass-and-inclusion.yaml"


@sample(COMMUNITY)
async def test_community_pass_calls_fail_clearly_and_send_nothing(served: Served, fake: FakeUpstream) -> None:
    """Both consumed namespaces use oauth1: every call fails with a message naming it, nothing goes out.

    Passes whether the host refuses the calls (today) or, as §4.7 wants, does not serve the file at all
    (then the load error in the log must name the file and oauth1)."""
    arguments = {"identity": "Amina", "verification": "otp-1", "payment": "10 KES"}
    with fake.capture() as seen:
        replies = [
            await rest(served, "POST", "/v1/identities", {"identity": {"name": "Amina"}}),
            await rest(served, "POST", "/v1/payments", {"payment": {"amount": 10, "currency": "KES"}}),
        ]
        outcomes: list[CallToolResult | MCPError] = []
        for tool in ("create-digital-identity", "verify-digital-identity", "process-community-payment"):
            try:
                outcomes.append(await call_tool(served, tool, arguments))
            except MCPError as exc:
                outcomes.append(exc)
    assert seen == []  # never an unauthenticated request
    log = served.host.log()
    not_served = COMMUNITY in log and "oauth1" in log and " ERROR " in log
    for reply in replies:
        assert reply.headers["Content-Type"].startswith("application/problem+json")
        if reply.status == 404:
            assert not_served
        else:
            assert reply.status >= 400 and "oauth1" in reply.json()["detail"]
    for outcome in outcomes:
        if isinstance(outcome, MCPError):
            assert "Unknown tool" in str(outcome) and not_served
        else:
            assert outcome.is_error and "oauth1" in text_of(outcome)


# -- customer360-context-composition.yaml: flow style, 3 consumes, {{contact_id}} path, no output mapping
C360 = "customer360-context-composition.yaml"
CONTACT = {"id": "901", "properties": {"email": "ada@example.com", "firstname": "Ada"}, "archived": False}


@sample(C360)
async def test_c360_rest_passes_the_upstream_answer_verbatim(served: Served, fake: FakeUpstream) -> None:
    fake.route(
        "GET",
        "/hubspot/crm/v3/objects/contacts/901",
        json=CONTACT,
        content_type="application/hal+json; charset=utf-8",
    )
    with fake.capture() as seen:
        reply = await rest(served, "GET", "/customers/901/360")
    assert_request(
        seen, "GET", "/hubspot/crm/v3/objects/contacts/901", headers=bearer(served, "HUBSPOT_TOKEN")
    )
    # no outputParameters: status, content type and body as the upstream sent them (§4.8)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/hal+json; charset=utf-8"
    assert reply.json() == CONTACT


@sample(C360)
async def test_c360_mcp_contact_and_missing_contact(served: Served, fake: FakeUpstream) -> None:
    fake.route("GET", "/hubspot/crm/v3/objects/contacts/902", json={**CONTACT, "id": "902"})
    with fake.capture() as seen:
        result = await call_tool(served, "get-customer-360", {"contact_id": "902"})
    assert_request(
        seen, "GET", "/hubspot/crm/v3/objects/contacts/902", headers=bearer(served, "HUBSPOT_TOKEN")
    )
    assert not result.is_error and result.structured_content == {**CONTACT, "id": "902"}

    with fake.capture() as seen:
        result = await call_tool(served, "get-customer-360", {})
    assert result.is_error and "contact_id" in text_of(result)
    assert seen == []
