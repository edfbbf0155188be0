"""String body templates escape each caller value for the template's format (issue 10, finding 7).

A JSON-string template must not let a caller add keys (``"role": "admin"``), a form template must not let
it add fields, an XML template must not let it add elements: whatever the caller sends stays one value.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import yaml

from host.naftiko import load_capability
from host.naftiko.compiler import NaftikoRequest

INJECT_JSON = 'x", "role": "admin'
INJECT_FORM = "x&role=admin"
INJECT_XML = "x</name><role>admin</role><name>"
INJECT_YAML = "x\nrole: admin"
AWKWARD = ["plain", 'quote " back\\slash', "new\nline", "tab\t", "é ✓ \u2028", "{{name}}", "'single'"]


def _body(body: Any, arguments: dict[str, Any]) -> tuple[str, str | None]:
    request = NaftikoRequest("POST", "/p", [], body)(arguments, {})
    return (request.body or b"").decode(), request.content_type


@pytest.mark.parametrize("body", ['{"name": "{{name}}"}', {"type": "json", "data": '{"name": "{{name}}"}'}])
def test_json_string_template_keeps_a_value_one_value(body: Any) -> None:
    text, content_type = _body(body, {"name": INJECT_JSON})
    assert content_type == "application/json"
    assert json.loads(text) == {"name": INJECT_JSON}
    for value in AWKWARD:
        assert json.loads(_body(body, {"name": value})[0]) == {"name": value}


def test_json_template_outside_quotes_is_one_json_value() -> None:
    template = '{"count": {{count}}, "flag": {{flag}}, "tags": {{tags}}, "name": {{name}}}'
    arguments = {"count": 3, "flag": True, "tags": ["a", "b"], "name": '1, "role": "admin"'}
    assert json.loads(_body(template, arguments)[0]) == arguments
    # REST query values arrive as text: a number stays a number, anything else becomes one string
    assert json.loads(_body(template, {**arguments, "count": "42"})[0])["count"] == 42
    assert json.loads(_body('{"a": {{missing}}}', {})[0]) == {"a": None}


def test_form_string_template_keeps_a_value_one_field() -> None:
    body = {"type": "formUrlEncoded", "data": "grant_type=password&username={{user}}"}
    text, content_type = _body(body, {"user": INJECT_FORM})
    assert content_type == "application/x-www-form-urlencoded"
    assert parse_qs(text) == {"grant_type": ["password"], "username": [INJECT_FORM]}


def test_xml_template_keeps_a_value_one_text_node() -> None:
    body = {"type": "xml", "data": "<order><name>{{name}}</name><note a='{{name}}'/></order>"}
    text, content_type = _body(body, {"name": INJECT_XML + "'\""})
    assert content_type == "application/xml"
    root = ElementTree.fromstring(text)
    assert [child.tag for child in root] == ["name", "note"]
    assert root.find("name").text == INJECT_XML + "'\""  # type: ignore[union-attr]
    assert root.find("note").get("a") == INJECT_XML + "'\""  # type: ignore[union-attr]


@pytest.mark.parametrize("template", ["name: {{name}}\nkind: fixed\n", 'name: "{{name}}"\nkind: fixed\n'])
def test_yaml_template_keeps_a_value_one_scalar(template: str) -> None:
    text, _ = _body({"type": "yaml", "data": template}, {"name": INJECT_YAML})
    assert yaml.safe_load(text) == {"name": INJECT_YAML, "kind": "fixed"}


def test_sparql_template_keeps_a_value_one_literal() -> None:
    body = {"type": "sparql", "data": 'SELECT ?s WHERE { ?s ?p "{{term}}" }'}
    text, content_type = _body(body, {"term": 'x" } ; DROP ALL ; { "'})
    assert content_type == "application/sparql-query"
    assert text == 'SELECT ?s WHERE { ?s ?p "x\\" } ; DROP ALL ; { \\"" }'


def test_structured_templates_were_already_one_value_and_stay_so() -> None:
    text, _ = _body({"type": "json", "data": {"name": "{{name}}", "id": "n-{{name}}"}}, {"name": INJECT_JSON})
    assert json.loads(text) == {"name": INJECT_JSON, "id": f"n-{INJECT_JSON}"}
    text, _ = _body({"type": "formUrlEncoded", "data": {"u": "{{user}}"}}, {"user": INJECT_FORM})
    assert parse_qs(text) == {"u": [INJECT_FORM]}


def test_a_loaded_file_escapes_its_string_body(tmp_path: Path) -> None:
    capability = tmp_path / "users.yaml"
    capability.write_text(
        """\
naftiko: 1.0.0-alpha2
info: {label: Users, description: Users}
capability:
  consumes:
    - type: http
      namespace: users-api
      baseUri: https://users.example.com
      resources:
        - name: users
          path: /users
          operations:
            - name: create-user
              method: POST
              body: '{"name": "{{name}}", "role": "reader"}'
  exposes:
    - type: mcp
      namespace: users
      port: 9091
      tools:
        - {name: create-user, description: Create a user, call: users-api.create-user}
"""
    )
    report = load_capability(capability)
    assert not report.errors, report.errors
    operation = report.apis[0].operations[0]
    assert operation.request is not None
    request = operation.request({"name": INJECT_JSON}, {})
    assert json.loads(request.body or b"") == {"name": INJECT_JSON, "role": "reader"}
