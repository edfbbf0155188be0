"""Fidelity to the Naftiko reference engine (issue 11), replayed from its own fixtures.

The fixtures are read from ``../shared/naftiko-reference/`` (the framework repository at v1.0.0-alpha2);
the module skips when it is absent. Each test names the reference test it replays.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from host.formats import decode
from host.model import MockRequest
from host.naftiko import FileReport, load_capability

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "naftiko-reference"
if not REFERENCE.is_dir():
    pytest.skip(f"{REFERENCE} is absent: no reference fixtures", allow_module_level=True)

RESOURCES = REFERENCE / "src" / "test" / "resources"
TUTORIAL = REFERENCE / "src" / "main" / "resources" / "tutorial"
MICROCKS = REFERENCE / ".github" / "microcks"


def _load(path: Path, tmp_path: Path | None = None, *, version: str | None = None) -> FileReport:
    if version is not None and tmp_path is not None:
        text = path.read_text().replace('naftiko: "1.0.0-alpha2"', f'naftiko: "{version}"')
        text = text.replace("naftiko: 1.0.0-alpha2", f"naftiko: {version}")
        assert version in text
        path = tmp_path / path.name
        path.write_text(text)
    report = load_capability(path)
    assert not report.errors, report.errors
    return report


def _operation(report: FileReport, ref: str) -> Any:
    namespace, name = ref.split(".", 1)
    api = next(api for api in report.apis if api.namespace == namespace)
    return next(op for op in api.operations if op.name == name)


# --- 1.0.0-alpha3 --------------------------------------------------------------------------------


def test_alpha3_files_are_served(tmp_path: Path) -> None:
    report = _load(TUTORIAL / "step-1-shipyard-mock.yml", tmp_path, version="1.0.0-alpha3")
    assert report.status == "OK", report.warnings
    assert [tool.name for tool in report.tools] == ["get-ship"]


def test_host_check_accepts_alpha3(tmp_path: Path) -> None:
    _load(RESOURCES / "http" / "http-body-capability.yaml", tmp_path, version="1.0.0-alpha3")
    done = subprocess.run(
        [sys.executable, "-m", "host", "check", str(tmp_path / "http-body-capability.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_other_versions_are_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.yaml"
    path.write_text((RESOURCES / "http" / "http-body-capability.yaml").read_text().replace("alpha2", "beta9"))
    report = load_capability(path)
    assert report.status == "ERROR" and "1.0.0-beta9" in report.errors[0]


# --- issue 11 #1: an exposed `in: body` input's JSONPath value (HttpBodyIntegrationTest) ----------


def _rest_call(report: FileReport, body: Any) -> Any:
    """What the REST adapter hands the engine for a JSON body: ``body`` plus its top-level keys."""
    resource = report.rest[0]
    arguments = {"body": body, **body}
    assert resource.map_arguments is not None
    mapped = resource.map_arguments(arguments)
    operation = _operation(report, resource.operation)
    return operation.request(mapped, {})


def test_body_input_reads_its_jsonpath(tmp_path: Path) -> None:
    report = _load(RESOURCES / "http" / "http-body-capability.yaml")
    request = _rest_call(report, {"user": {"id": "123", "name": "Alice"}})
    assert json.loads(request.body) == {"id": "123", "name": "Alice"}


def test_body_input_fills_a_query_parameter() -> None:
    """HeaderQueryIntegrationTest: q=999 from $.user.id, as text (never a quoted JSON value)."""
    report = _load(RESOURCES / "http" / "http-header-query-capability.yaml")
    request = _rest_call(report, {"user": {"id": "999"}})
    assert ("q", "999") in request.query
    assert request.headers["X-API-Key"] == "ABC123"


# --- issue 11 #2: XML decoding drops the root element (RestXmlOutputFormatIntegrationTest) -------


def test_xml_decoding_drops_the_root_element() -> None:
    document = decode((RESOURCES / "schemas" / "sample-users.xml").read_bytes(), "xml")
    assert isinstance(document, dict) and "root" not in document
    assert [user["name"] for user in document["user"]][:2] == ["Alice Smith", "Bob Johnson"]


def _microcks_xml_example(api: str, name: str) -> bytes:
    document = yaml.safe_load((MICROCKS / api).read_text())
    for path in document["paths"].values():
        for operation in path.values():
            for response in operation.get("responses", {}).values():
                examples = response.get("content", {}).get("application/xml", {}).get("examples", {})
                if name in examples:
                    return str(examples[name]["value"]).encode()
    raise AssertionError(f"no XML example {name!r} in {api}")


def test_tutorial_step_5_maps_legacy_xml_vessels() -> None:
    report = _load(TUTORIAL / "step-5-shipyard-multi-source.yml")
    tool = next(tool for tool in report.tools if tool.name == "list-legacy-vessels")
    xml = _microcks_xml_example("naftiko-shipyard-legacy-dockyard-api.yaml", "allVessels")
    assert tool.output is not None
    vessels = tool.output(decode(xml, "xml"))
    assert [vessel["vesselCode"] for vessel in vessels] == ["LEGACY-4012", "LEGACY-2087"]
    assert vessels[0]["name"] == "Old Faithful"


# --- issue 11 #3: mock outputs (Step1ShipyardMcpClientIntegrationTest, ResourceRestletTest) ------


def _mock_answer(report: FileReport, operation_ref: str, arguments: dict[str, Any]) -> Any:
    operation = _operation(report, operation_ref)
    assert operation.mock is not None
    answer = operation.mock(MockRequest(operation.method, operation.path, arguments, None))
    return json.loads(answer.body)


def test_tutorial_step_1_mock_returns_every_named_output_rendered() -> None:
    report = _load(TUTORIAL / "step-1-shipyard-mock.yml")
    tool = report.tools[0]
    ship = _mock_answer(report, tool.operation, {"imo_number": "IMO-9321483"})
    assert ship == {
        "imo": "IMO-9321483",
        "name": "Northern Star",
        "type": "cargo",
        "flag": "NO",
        "status": "active",
    }


def test_mock_objects_and_arrays_are_built(tmp_path: Path) -> None:
    """ResourceRestletTest.handleShouldBuildMockResponseFromConstOutputParameters."""
    path = tmp_path / "preview.yaml"
    path.write_text(
        """\
naftiko: "1.0.0-alpha2"
capability:
  exposes:
    - type: rest
      namespace: preview
      port: 8080
      resources:
        - path: /preview
          operations:
            - method: GET
              outputParameters:
                - {name: status, type: string, value: ready}
                - name: payload
                  type: object
                  properties:
                    id: {type: string, value: "42"}
                    tags: {type: array, items: {type: string, value: active}}
                    greeting: {type: string, value: "Hello, {{name}}!"}
                    missing: {type: string}
"""
    )
    report = _load(path)
    answer = _mock_answer(report, report.rest[0].operation, {"name": "Alice"})
    assert answer == {
        "status": "ready",
        "payload": {"id": "42", "tags": ["active"], "greeting": "Hello, Alice!", "missing": None},
    }


# --- issue 11 #4: no matching output mapping gives the upstream body --------------------------


def test_no_matching_mapping_returns_the_upstream_document() -> None:
    report = _load(TUTORIAL / "step-5-shipyard-multi-source.yml")
    tool = next(tool for tool in report.tools if tool.name == "list-legacy-vessels")
    assert tool.output is not None
    upstream = {"unexpected": [1, 2]}
    assert tool.output(upstream) == upstream


# --- misleading `host check` reasons ---------------------------------------------------------------


def test_orchestrated_tools_are_named_as_such() -> None:
    """Step 7's get-ship-with-crew has steps, and `items` as a list of fields: the reason is the steps."""
    report = load_capability(TUTORIAL / "step-7-shipyard-orchestrated-lookup.yml")
    reasons = [w for w in report.warnings if "tools[4]" in w or "resources[2]" in w]
    assert not [reason for reason in reasons if "invalid" in reason], reasons
    # Orchestration is served (tests/test_naftiko_orchestration.py): nothing to explain any more.
    assert "get-ship-with-crew" in {tool.name for tool in report.tools}


def test_forward_is_named_as_such() -> None:
    report = load_capability(RESOURCES / "http" / "http-forward-value-capability.yaml")
    reasons = " ".join(report.warnings + report.errors)
    assert "declare no operations" not in reasons, reasons
    assert report.rest, "the forward is served (tests/test_naftiko_orchestration.py)"


# --- issue 11 #9: prompt text that is not a declared placeholder stays as written ------------------


def _text(result: Any) -> list[str]:
    return [message.content.text for message in result.messages]


async def test_prompt_rendering_keeps_undeclared_text(tmp_path: Path) -> None:
    """ResourcesPromptsIntegrationTest.testPromptsGetMissingArgumentLeavesPlaceholder, plus `{x}` text."""
    from mcp import Client

    from host.testing import start_host_server

    fixture = yaml.safe_load((RESOURCES / "mcp" / "mcp-resources-prompts-capability.yaml").read_text())
    fixture["capability"]["exposes"][0]["prompts"].append(
        {
            "name": "json-prompt",
            "label": "JSON prompt",
            "description": "Literal braces",
            "arguments": [{"name": "topic", "description": "Topic", "required": True}],
            "template": [{"role": "user", "content": 'About {topic}: answer {"a": {x}} and {{other}}.'}],
        }
    )
    (tmp_path / "prompts.yaml").write_text(yaml.safe_dump(fixture))
    server = start_host_server(
        tmp_path,
        (),
        {"mock-api": {"base_uri": "http://127.0.0.1:9", "retries": 0}},
        toml_extra='[[capabilities]]\npath = "prompts.yaml"\n',
    )
    try:
        async with Client(server.mcp_url) as client:
            summary = await client.get_prompt("summary-prompt", {"data": "some data"})
            assert _text(summary)[0] == "Summarize the following data in {{format}} format:\n\nsome data"
            outreach = await client.get_prompt(
                "participant-outreach", {"participant_name": "Alice", "product_name": "Naftiko"}
            )
            assert "Alice" in _text(outreach)[0] and "Naftiko" in _text(outreach)[0]
            assert "{{" not in _text(outreach)[0]
            literal = await client.get_prompt(
                "json-prompt", {"topic": "ships", "x": "INJECTED", "other": "O"}
            )
            assert _text(literal) == ['About ships: answer {"a": {x}} and {{other}}.']
    finally:
        server.stop()


# --- issue 11 #10: html and markdown outputs (HtmlIntegrationTest, MarkdownIntegrationTest) -------


def test_html_tables_chosen_by_the_css_selector_of_the_file() -> None:
    report = _load(RESOURCES / "formats" / "html-capability.yaml")
    operation = _operation(report, report.rest[0].operation)
    document = decode((RESOURCES / "schemas" / "sample-products.html").read_bytes(), operation.output_format)
    assert document == {
        "tables": [
            [
                {"Name": "Widget", "Price": "$42", "Stock": "150"},
                {"Name": "Gadget", "Price": "$99", "Stock": "30"},
            ]
        ]
    }
    output = report.rest[0].output
    assert output is not None and output(document) == [
        {"name": "Widget", "price": "$42", "stock": "150"},
        {"name": "Gadget", "price": "$99", "stock": "30"},
    ]


def test_html_selector_scopes_the_tables() -> None:
    """ConverterTest.convertHtmlToJsonShouldApplyCssSelectorScoping."""
    html = b"""<div>
      <table class="ignored"><tr><th>Name</th><th>Stock</th></tr><tr><td>Ignored</td><td>0</td></table>
      <table class="products"><tr><th>Name</th><th>Stock</th></tr><tr><td>Kept</td><td>42</td></table>
    </div>"""
    assert decode(html, "html:table.products") == {"tables": [[{"Name": "Kept", "Stock": "42"}]]}
    assert decode(html, "html:div .products") == {"tables": [[{"Name": "Kept", "Stock": "42"}]]}
    assert len(decode(html, "html")["tables"]) == 2
    assert decode(b"<table><tr><th>Name</th></tr><tr><td>Alice</td></tr></table>", "html") == {
        "tables": [[{"Name": "Alice"}]]
    }


def test_markdown_front_matter_tables_and_sections() -> None:
    report = _load(RESOURCES / "formats" / "markdown-capability.yaml")
    operation = _operation(report, report.rest[0].operation)
    document = decode((RESOURCES / "schemas" / "sample-readme.md").read_bytes(), operation.output_format)
    assert document["frontMatter"] == {"title": "Product Release Notes", "version": "2.1.0"}
    assert document["tables"] == [
        [{"Feature": "HTML support", "Status": "GA"}, {"Feature": "Markdown support", "Status": "Beta"}]
    ]
    assert document["sections"] == [
        {
            "heading": "Overview",
            "level": 2,
            "content": "This release introduces table extraction for markdown.",
        }
    ]
    output = report.rest[0].output
    assert output is not None and output(document)[1] == {"feature": "Markdown support", "status": "Beta"}


def test_markdown_inline_text_and_heading_prefix() -> None:
    """ConverterTest.convertMarkdownToJsonShouldExtractFrontMatterTablesAndSections."""
    text = (
        "---\ntitle: Release Notes\nversion: 2.1.0\n---\n\n## Overview\n"
        "This **release** introduces [new features](https://example.com).\n\n"
        "| Feature | Status |\n|---------|--------|\n| Search  | GA     |\n\n# Other\nmore\n"
    )
    document = decode(text.encode(), "markdown")
    assert document["sections"][0] == {
        "heading": "Overview",
        "level": 2,
        "content": "This release introduces new features.",
    }
    assert document["tables"] == [[{"Feature": "Search", "Status": "GA"}]]
    assert [s["heading"] for s in decode(text.encode(), "markdown:Oth")["sections"]] == ["Other"]


# --- issue 11: required parameters a tool cannot supply -----------------------------------------

UNSUPPLIABLE = """\
naftiko: "1.0.0-alpha2"
capability:
  consumes:
    - type: http
      namespace: tax
      baseUri: https://tax.example.com
      authentication: {type: bearer, token: "{{TAX_TOKEN}}"}
      resources:
        - name: returns
          path: /returns
          operations:
            - name: list-returns
              method: GET
              inputParameters:
                - {name: Authorization, in: header, required: true}
                - {name: X-API-NONCE, in: header, required: true}
                - {name: year, in: query, required: true}
  exposes:
    - type: mcp
      namespace: tax-mcp
      port: 9091
      tools:
        - name: list-returns
          description: List tax returns
          call: tax.list-returns
          inputParameters:
            - {name: year, type: string, required: true, description: Tax year}
"""


def test_required_parameters_a_tool_cannot_supply(tmp_path: Path) -> None:
    from host.errors import MissingArgument

    path = tmp_path / "tax.yaml"
    path.write_text(UNSUPPLIABLE)
    report = load_capability(path)
    assert not report.errors, report.errors
    named = [w for w in report.warnings if "tax.list-returns" in w]
    assert len(named) == 1 and "'X-API-NONCE'" in named[0], report.warnings  # Authorization: the bearer's
    operation = _operation(report, "tax.list-returns")
    request = operation.request({"year": "2024"}, {})
    assert request.query == (("year", "2024"),) and "X-API-NONCE" not in request.headers
    with pytest.raises(MissingArgument):
        operation.request({}, {})  # what the tool does offer stays required
