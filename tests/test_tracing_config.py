"""Tracing's settings (issue 12 part 2): host.toml's [observability], the OTEL_* variables, a capability
file's own observability block, B3, sampling, start-up errors, and no SDK at all while tracing is off.

The hosts are built in this process (``serve_in_process``) against a fake upstream; spans reach a real
OTLP/HTTP receiver when the host stops (the batch processor is flushed at shutdown).
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from host.config import load_config
from host.errors import StartupError
from host.naftiko import load_capability
from host.testing import FakeUpstream, serve_in_process
from tests.conftest import ROOT
from tests.otlp_receiver import OtlpReceiver

CAPABILITY = """\
naftiko: 1.0.0-alpha2
info: {{label: {name}, description: traced items}}
capability:
  consumes:
    - type: http
      namespace: {name}-api
      baseUri: {base}
      resources:
        - name: items
          path: /{name}/items
          operations:
            - {{name: list-items, method: GET}}
  exposes:
    - type: rest
      namespace: {name}-rest
      resources:
        - path: /{name}/items
          operations:
            - {{method: GET, call: {name}-api.list-items}}
    - type: mcp
      namespace: {name}-mcp
      tools:
        - {{name: {name}-items, description: List the items, call: {name}-api.list-items}}
{control}"""

CONTROL = """\
    - type: control
      observability:
{block}
"""


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        fake.route("GET", "*", json={"items": []})
        yield fake


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


def capability(folder: Path, name: str, base: str, observability: str | None = None) -> dict[str, Any]:
    control = "" if observability is None else CONTROL.format(block=textwrap.indent(observability, " " * 8))
    file = folder / f"{name}.yaml"
    file.write_text(CAPABILITY.format(name=name, base=base, control=control))
    return {"path": str(file)}


def environment(receiver: OtlpReceiver, **extra: str) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, **extra}


async def call_both(served: Any, name: str, headers: dict[str, str]) -> None:
    """One REST call and one MCP tools/call of capability ``name``."""
    assert (await served.rest.get(f"/{name}/items", headers=headers)).status == 200
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": f"{name}-items"}}
    answer = await served.mcp.post("/mcp", json=message, headers={"Accept": "application/json", **headers})
    assert (await answer.json())["result"].get("isError") is not True


def traceparent(sampled: bool = True) -> tuple[str, str]:
    trace_id = secrets.token_hex(16)
    return f"00-{trace_id}-{secrets.token_hex(8)}-{'01' if sampled else '00'}", trace_id


async def test_b3_is_read_inbound_and_written_upstream(
    tmp_path: Path, upstream: FakeUpstream, receiver: OtlpReceiver
) -> None:
    config = {
        "capabilities": [capability(tmp_path, "alpha", upstream.url)],
        "observability": {"enabled": True, "propagators": ["tracecontext", "b3"]},
    }
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    with upstream.capture() as requests:
        async with serve_in_process(config, environment(receiver), discover=False) as served:
            await call_both(served, "alpha", {"b3": f"{trace_id}-{span_id}-1"})
    spans = receiver.trace(trace_id, 4)
    servers = [span for span in spans if span.kind == "server"]
    assert {span.parent_span_id for span in servers} == {span_id}
    for request in requests:  # both formats go upstream, with the same trace
        assert request.headers["b3"].startswith(f"{trace_id}-")
        assert request.headers["traceparent"].split("-")[1] == trace_id


async def test_sampling_zero_exports_nothing_but_still_propagates(
    tmp_path: Path, upstream: FakeUpstream, receiver: OtlpReceiver
) -> None:
    config = {
        "capabilities": [capability(tmp_path, "alpha", upstream.url)],
        "observability": {"enabled": True, "sampling": 0},
    }
    unsampled, trace_id = traceparent(sampled=False)
    with upstream.capture() as requests:
        async with serve_in_process(config, environment(receiver), discover=False) as served:
            await call_both(served, "alpha", {})
            await call_both(served, "alpha", {"traceparent": unsampled})
    assert receiver.spans == []
    assert len(requests) == 4
    # Not sampled, and said so (bit 0 of the flags; bit 1 is Level 2's "random trace id").
    assert {int(request.headers["traceparent"][-2:], 16) & 1 for request in requests} == {0}
    assert requests[-1].headers["traceparent"].split("-")[1] == trace_id


async def test_the_environment_wins_over_host_toml(
    tmp_path: Path, upstream: FakeUpstream, receiver: OtlpReceiver
) -> None:
    config = {
        "capabilities": [capability(tmp_path, "alpha", upstream.url)],
        "observability": {"enabled": True, "sampling": 1.0},
    }
    environ = environment(receiver, OTEL_TRACES_SAMPLER="always_off", OTEL_PROPAGATORS="b3multi")
    with upstream.capture() as requests:
        async with serve_in_process(config, environ, discover=False) as served:
            await call_both(served, "alpha", {})
    assert receiver.spans == []
    assert all(
        "X-B3-TraceId" in request.headers and "traceparent" not in request.headers for request in requests
    )


async def test_a_capability_files_own_observability_applies_to_its_items(
    tmp_path: Path, upstream: FakeUpstream, receiver: OtlpReceiver
) -> None:
    config = {
        "capabilities": [
            capability(tmp_path, "quiet", upstream.url, "traces:\n  sampling: 0\n  propagation: b3\n"),
            capability(tmp_path, "off", upstream.url, "enabled: false\n"),
            capability(tmp_path, "loud", upstream.url),
        ],
        "observability": {"enabled": True},
    }
    sampled, sampled_trace = traceparent()
    with upstream.capture() as requests:
        async with serve_in_process(config, environment(receiver), discover=False) as served:
            for name in ("quiet", "off", "loud"):
                await call_both(served, name, {})
            await call_both(
                served, "off", {"traceparent": sampled}
            )  # off means off, whatever the caller says
    assert {span.name for span in receiver.spans if span.kind == "server"} == {
        "GET /loud/items",
        "tools/call loud-items",
    }
    assert sampled_trace not in {span.trace_id for span in receiver.spans}
    by_path = {request.path.split("/")[1]: request.headers for request in requests}
    assert "X-B3-TraceId" in by_path["quiet"] and "traceparent" not in by_path["quiet"]  # its propagation
    assert "traceparent" in by_path["loud"] and "X-B3-TraceId" not in by_path["loud"]


async def test_a_file_sampling_of_one_keeps_its_items_when_the_host_samples_none(
    tmp_path: Path, upstream: FakeUpstream, receiver: OtlpReceiver
) -> None:
    config = {
        "capabilities": [
            capability(tmp_path, "kept", upstream.url, "traces:\n  sampling: 1.0\n"),
            capability(tmp_path, "other", upstream.url),
        ],
        "observability": {"enabled": True, "sampling": 0.0},
    }
    async with serve_in_process(config, environment(receiver), discover=False) as served:
        await call_both(served, "kept", {})
        await call_both(served, "other", {})
    names = {span.name for span in receiver.spans}
    assert names == {"GET /kept/items", "tools/call kept-items", "GET"}  # and the two upstream calls


def test_the_control_report_says_what_a_files_observability_becomes() -> None:
    reference = ROOT.parent / "shared" / "naftiko-reference" / "src" / "test" / "resources" / "observability"
    if not reference.is_dir():
        pytest.skip("naftiko-reference is absent")
    report = load_capability(reference / "observability-capability.yaml")
    control = {feature: status for feature, status, _ in report.control}
    assert control["observability.traces"] == "mapped"
    assert control["observability.traces.sampling"] == "mapped"
    assert control["observability.traces.propagation"] == "mapped"
    assert control["observability.exporters.otlp"] == "ignored"  # a file does not choose where traces go
    assert report.traces is not None
    assert (report.traces.sampling, report.traces.propagation) == (0.5, "b3")
    disabled = load_capability(reference / "observability-disabled.yaml")
    assert disabled.traces is not None and disabled.traces.enabled is False


@pytest.mark.parametrize(
    ("table", "key", "fix"),
    [
        ("sampling = 1.5", "observability.sampling", "sampling = 0.1"),
        ('sampling = "all"', "observability.sampling", "ratio from 0 to 1"),
        ('propagators = ["jaeger"]', "observability.propagators", '["tracecontext", "b3"]'),
        ('propagators = "b3"', "observability.propagators", "list"),
        ("enabeld = true", "observability.enabeld", "unknown key"),
    ],
)
def test_a_bad_observability_value_is_a_startup_error_naming_file_key_and_fix(
    tmp_path: Path, table: str, key: str, fix: str
) -> None:
    file = tmp_path / "host.toml"
    file.write_text(f"[observability]\n{table}\n")
    with pytest.raises(StartupError) as raised:
        load_config(file)
    message = str(raised.value)
    assert message.startswith(f"{file}: {key}: ") and fix in message


def test_host_serve_exits_2_with_that_message(tmp_path: Path) -> None:
    file = tmp_path / "host.toml"
    file.write_text("[observability]\nenabled = true\nsampling = 2\n")
    result = subprocess.run(
        [sys.executable, "-m", "host", "serve", "--config", str(file)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOST_LOAD_PLUGINS": ""},
        check=False,
    )
    assert result.returncode == 2
    assert f"{file}: observability.sampling: must be a ratio from 0 to 1 (got 2)" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("OTEL_TRACES_SAMPLER", "sometimes", "OTEL_TRACES_SAMPLER: unknown sampler 'sometimes'"),
        ("OTEL_TRACES_SAMPLER_ARG", "lots", "OTEL_TRACES_SAMPLER_ARG: must be a ratio from 0 to 1"),
        ("OTEL_PROPAGATORS", "tracecontext,xray", "OTEL_PROPAGATORS: unknown propagator 'xray'"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", "OTEL_EXPORTER_OTLP_ENDPOINT: must be an http://"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' is not available"),
        ("OTEL_TRACES_EXPORTER", "zipkin", "OTEL_TRACES_EXPORTER: 'zipkin' is not available"),
    ],
)
async def test_a_bad_otel_variable_is_a_startup_error_naming_it(variable: str, value: str, said: str) -> None:
    environ = {variable: value}
    if variable == "OTEL_TRACES_SAMPLER_ARG":
        environ["OTEL_TRACES_SAMPLER"] = "traceidratio"
    with pytest.raises(StartupError, match="environment variable " + said):
        async with serve_in_process({"observability": {"enabled": True}}, environ, discover=False):
            pass


def test_tracing_off_imports_no_opentelemetry_sdk(tmp_path: Path, upstream: FakeUpstream) -> None:
    """Off by default, and free: the host builds and serves a call without loading the SDK."""
    file = capability(tmp_path, "alpha", upstream.url)["path"]
    script = f"""
import asyncio, sys
from host.testing import serve_in_process

async def main() -> None:
    async with serve_in_process({{"capabilities": [{{"path": {file!r}}}]}}, discover=False) as served:
        assert (await served.rest.get("/alpha/items")).status == 200
        message = {{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {{"name": "alpha-items"}}}}
        assert (await served.mcp.post("/mcp", json=message)).status == 200
    sdk = ("opentelemetry.sdk", "opentelemetry.exporter", "opentelemetry.propagators.b3")
    loaded = sorted(name for name in sys.modules if name.startswith(sdk))
    print("LOADED", loaded)

asyncio.run(main())
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout
    assert upstream.requests and "traceparent" not in upstream.requests[-1].headers


# --- the reference's observability integration tests, replayed on the host's semantic conventions ---------

STATIC = """\
naftiko: 1.0.0-alpha2
capability:
  exposes:
    - type: rest
      namespace: test
      resources:
        - path: /orders
          operations:
            - method: GET
              name: list-orders
              outputParameters:
                - {name: status, type: string, value: ok}
  consumes: []
"""
SKILLS = ROOT.parent / "shared" / "naftiko-reference" / "src" / "test" / "resources" / "skill-capability.yaml"


async def test_rest_mock_output_is_one_server_span_continuing_the_callers_trace(
    tmp_path: Path, receiver: OtlpReceiver
) -> None:
    """ObservabilityRestIntegrationTest: one server span (no upstream call), the inbound traceparent
    continued, and a not-found request still traced."""
    file = tmp_path / "static.yaml"
    file.write_text(STATIC)
    config = {"capabilities": [{"path": str(file)}], "observability": {"enabled": True}}
    async with serve_in_process(config, environment(receiver), discover=False) as served:
        headers = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
        assert (await served.rest.get("/orders", headers=headers)).status == 200
        missing, missing_trace = traceparent()
        assert (await served.rest.get("/nowhere", headers={"traceparent": missing})).status == 404
    [span] = receiver.trace("4bf92f3577b34da6a3ce929d0e0e4736", 1)
    assert (span.kind, span.name, span.parent_span_id) == ("server", "GET /orders", "00f067aa0ba902b7")
    assert span.attributes["http.request.method"] == "GET"
    [not_found] = receiver.trace(missing_trace, 1)
    assert not_found.attributes["http.response.status_code"] == 404
    assert not not_found.error  # a 404 is the caller's mistake, not the server's failure


@pytest.mark.skipif(not SKILLS.is_file(), reason="naftiko-reference is absent")
async def test_a_skill_request_is_a_server_span_continuing_the_callers_trace(receiver: OtlpReceiver) -> None:
    """ObservabilitySkillIntegrationTest: the skill routes are REST routes, traced like every other."""
    config = {
        "capabilities": [{"path": str(SKILLS), "resource_dirs": ["/tmp/naftiko-test-skills"]}],
        "observability": {"enabled": True},
    }
    headers = {"traceparent": "00-abcdef1234567890abcdef1234567890-1234567890abcdef-01"}
    async with serve_in_process(config, environment(receiver), discover=False) as served:
        assert (await served.rest.get("/skills/onboarding-guide", headers=headers)).status == 200
    [span] = receiver.trace("abcdef1234567890abcdef1234567890", 1)
    assert (span.kind, span.parent_span_id) == ("server", "1234567890abcdef")
    assert span.name == "GET /skills/onboarding-guide"  # each skill is its own route


def test_building_with_tracing_on_starts_no_exporter(tmp_path: Path, upstream: FakeUpstream) -> None:
    """``host check --config`` and the --workers supervisor build the host without serving it: the
    settings are checked then, but no exporter thread is started (the apps start it)."""
    import threading

    from host.app import build
    from host.config import HostConfig

    config = HostConfig.model_validate(
        {"capabilities": [capability(tmp_path, "alpha", upstream.url)], "observability": {"enabled": True}}
    )
    before = {thread.ident for thread in threading.enumerate()}
    built = build(config, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}, discover=False)
    assert built.engine.client_traces is not None  # tracing is installed ...
    assert {thread.ident for thread in threading.enumerate()} == before  # ... and nothing runs yet


@pytest.mark.parametrize(
    ("environ", "endpoint"),
    [
        ({}, "http://localhost:4318/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}, "http://collector:4318/v1/traces"),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces.example/otlp",
            },
            "https://traces.example/otlp",  # the signal's own variable is the URL as it is
        ),
        ({"OTEL_TRACES_EXPORTER": "none"}, None),
    ],
)
def test_the_endpoint_follows_the_otlp_variables(environ: dict[str, str], endpoint: str | None) -> None:
    from host.config import HostConfig
    from host.tracing.settings import resolve

    settings = resolve(HostConfig.model_validate({"observability": {"enabled": True}}), environ, [])
    assert settings.endpoint == endpoint
    assert settings.service == "capability-host"
    assert (settings.sampling.name, settings.sampling.ratio) == ("parentbased_traceidratio", 1.0)
    assert settings.propagators == ("tracecontext",)


async def test_a_capability_file_cannot_choose_where_traces_go(
    tmp_path: Path, upstream: FakeUpstream, receiver: OtlpReceiver
) -> None:
    with OtlpReceiver() as elsewhere:
        block = f"exporters:\n  otlp:\n    endpoint: {elsewhere.url}\n"
        config = {
            "capabilities": [capability(tmp_path, "alpha", upstream.url, block)],
            "observability": {"enabled": True},
        }
        async with serve_in_process(config, environment(receiver), discover=False) as served:
            await call_both(served, "alpha", {})
        assert {span.name for span in receiver.spans} >= {"GET /alpha/items", "tools/call alpha-items"}
        assert elsewhere.spans == [] and elsewhere.exports == 0


async def test_an_mcp_message_carrying_traceparent_in_its_meta_continues_that_trace(
    tmp_path: Path, upstream: FakeUpstream, receiver: OtlpReceiver
) -> None:
    """The MCP semantic conventions' propagation: params._meta.traceparent wins over the HTTP header."""
    alpha = capability(tmp_path, "alpha", upstream.url)
    config = {"capabilities": [alpha], "observability": {"enabled": True}}
    header, _ = traceparent()
    meta_trace, meta_span = secrets.token_hex(16), secrets.token_hex(8)
    params = {"name": "alpha-items", "_meta": {"traceparent": f"00-{meta_trace}-{meta_span}-01"}}
    message = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": params}
    async with serve_in_process(config, environment(receiver), discover=False) as served:
        headers = {"Accept": "application/json", "traceparent": header}
        answer = await served.mcp.post("/mcp", json=message, headers=headers)
        assert (await answer.json())["result"]["isError"] is False
    spans = receiver.trace(meta_trace, 2)
    [server] = [span for span in spans if span.kind == "server"]
    assert (server.name, server.parent_span_id) == ("tools/call alpha-items", meta_span)
