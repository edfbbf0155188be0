"""What one file serves twice, or where the host serves its own routes (issue 11: check and build agree).

``host check`` said WARN (served) for these catalogue files, and ``serve`` then refused to start:
``adobe-launch__data-collection-pipeline.yaml`` (two POST operations on ``/v1/events``),
``cat__cat-capability.yaml`` (two tools whose generated names are equal), ``linkerd__linkerd-capability.yaml``
(a resource on ``/metrics``) and ``naftiko__agent-skills-publication-capability.yaml`` (a REST resource
under ``/skills`` in a file that serves skills). Now the loader, which both use, serves the first of two
items with the same route or name, and none on the host's own routes, each with a warning naming the key.
"""

from __future__ import annotations

from pathlib import Path

from host.adapters.rest import RESERVED_PATHS
from host.adapters.skills import SKILLS_PATH as SKILL_ROUTES
from host.model import HOST_REST_PATHS, SKILLS_PATH
from host.naftiko import load_capability
from host.testing import FakeUpstream, serve_in_process

CAPABILITY = """\
naftiko: "1.0.0-alpha2"
capability:
  consumes:
    - type: http
      namespace: edge
      baseUri: "https://edge.example.com"
      resources:
        - name: interact
          path: /interact
          operations:
            - {name: interact, method: POST}
        - name: collect
          path: /collect
          operations:
            - {name: collect, method: POST}
        - name: metrics
          path: /metrics
          operations:
            - {name: metrics, method: GET}
  exposes:
    - type: rest
      namespace: pipeline-api
      resources:
        - path: /v1/events
          operations:
            - {method: POST, name: send-interactive-event, call: edge.interact}
            - {method: POST, name: send-batch-events, call: edge.collect}
        - path: /metrics
          operations:
            - {method: GET, name: proxy-metrics, call: edge.metrics}
        - path: /v1/metrics
          operations:
            - {method: GET, name: get-metrics, call: edge.metrics}
    - type: mcp
      namespace: pipeline-mcp
      tools:
        - {name: send-event, description: Send one event, call: edge.interact}
        - {name: send-event, description: Send a batch, call: edge.collect}
        - {name: get-metrics, description: Metrics, call: edge.metrics}
"""

SKILLS = """\
naftiko: "1.0.0-alpha2"
capability:
  consumes:
    - type: http
      namespace: control
      baseUri: "https://control.example.com"
      resources:
        - name: skills
          path: /skills
          operations:
            - {name: list-skills, method: GET}
        - name: bundle
          path: "/skills/{{skill_id}}/bundle"
          operations:
            - {name: download-skill-bundle, method: GET}
  exposes:
    - type: rest
      namespace: publication-api
      resources:
        - path: /v1/skills
          operations:
            - {method: GET, name: list, call: control.list-skills}
        - path: "/skills/{{skill_id}}/bundle"
          operations:
            - method: GET
              name: download-bundle
              inputParameters: [{name: skill_id, in: path, type: string}]
              call: control.download-skill-bundle
    - type: mcp
      namespace: publication-mcp
      tools:
        - {name: list-skills, description: List skills, call: control.list-skills}
    - type: skill
      namespace: publication-skills
      skills:
        - name: publication
          description: Publish and install skill folders.
          tools:
            - {name: list-skills, from: {sourceNamespace: publication-mcp, action: list-skills}}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "capability.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _config(path: Path, namespace: str, base_uri: str) -> str:
    return f'[consumes.{namespace}]\nbase_uri = "{base_uri}"\n[[capabilities]]\npath = "{path}"\n'


def test_the_host_routes_the_loader_knows_are_the_adapters_own() -> None:
    assert set(HOST_REST_PATHS) == set(RESERVED_PATHS)
    assert SKILLS_PATH == SKILL_ROUTES


def test_check_names_each_item_that_is_not_served(tmp_path: Path) -> None:
    report = load_capability(_write(tmp_path, CAPABILITY))
    assert report.status == "WARN" and report.errors == []
    warnings = "\n".join(report.warnings)
    assert (
        "capability.exposes[0].resources[0].operations[1]: POST /v1/events is declared again "
        "(first at capability.exposes[0].resources[0].operations[0])"
    ) in warnings
    assert "capability.exposes[1].tools[1]: tool send-event is declared again" in warnings
    assert "capability.exposes[0].resources[1].path: /metrics is the host's own endpoint" in warnings
    assert [(r.method, r.path, r.operation) for r in report.rest] == [
        ("POST", "/v1/events", "edge.interact"),
        ("GET", "/v1/metrics", "edge.metrics"),
    ]
    assert [(t.name, t.operation) for t in report.tools] == [
        ("send-event", "edge.interact"),
        ("get-metrics", "edge.metrics"),
    ]


async def test_what_check_accepts_the_host_serves(tmp_path: Path) -> None:
    path = _write(tmp_path, CAPABILITY)
    with FakeUpstream() as upstream:
        upstream.route("*", "*", json={"ok": True})
        async with serve_in_process(
            _config(path, "edge", upstream.url), {}, plugins=(), discover=False
        ) as served:
            sent = await served.rest.post("/v1/events", json={"event": 1})
            assert sent.status == 200, await sent.text()
            own = await served.rest.get("/metrics")
            assert own.status == 200 and "json" not in own.content_type  # the host's Prometheus text
        assert [request.path for request in upstream.requests] == ["/interact"]


async def test_a_file_serving_skills_keeps_its_rest_off_the_skill_routes(tmp_path: Path) -> None:
    path = _write(tmp_path, SKILLS)
    report = load_capability(path)
    assert report.errors == [] and report.skills
    assert any(
        w.startswith("capability.exposes[0].resources[1].operations[0]: /skills/{skill_id}/bundle is under")
        for w in report.warnings
    ), report.warnings
    assert [r.path for r in report.rest] == ["/v1/skills"]
    with FakeUpstream() as upstream:
        upstream.route("*", "*", json=[])
        async with serve_in_process(
            _config(path, "control", upstream.url), {}, plugins=(), discover=False
        ) as served:
            listed = await served.rest.get("/skills")
            assert listed.status == 200


RELATIVE = """\
naftiko: "1.0.0-alpha2"
capability:
  consumes:
    - type: http
      namespace: octoparse
      baseUri: "https://openapi.octoparse.com"
      resources:
        - name: start
          path: /cloudextraction/start
          operations:
            - {name: start-extraction, method: POST}
  exposes:
    - type: rest
      namespace: octoparse-api
      resources:
        - path: cloudextraction/start
          operations:
            - {method: POST, name: start, call: octoparse.start-extraction}
"""


async def test_a_rest_path_without_a_leading_slash_is_served_under_one(tmp_path: Path) -> None:
    # octoparse__octoparse-capability.yaml: every REST path is relative; the build crashed in aiohttp.
    path = _write(tmp_path, RELATIVE)
    report = load_capability(path)
    assert "capability.exposes[0].resources[0].path: dialect: 'cloudextraction/start' has no leading '/'" in (
        "\n".join(report.warnings)
    )
    with FakeUpstream() as upstream:
        upstream.route("*", "*", json={"ok": True})
        config = _config(path, "octoparse", upstream.url)
        async with serve_in_process(config, {}, plugins=(), discover=False) as served:
            started = await served.rest.post("/cloudextraction/start", json={})
            assert started.status == 200, await started.text()
