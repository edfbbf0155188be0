"""Orchestration in capability files: ``steps``, ``aggregates`` with ``ref``, and ``forward`` (issue 11).

Built from the reference engine's own fixtures (``../shared/naftiko-reference``: ``aggregates/*``,
``mcp/mcp-step-with-namespace-capability.yaml``, ``http/http-forward-value-capability.yaml`` and the
tutorial's steps 7, 8, 10 and 11) and the assertions of its Java tests (OperationStepExecutor*,
Aggregate*, StepWithNamespace*, ForwardHeaderIntegrationTest, StepOutputMappingTest). The host is built
in process and served over REST and MCP; a FakeUpstream answers what the Java tests' mocks (and the
tutorial's Microcks examples) answer, and every step's upstream request is asserted.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from host.naftiko import load_capability
from host.testing import FakeResponse, FakeUpstream, InProcessHost, RecordedRequest, serve_in_process

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "naftiko-reference"
RESOURCES = REFERENCE / "src" / "test" / "resources"
TUTORIAL = REFERENCE / "src" / "main" / "resources" / "tutorial"

pytestmark = pytest.mark.skipif(
    not REFERENCE.is_dir(), reason="the reference engine's tests are not at ../shared/naftiko-reference"
)

MCP_TOKEN = "sk-mcp-YYYYYYYYYYYY"  # the tutorial's shared/secrets.yaml
REGISTRY_TOKEN = "dummy-token"

# The tutorial's Microcks examples (.github/microcks/naftiko-shipyard-maritime-registry-api.yaml).
SHIPS = [
    {
        "imo_number": "IMO-9321483",
        "vessel_name": "Northern Star",
        "vessel_type": "cargo",
        "flag_code": "NO",
        "operational_status": "active",
    },
    {
        "imo_number": "IMO-9456781",
        "vessel_name": "Pacific Dawn",
        "vessel_type": "tanker",
        "flag_code": "SG",
        "operational_status": "maintenance",
    },
]
SHIP = {
    **SHIPS[0],
    "year_built": 2015,
    "gross_tonnage": 42000,
    "dimensions": {"length_overall": 229, "beam": 32, "draft": 12.5},
    "assignedCrew": ["CREW-001", "CREW-003"],
}
CREW = [
    {"crewId": "CREW-001", "fullName": "Erik Lindström", "role": "captain", "certifications": ["GMDSS"]},
    {"crewId": "CREW-002", "fullName": "Maria Santos", "role": "first_officer", "certifications": []},
    {"crewId": "CREW-003", "fullName": "Aiko Tanaka", "role": "cook", "certifications": ["STCW-VI/3"]},
    {"crewId": "CREW-004", "fullName": "Hans Mueller", "role": "engineer", "certifications": []},
]
VOYAGE = {
    "voyageId": "VOY-2026-042",
    "shipImo": "IMO-9321483",
    "departurePort": "Oslo",
    "arrivalPort": "Singapore",
    "departureDate": "2026-04-10T08:00:00Z",
    "arrivalDate": "2026-05-02T14:00:00Z",
    "crewIds": ["CREW-001", "CREW-003"],
    "cargoIds": ["CARGO-2024-0451"],
    "status": "planned",
}
CARGO = [
    {
        "cargoId": "CARGO-2024-0451",
        "type": "container",
        "description": "Electronics components",
        "weight": 12.5,
        "hazardous": False,
    },
    {
        "cargoId": "CARGO-2024-0452",
        "type": "bulk",
        "description": "Iron ore samples",
        "weight": 85.0,
        "hazardous": False,
    },
]
SHIP_WITH_CREW = {
    "imo": "IMO-9321483",
    "name": "Northern Star",
    "type": "cargo",
    "flag": "NO",
    "status": "active",
    "yearBuilt": 2015,
    "tonnage": 42000,
    "length": 229,
    "crew": [
        {"fullName": "Erik Lindström", "role": "captain"},
        {"fullName": "Aiko Tanaka", "role": "cook"},
    ],
}
SECRETS = {  # the tutorial binds these from shared/secrets.yaml, else from the environment
    "registry-bearer-token": REGISTRY_TOKEN,
    "registry-api-version": "1.0.0-alpha2",
    "dockyard-api-key": "dummy-dockyard-key",
    "mcp-server-token": MCP_TOKEN,
}


@asynccontextmanager
async def serving(
    files: list[Path], consumes: Mapping[str, Mapping[str, Any]], environ: Mapping[str, str] | None = None
) -> AsyncIterator[InProcessHost]:
    """The capability files built as ``host serve`` builds them, both apps served on loopback ports."""
    config = {"consumes": consumes, "capabilities": [{"path": str(path)} for path in files]}
    async with serve_in_process(config, environ, discover=False) as served:
        yield served


@asynccontextmanager
async def mcp_client(url: str, token: str | None = None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


def _structured(result: Any) -> Any:
    """A tool result's value: its JSON text, or the text itself when the value is a string."""
    assert not result.is_error, result.content
    text = result.content[0].text
    try:
        return json.loads(text)
    except ValueError:
        return text


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


def _registry(fake: FakeUpstream, prefix: str = "/registry") -> None:
    """The maritime registry's mock answers (unknown ids get the mock's 404)."""

    def ship(request: RecordedRequest) -> FakeResponse:
        found = [s for s in (SHIP,) if s["imo_number"] == request.path_params["imo"]]
        if not found:
            return FakeResponse.of_json({"error": "not_found", "message": "Ship not found"}, 404)
        return FakeResponse.of_json(found[0])

    def voyage(request: RecordedRequest) -> FakeResponse:
        if request.path_params["voyage"] != VOYAGE["voyageId"]:
            return FakeResponse.of_json({"error": "not_found", "message": "Voyage not found"}, 404)
        return FakeResponse.of_json(VOYAGE)

    fake.route("GET", f"{prefix}/ships", json=SHIPS)
    fake.route("GET", f"{prefix}/ships/{{imo}}", handler=ship)
    fake.route("GET", f"{prefix}/crew", json=CREW)
    fake.route("GET", f"{prefix}/cargo", json=CARGO)
    fake.route("GET", f"{prefix}/voyages/{{voyage}}", handler=voyage)


def _tutorial(tmp_path: Path, step: str) -> Path:
    """A copy of the tutorial: its files import ``./shared/*`` next to them."""
    shutil.copytree(TUTORIAL / "shared", tmp_path / "shared", dirs_exist_ok=True)
    target = tmp_path / step
    shutil.copy(TUTORIAL / step, target)
    return target


def serving_tutorial(
    upstream: FakeUpstream, tmp_path: Path, step: str
) -> AbstractAsyncContextManager[InProcessHost]:
    """A tutorial step served against the mock registry (the legacy API mocked)."""
    _registry(upstream)
    consumes = {"registry": {"base_uri": f"{upstream.url}/registry"}, "legacy": {"mock": True}}
    return serving([_tutorial(tmp_path, step)], consumes, SECRETS)


def _paths(fake: FakeUpstream) -> list[str]:
    return [f"{r.method} {r.path}" for r in fake.requests]


# --- steps: MCP and REST (tutorial step 7, OperationStepExecutor*, StepOutputMappingTest) -----------


async def test_step7_mcp_orchestrated_tool_calls_each_step_and_assembles_the_mappings(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with (
        serving_tutorial(upstream, tmp_path, "step-7-shipyard-orchestrated-lookup.yml") as served,
        mcp_client(served.mcp_url, MCP_TOKEN) as client,
    ):
        tools = (await client.list_tools()).tools
        assert [t.name for t in tools] == [
            "list-ships",
            "get-ship",
            "list-legacy-vessels",
            "create-voyage",
            "get-ship-with-crew",
        ]
        schema = tools[4].input_schema
        assert schema["properties"]["imo"]["type"] == "string" and "imo" in schema["required"]
        result = await client.call_tool("get-ship-with-crew", {"imo": "IMO-9321483"})
        # Bound variables win in every step, as in single calls: a caller cannot replace them.
        spoofed = {"imo": "IMO-9321483", "REGISTRY_VERSION": "evil", "Registry-Version": "evil"}
        again = await client.call_tool("get-ship-with-crew", spoofed)
    assert _structured(result) == SHIP_WITH_CREW == _structured(again)
    assert _paths(upstream) == ["GET /registry/ships/IMO-9321483", "GET /registry/crew"] * 2
    for request in upstream.requests:  # every step carries the namespace's auth and parameters
        assert request.headers["Authorization"] == f"Bearer {REGISTRY_TOKEN}"
        assert request.headers["Registry-Version"] == "1.0.0-alpha2"


async def test_step7_rest_orchestrated_operation(upstream: FakeUpstream, tmp_path: Path) -> None:
    async with serving_tutorial(upstream, tmp_path, "step-7-shipyard-orchestrated-lookup.yml") as served:
        response = await served.rest.get("/ships/IMO-9321483/crew")
        assert response.status == 200, await response.text()
        assert await response.json() == SHIP_WITH_CREW
    assert _paths(upstream) == ["GET /registry/ships/IMO-9321483", "GET /registry/crew"]


def test_step7_list_items_and_mappings_load_without_misleading_reasons() -> None:
    """`items` given as a list of named fields (orchestrated outputs) is not an "invalid" item."""
    report = load_capability(TUTORIAL / "step-7-shipyard-orchestrated-lookup.yml")
    assert not report.errors, report.errors
    assert not [w for w in report.warnings if "invalid" in w or "steps" in w], report.warnings
    assert {t.name for t in report.tools} >= {"get-ship-with-crew"}


def test_step8_orchestrated_tool_is_served() -> None:
    report = load_capability(TUTORIAL / "step-8-shipyard-skill-groups.yml")
    assert not report.errors, report.errors
    assert "get-ship-with-crew" in {t.name for t in report.tools}
    assert not [w for w in report.warnings if "invalid" in w or "steps" in w], report.warnings


INLINE_WORKFLOW = """\
naftiko: "1.0.0-alpha2"
capability:
  exposes:
    - type: rest
      port: 0
      namespace: steps
      resources:
        - path: /workflow
          operations:
            - method: GET
              name: workflow
              inputParameters:
                - {name: targetEmail, in: query, type: string, description: e-mail}
                - {name: requestingUserId, in: query, type: string, description: user}
              steps:
                - {type: call, name: fetch-users, call: testns.list-users}
                - type: lookup
                  name: find-user
                  index: fetch-users
                  match: email
                  lookupValue: "{{targetEmail}}"
                  outputParameters: [id, email]
                - type: call
                  name: fetch-profile
                  call: testns.fetch-profile
                  with: {userId: "{{requestingUserId}}"}
                - type: call
                  name: echo-region
                  call: testns.echo-region
                  with: {region: "{{fetch-profile.region}}", user: "{{find-user.id}}"}
  consumes:
    - type: http
      namespace: testns
      baseUri: http://localhost:8080/v1
      resources:
        - {path: /users, name: users, operations: [{method: GET, name: list-users}]}
        - path: "/profiles/{{userId}}"
          name: profiles
          operations:
            - method: GET
              name: fetch-profile
              outputParameters: [{name: region, type: string, mapping: $.profile.region}]
        - path: "/echo/{{region}}"
          name: echo
          operations:
            - method: GET
              name: echo-region
              inputParameters: [{name: user, in: query}]
"""


async def test_steps_read_earlier_outputs_and_lookup_results(upstream: FakeUpstream, tmp_path: Path) -> None:
    """OperationStepExecutorIntegrationTest: a lookup, a projected output, then `{{step.field}}`."""
    upstream.route("GET", "/v1/users", json=[{"id": "u-1", "email": "a@x"}, {"id": "u-2", "email": "b@x"}])
    upstream.route("GET", "/v1/profiles/u-1", json={"profile": {"region": "eu"}})
    upstream.route("GET", "/v1/echo/eu", json={"ok": True})
    capability = tmp_path / "workflow.yaml"
    capability.write_text(INLINE_WORKFLOW)
    async with serving([capability], {"testns": {"base_uri": f"{upstream.url}/v1"}}) as served:
        # A caller cannot replace what the file reads from a step's output.
        spoofed = {"fetch-profile.region": "evil", "find-user.id": "u-evil", "fetch-profile": "x"}
        query = {"targetEmail": "b@x", "requestingUserId": "u-1", **spoofed}
        response = await served.rest.get("/workflow", params=query)
        assert response.status == 200, await response.text()
        assert await response.json() == {"ok": True}  # no mappings: the last step's output
    assert _paths(upstream) == ["GET /v1/users", "GET /v1/profiles/u-1", "GET /v1/echo/eu"]
    assert upstream.requests[-1].query["user"] == "u-2"


def test_a_lookup_of_a_step_that_does_not_exist_disables_the_operation(tmp_path: Path) -> None:
    capability = tmp_path / "bad.yaml"
    capability.write_text(INLINE_WORKFLOW.replace("index: fetch-users", "index: does-not-exist"))
    report = load_capability(capability)
    assert report.status == "ERROR"
    assert any("does-not-exist" in w and "lookup" in w for w in report.warnings), report.warnings


def test_script_steps_are_a_load_error_naming_the_step() -> None:
    report = load_capability(REFERENCE / "src/main/resources/schemas/examples/script-step.yml")
    assert report.status == "ERROR"
    assert any("script step" in e and "filter-active" in e and "javascript" in e for e in report.errors)


# --- partial failure: which step failed, what the caller sees ----------------------------------------


async def test_a_failing_first_step_stops_the_run_with_its_status_and_name(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with serving_tutorial(upstream, tmp_path, "step-7-shipyard-orchestrated-lookup.yml") as served:
        response = await served.rest.get("/ships/IMO-0000000/crew")
        assert response.status == 404
        assert response.content_type == "application/problem+json"
        problem = await response.json()
        assert problem["failed_step"] == "get-ship" and problem["completed_steps"] == []
        assert problem["upstream_status"] == 404 and "Ship not found" in problem["detail"]
        async with mcp_client(served.mcp_url, MCP_TOKEN) as client:
            result = await client.call_tool("get-ship-with-crew", {"imo": "IMO-0000000"})
        assert result.is_error
        assert "get-ship" in result.content[0].text and "404" in result.content[0].text
    assert "GET /registry/crew" not in _paths(upstream), "nothing after the failing step is sent"
    assert REGISTRY_TOKEN not in json.dumps(problem) and REGISTRY_TOKEN not in result.content[0].text


async def test_a_failing_later_step_names_the_steps_already_done(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    _registry(upstream)
    upstream.route("GET", "/registry/crew", status=500, json={"message": "database down"})
    step7 = _tutorial(tmp_path, "step-7-shipyard-orchestrated-lookup.yml")
    consumes = {
        "registry": {"base_uri": f"{upstream.url}/registry", "retries": 0},
        "legacy": {"mock": True},
    }
    async with serving([step7], consumes, SECRETS) as served:
        response = await served.rest.get("/ships/IMO-9321483/crew")
        assert response.status == 502
        problem = await response.json()
    assert problem["failed_step"] == "list-crew"
    assert problem["completed_steps"] == ["get-ship"]
    assert "list-crew" in problem["detail"] and "get-ship" in problem["detail"]


async def test_each_step_has_the_upstream_timeout_and_feeds_its_circuit_breaker(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    _registry(upstream)
    upstream.route("GET", "/registry/ships/{imo}", json=SHIP, delay=2.0)
    step7 = _tutorial(tmp_path, "step-7-shipyard-orchestrated-lookup.yml")
    consumes = {
        "registry": {
            "base_uri": f"{upstream.url}/registry",
            "timeout": 0.3,
            "retries": 0,
            "circuit_failures": 2,
            "circuit_reset": 60,
        },
        "legacy": {"mock": True},
    }
    async with serving([step7], consumes, SECRETS) as served:
        for _ in range(2):
            response = await served.rest.get("/ships/IMO-9321483/crew")
            assert response.status == 504, await response.text()
            assert (await response.json())["failed_step"] == "get-ship"
        sent = len(upstream.requests)
        response = await served.rest.get("/ships/IMO-9321483/crew")
        assert response.status == 503, await response.text()
        problem = await response.json()
    assert problem["failed_step"] == "get-ship" and "circuit" in problem["detail"].lower()
    assert len(upstream.requests) == sent, "nothing was sent while the circuit is open"
    assert "GET /registry/crew" not in _paths(upstream)


async def test_step_arguments_are_validated_before_anything_is_sent(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with serving_tutorial(upstream, tmp_path, "step-7-shipyard-orchestrated-lookup.yml") as served:
        async with mcp_client(served.mcp_url, MCP_TOKEN) as client:
            result = await client.call_tool("get-ship-with-crew", {"imo": 42})
            assert result.is_error and "imo" in result.content[0].text
        async with mcp_client(served.mcp_url) as anonymous:  # the adapter's bearer token still applies
            refused = await anonymous.call_tool("get-ship-with-crew", {"imo": "IMO-9321483"})
            assert refused.is_error
    assert upstream.requests == []


# --- aggregates and ref (Aggregate*, tutorial steps 10 and 11) -------------------------------------------


async def test_mcp_step_with_namespace_qualified_reference(upstream: FakeUpstream) -> None:
    """StepWithNamespaceIntegrationTest: `shipyard-tools.voyageId` in a step's `with` is the argument."""
    _registry(upstream, prefix="")
    capability = RESOURCES / "mcp" / "mcp-step-with-namespace-capability.yaml"
    async with (
        serving([capability], {"registry": {"base_uri": upstream.url}}) as served,
        mcp_client(served.mcp_url) as client,
    ):
        result = await client.call_tool("get-voyage-manifest", {"voyageId": "VOY-2026-042"})
    assert _structured(result) == {"voyageId": "VOY-2026-042"}
    assert _paths(upstream) == ["GET /voyages/VOY-2026-042"]


async def test_aggregate_function_steps_resolve_the_aggregate_namespace(upstream: FakeUpstream) -> None:
    """AggregateStepNamespaceIntegrationTest: `shipyard.voyage-id` in a function step's `with`."""
    _registry(upstream, prefix="")
    capability = RESOURCES / "aggregates" / "aggregate-step-with-namespace.yaml"
    async with (
        serving([capability], {"registry": {"base_uri": upstream.url}}) as served,
        mcp_client(served.mcp_url) as client,
    ):
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert "voyage-id" in tools["get-voyage-manifest"].input_schema["properties"]
        result = await client.call_tool("get-voyage-manifest", {"voyage-id": "VOY-2026-042"})
    assert _structured(result) == {"voyage-id": "VOY-2026-042"}
    assert _paths(upstream) == ["GET /voyages/VOY-2026-042"]


async def test_aggregate_ref_inherits_and_derives_hints(upstream: FakeUpstream) -> None:
    """AggregateIntegrationTest on aggregate-basic.yaml, over MCP and REST."""
    upstream.route("GET", "/v1/forecast", json={"forecast": "sunny"})
    capability = RESOURCES / "aggregates" / "aggregate-basic.yaml"
    async with (
        serving([capability], {"weather-api": {"base_uri": f"{upstream.url}/v1"}}) as served,
        mcp_client(served.mcp_url) as client,
    ):
        tools = (await client.list_tools()).tools
        assert [t.name for t in tools] == ["get-forecast", "get-forecast-inherited"]
        assert tools[1].description == "Fetch current weather forecast for a location."
        assert tools[0].input_schema["properties"]["location"]["type"] == "string"
        hints = tools[0].annotations
        assert hints is not None
        assert (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint) == (True, False, True)
        assert hints.open_world_hint is None
        assert _structured(await client.call_tool("get-forecast", {"location": "Oslo"})) == "sunny"
        for method in ("GET", "POST"):  # the POST operation inherits name and logic
            response = await served.rest.request(method, "/forecast/Oslo")
            assert response.status == 200, await response.text()
            assert await response.json() == "sunny"
    assert _paths(upstream) == ["GET /v1/forecast"] * 3


async def test_aggregate_hints_merge_with_explicit_hints(upstream: FakeUpstream) -> None:
    upstream.route("*", "*", json={"items": "all"})
    capability = RESOURCES / "aggregates" / "aggregate-hints-override.yaml"
    async with (
        serving([capability], {"mock-api": {"base_uri": f"{upstream.url}/v1"}}) as served,
        mcp_client(served.mcp_url) as client,
    ):
        tools = {t.name: t.annotations for t in (await client.list_tools()).tools}
        result = await client.call_tool("delete-item", {"item-id": "42"})
        assert not result.is_error, result.content
    read, opened, delete = tools["read-items"], tools["read-items-open"], tools["delete-item"]
    assert read is not None and opened is not None and delete is not None
    assert (read.read_only_hint, read.destructive_hint, read.idempotent_hint, read.open_world_hint) == (
        True,
        False,
        True,
        None,
    )
    assert (opened.read_only_hint, opened.destructive_hint, opened.open_world_hint) == (True, False, True)
    assert (
        delete.read_only_hint,
        delete.destructive_hint,
        delete.idempotent_hint,
        delete.open_world_hint,
    ) == (
        False,
        True,
        True,
        False,
    )
    plain = tools["plain-tool"]
    assert plain is None or (plain.read_only_hint, plain.idempotent_hint) == (None, None)
    assert _paths(upstream) == ["DELETE /v1/items"]


def test_an_unknown_ref_disables_the_tool_naming_it() -> None:
    report = load_capability(RESOURCES / "aggregates" / "aggregate-invalid-ref.yaml")
    assert report.status == "ERROR"  # its only tool is disabled: nothing to serve
    assert any("unknown.nonexistent" in w for w in report.warnings), report.warnings


async def test_aggregate_mock_is_the_same_payload_over_mcp_and_rest() -> None:
    capability = RESOURCES / "aggregates" / "aggregate-shared-mock.yaml"
    async with serving([capability], {}) as served, mcp_client(served.mcp_url) as client:
        mcp_payload = _structured(await client.call_tool("hello", {"name": "Nina"}))
        response = await served.rest.get("/hello", params={"name": "Nina"})
        assert response.status == 200, await response.text()
        assert await response.json() == mcp_payload
    assert mcp_payload == {"message": "Hello, Nina!", "source": "aggregate-mock"}


async def test_step10_ref_to_an_orchestrated_function_over_rest_and_mcp(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with serving_tutorial(upstream, tmp_path, "step-10-shipyard-rest-adapter.yml") as served:
        response = await served.rest.get("/ships/IMO-9321483/crew")
        assert response.status == 200, await response.text()
        assert await response.json() == SHIP_WITH_CREW
        async with mcp_client(served.mcp_url, MCP_TOKEN) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            hints = tools["get-ship-with-crew"].annotations
            assert hints is not None and (hints.read_only_hint, hints.idempotent_hint) == (True, True)
            assert tools["get-ship-with-crew"].description == "Get ship details with resolved crew names"
            result = await client.call_tool("get-ship-with-crew", {"imo": "IMO-9321483"})
        assert _structured(result) == SHIP_WITH_CREW
    assert _paths(upstream) == ["GET /registry/ships/IMO-9321483", "GET /registry/crew"] * 2


async def test_step11_voyage_manifest_lookups_projections_and_nested_mappings(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with (
        serving_tutorial(upstream, tmp_path, "step-11-shipyard-fleet-manifest.yml") as served,
        mcp_client(served.mcp_url, MCP_TOKEN) as client,
    ):
        tools = (await client.list_tools()).tools
        assert [t.name for t in tools][4:] == ["get-ship-with-crew", "get-voyage-manifest"]
        assert "voyageId" in tools[5].input_schema["required"]
        manifest = _structured(await client.call_tool("get-voyage-manifest", {"voyageId": "VOY-2026-042"}))
    assert manifest == {
        "voyageId": "VOY-2026-042",
        "status": "planned",
        "route": {"from": "Oslo", "to": "Singapore"},
        "ship": {
            "name": "Northern Star",
            "type": "cargo",
            "flag": "NO",
        },  # matched on the projected imo-number
        "crew": SHIP_WITH_CREW["crew"],
        "cargo": [
            {"type": "container", "description": "Electronics components", "weight": 12.5, "hazardous": False}
        ],
    }
    assert _paths(upstream) == [
        "GET /registry/voyages/VOY-2026-042",
        "GET /registry/ships",
        "GET /registry/crew",
        "GET /registry/cargo",
    ]


# --- forward (ForwardHeaderIntegrationTest, ForwardValueFieldTest) ---------------------------------------

NOTION = """\
naftiko: "1.0.0-alpha2"
capability:
  exposes:
    - type: rest
      port: 0
      namespace: sample
      resources:
        - path: "/notion/{{path}}"
          forward:
            targetNamespace: notion
            trustedHeaders: [Notion-Version, X-Trace, Authorization]
  consumes:
    - type: http
      namespace: notion
      baseUri: http://localhost:8080/v1
      inputParameters:
        - {name: Notion-Version, in: header, value: "2025-09-03"}
"""


async def test_forward_sets_the_namespace_headers_and_only_trusted_caller_headers(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.route("*", "/v1/pages", json={"ok": True})
    upstream.route("GET", "/v1/missing", status=404, json={"message": "no such page"})
    capability = tmp_path / "notion.yaml"
    capability.write_text(NOTION)
    report = load_capability(capability)
    assert report.status in {"OK", "WARN"} and not [w for w in report.warnings if "no operations" in w]
    assert any("Authorization" in w and "never forwarded" in w for w in report.warnings)
    async with serving([capability], {"notion": {"base_uri": f"{upstream.url}/v1"}}) as served:
        headers = {"Notion-Version": "1999-01-01", "X-Trace": "t-1", "Authorization": "Bearer caller-secret"}
        response = await served.rest.get("/notion/pages", params={"page_size": "10"}, headers=headers)
        assert response.status == 200, await response.text()
        assert await response.json() == {"ok": True}
        response = await served.rest.post("/notion/pages", json={"parent": {"id": "p"}}, headers=headers)
        assert response.status == 200, await response.text()
        missing = await served.rest.get("/notion/missing")
        assert missing.status == 404 and await missing.json() == {"message": "no such page"}
        escape = await served.rest.get("/notion/..")
        assert escape.status in {400, 404, 422}
    get, post = upstream.requests[0], upstream.requests[1]
    assert (get.method, get.path, dict(get.query)) == ("GET", "/v1/pages", {"page_size": "10"})
    for request in (get, post):
        assert request.headers["Notion-Version"] == "2025-09-03", "the namespace's value wins"
        assert request.headers["X-Trace"] == "t-1"
        assert "Authorization" not in request.headers
    assert post.method == "POST" and post.json() == {"parent": {"id": "p"}} and not dict(post.query)
    assert len(upstream.requests) == 3, "a path that leaves the base URI is never sent"


async def test_forward_value_fixture_sends_its_value_headers(upstream: FakeUpstream) -> None:
    upstream.route("*", "*", json={"ok": True})
    capability = RESOURCES / "http" / "http-forward-value-capability.yaml"
    report = load_capability(capability)
    assert report.status == "OK", report.warnings
    async with serving([capability], {"external": {"base_uri": f"{upstream.url}/v1"}}) as served:
        response = await served.rest.get("/forward/test")
        assert response.status == 200, await response.text()
    request = upstream.requests[0]
    assert request.path == "/v1/test"
    assert request.headers["X-API-Version"] == "2026-03-03"
    assert request.headers["X-API-Key"] == "secret-key-123"


MANIFEST_RESOURCE = """\
naftiko: "1.0.0-alpha2"
capability:
  consumes:
    - type: http
      namespace: registry
      baseUri: http://localhost:19999
      resources:
        - name: voyage
          path: "/voyages/{{voyageId}}"
          operations: [{name: get-voyage, method: GET, inputParameters: [{name: voyageId, in: path}]}]
        - {name: crew, path: /crew, operations: [{name: list-crew, method: GET}]}
  exposes:
    - type: mcp
      port: 0
      namespace: shipyard-docs
      resources:
        - name: voyage-crew
          label: Voyage crew
          description: The crew of a voyage
          uri: "voyages://{voyageId}/crew"
          steps:
            - {name: get-voyage, type: call, call: registry.get-voyage, with: {voyageId: "{{voyageId}}"}}
            - {name: list-crew, type: call, call: registry.list-crew}
            - type: lookup
              name: crew
              index: list-crew
              match: crewId
              lookupValue: $.get-voyage.crewIds
              outputParameters: [fullName]
          mappings:
            - {targetName: voyage, value: $.get-voyage.voyageId}
            - {targetName: crew, value: $.crew}
"""


async def test_mcp_resource_with_steps(upstream: FakeUpstream, tmp_path: Path) -> None:
    """The spec allows `steps` on MCP resources too: the resource reads the assembled result."""
    _registry(upstream, prefix="")
    capability = tmp_path / "docs.yaml"
    capability.write_text(MANIFEST_RESOURCE)
    async with (
        serving([capability], {"registry": {"base_uri": upstream.url}}) as served,
        mcp_client(served.mcp_url) as client,
    ):
        result = await client.read_resource("voyages://VOY-2026-042/crew")
    assert json.loads(result.contents[0].text) == {
        "voyage": "VOY-2026-042",
        "crew": [{"fullName": "Erik Lindström"}, {"fullName": "Aiko Tanaka"}],
    }
    assert _paths(upstream) == ["GET /voyages/VOY-2026-042", "GET /crew"]
