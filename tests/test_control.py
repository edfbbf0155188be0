"""A file's `control` adapter (issue 12 part 4): each feature mapped onto the host's operator endpoints,
or said to be unsupported, by `host check`. Fixtures from ../shared/naftiko-reference (skipped if absent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from host.check import render_json, render_text
from host.naftiko import load_capability
from host.testing import serve_in_process
from tests.conftest import ROOT

CONTROL = ROOT.parent / "shared" / "naftiko-reference" / "src" / "test" / "resources" / "control"
needs_reference = pytest.mark.skipif(not CONTROL.is_dir(), reason="naftiko-reference is absent")


def _control(name: str) -> dict[str, tuple[str, str]]:
    report = load_capability(CONTROL / name)
    assert report.errors == []
    return {feature: (status, detail) for feature, status, detail in report.control}


@needs_reference
def test_health_and_metrics_are_mapped_info_and_traces_are_not() -> None:
    control = _control("control-capability.yaml")
    assert control["management.health"] == ("mapped", "/healthz (live) and /readyz (ready) on the REST port")
    assert control["observability.metrics"][0] == "mapped"
    assert control["management.info"][0] == "not supported"
    assert control["observability.traces"][0] in {"mapped", "not supported"}


@needs_reference
def test_scripting_management_is_not_supported_and_check_says_so() -> None:
    report = load_capability(CONTROL / "control-scripting-capability.yaml")
    assert dict((f, s) for f, s, _ in report.control)["management.scripting"] == "not supported"
    assert report.status == "WARN"
    assert any("management.scripting: not supported" in w for w in report.warnings)
    text = render_text([report])
    assert "  control management.scripting: not supported: scripting management" in text
    assert "  control management.health: mapped: /healthz" in text
    document = json.loads(render_json([report]))[0]
    assert {"feature": "management.health", "status": "mapped"}.items() <= document["control"][0].items()


@needs_reference
def test_observability_disabled_leaves_the_hosts_metrics_on_and_says_so() -> None:
    control = _control("control-observability-disabled.yaml")
    assert control["observability"][0] == "ignored"
    assert "observability.metrics" not in control


CONTROL_FILE = """naftiko: "1.0.0-alpha2"
capability:
  exposes:
  - type: rest
    namespace: ping
    resources:
    - path: /v1/ping
      operations:
      - method: GET
        outputParameters:
        - {type: object, value: {pong: true}}
  - type: control
    port: 9199
    management: {health: true, reload: true, validate: true, logs: true}
"""


async def test_the_mapped_endpoints_answer_on_the_rest_port(tmp_path: Path) -> None:
    file = tmp_path / "ping.yaml"
    file.write_text(CONTROL_FILE)
    report = load_capability(file)
    control = {feature: status for feature, status, _ in report.control}
    assert control == {
        "management.health": "mapped",
        "management.reload": "not supported",
        "management.validate": "mapped",
        "management.logs": "not supported",
        "observability.metrics": "mapped",
        **({"observability.traces": "mapped"} if "observability.traces" in control else {}),
    }
    async with serve_in_process({"capabilities": [{"path": str(file)}]}, discover=False) as served:
        for path in ("/healthz", "/readyz", "/metrics", "/v1/ping"):
            assert (await served.rest.get(path)).status == 200, path
