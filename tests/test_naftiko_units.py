"""The Naftiko engine piece by piece: templates, request building, auth, bodies, outputs, loading."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from host import templates
from host.config import ConsumeConfig
from host.engine import bind, digest_authorization
from host.errors import InvalidArguments, StartupError
from host.model import ApiKeyAuth, BasicAuth, BearerAuth, ConsumedApi, DigestAuth, UnsupportedAuth
from host.naftiko import FileReport, load_capability
from host.naftiko.compiler import NaftikoRequest, WithMapping, render_json
from host.naftiko.jsonpath import JsonPathError, compile_path
from host.secrets import Secret


def load(tmp_path: Path, text: str, **kwargs: Any) -> FileReport:
    path = tmp_path / "cap.yaml"
    path.write_text(textwrap.dedent(text))
    return load_capability(path, **kwargs)


CAPABILITY = """
naftiko: 1.0.0-alpha2
info: {label: Test, description: Test}
binds:
- namespace: env
  keys: {SVC_TOKEN: SVC_TOKEN, SVC_REGION: SVC_REGION}
capability:
  consumes:
  - type: http
    namespace: svc
    baseUri: https://{{SVC_REGION}}.svc.example/{version}
    authentication: {type: bearer, token: '{{env.SVC_TOKEN}}'}
    resources:
    - name: items
      path: /items/{id}/{{kind}}
      operations:
      - name: get-item
        method: GET
        inputParameters:
        - {name: id, in: path, type: string, required: true}
        - {name: limit, in: query, type: integer}
        - {name: X-Trace, in: header}
        - {name: session, in: cookie}
        - {name: fixed, in: query, value: 'v-{{SVC_REGION}}'}
      - name: create-item
        method: POST
        body:
          type: json
          data: {title: '{{tools.title}}', count: '{{tools.count}}', tags: '{{tools.tags}}',
                 note: 'n: {{tools.note}}', missing: '{{tools.absent}}'}
        outputParameters:
        - {name: result, type: object, value: $.}
  exposes:
  - type: rest
    namespace: svc-rest
    port: 8080
    resources:
    - path: /v1/items/{{id}}
      operations:
      - method: GET
        call: svc.get-item
        with: {id: rest.id, kind: svc-rest.kind, limit: '{{rest.limit}}'}
        outputParameters:
        - type: object
          properties:
            name: {type: string, mapping: $.data.name}
            first: {type: string, mapping: '$.data.tags[0]'}
  - type: mcp
    namespace: svc-mcp
    port: 9090
    tools:
    - name: get-item
      description: Get an item.
      hints: {readOnly: true, openWorld: true}
      call: svc.get-item
      with: {id: tools.id}
      outputParameters:
      - {type: object, mapping: $.data}
    - name: create-item
      description: Create an item.
      call: svc.create-item
    - name: declared
      description: Declared inputs.
      inputParameters:
      - {name: code, type: string, required: true, pattern: '^[A-Z]{3}$'}
      - {name: size, type: integer}
      call: svc.get-item
      with: {id: tools.code, kind: tools.code}  # the path's parameters: unmapped, they would be inputs
    - name: static
      description: A mock tool.
      outputParameters:
      - {type: object, value: {ok: true}}
"""


def test_templates_fill_every_placeholder_form() -> None:
    context = {"A": "1", "name": "x y", "n": 5}
    assert templates.render("{{A}}/{{env.A}}/{name}/{{ n }}", context) == "1/1/x y/5"
    assert templates.render("{{A}}-{x}", context, single_brace=False) == "1-{x}"
    assert templates.names("/a/{b}/{{c.d}}") == ["b", "c.d"]
    assert templates.whole_placeholder(" {{tools.x}} ") == "tools.x"
    assert templates.whole_placeholder("a {{x}}") is None
    with pytest.raises(KeyError):
        templates.render("{missing}", {}, on_missing=lambda name: (_ for _ in ()).throw(KeyError(name)))


def test_jsonpath() -> None:
    document = {"data": {"items": [{"a": 1}, {"a": 2}], "x": "y"}}
    assert compile_path("$.").find(document) == document
    assert compile_path("$.data.items[*].a").find(document) == [1, 2]
    assert compile_path("$..a").find(document) == [1, 2]
    assert compile_path("$['data']['x']").find(document) == "y"
    assert compile_path("$.data.nope").find(document) is None
    with pytest.raises(JsonPathError):
        compile_path("data.x")
    with pytest.raises(JsonPathError):
        compile_path("$.a[")


def test_file_loads_with_the_right_items(tmp_path: Path) -> None:
    report = load(tmp_path, CAPABILITY)
    assert report.status == "OK", report.warnings + report.errors
    assert report.operations == 2 and len(report.rest) == 1 and len(report.tools) == 4
    assert any("port 8080 ignored" in note for note in report.notes)
    [api, static_api] = report.apis
    assert api.base_uri == "https://{{SVC_REGION}}.svc.example/{version}"
    assert isinstance(api.auth, BearerAuth) and api.auth.token == "{{env.SVC_TOKEN}}"
    assert {v.key for v in api.variables} >= {"SVC_TOKEN", "SVC_REGION", "version"}
    assert static_api.namespace == "svc-mcp-static"


def test_request_builder_places_each_parameter(tmp_path: Path) -> None:
    report = load(tmp_path, CAPABILITY)
    builder = report.apis[0].operations[0].request
    assert isinstance(builder, NaftikoRequest)
    request = builder(
        {"id": "a/b", "kind": "big", "limit": 5, "X-Trace": "t1", "session": "s 1"}, {"SVC_REGION": "eu"}
    )
    assert request.method == "GET"
    assert request.path == "/items/a%2Fb/big"  # one segment: '/' is encoded
    assert request.query == (("limit", "5"), ("fixed", "v-eu"))
    assert request.headers == {"X-Trace": "t1", "Cookie": "session=s%201"}
    assert request.body is None
    with pytest.raises(InvalidArguments, match="id"):
        builder({"kind": "big"}, {})
    with pytest.raises(InvalidArguments, match="line breaks"):
        builder({"id": "1", "kind": "k", "X-Trace": "a\r\nInjected: yes"}, {})


def test_json_body_keeps_types_and_drops_unresolved_leaves(tmp_path: Path) -> None:
    report = load(tmp_path, CAPABILITY)
    builder = report.apis[0].operations[1].request
    assert builder is not None
    request = builder(
        {"title": "T", "count": 12.5, "tags": ["a", "b"], "note": "hi", "kind": "k", "id": "1"}, {}
    )
    assert request.content_type == "application/json"
    assert json.loads(request.body or b"") == {
        "title": "T",
        "count": 12.5,
        "tags": ["a", "b"],
        "note": "n: hi",
    }


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ('{"a": "{{x}}"}', "application/json", b'{"a": "X"}'),
        (
            {"type": "formUrlEncoded", "data": {"a": "{{x}}", "b": "c d"}},
            "application/x-www-form-urlencoded",
            b"a=X&b=c+d",
        ),
        ({"type": "xml", "data": "<a>{{x}}</a>"}, "application/xml", b"<a>X</a>"),
        ({"type": "text", "data": "hello {{x}}"}, "text/plain", b"hello X"),
        ({"type": "sparql", "data": "SELECT {{x}}"}, "application/sparql-query", b"SELECT X"),
        ({"type": "json", "data": '{"raw": "{{x}}"}'}, "application/json", b'{"raw": "X"}'),
    ],
)
def test_body_types(body: Any, content_type: str, expected: bytes) -> None:
    request = NaftikoRequest("POST", "/p", [], body)({"x": "X"}, {})
    assert request.content_type == content_type
    assert request.body == expected


def test_multipart_and_body_parameters() -> None:
    multipart = NaftikoRequest(
        "POST",
        "/p",
        [],
        {
            "type": "multipartForm",
            "data": [{"name": "file", "value": "{{x}}", "filename": "a.txt", "contentType": "text/plain"}],
        },
    )
    request = multipart({"x": "content"}, {})
    assert request.content_type and request.content_type.startswith("multipart/form-data; boundary=")
    assert b'name="file"; filename="a.txt"' in (request.body or b"") and b"content" in (request.body or b"")

    from host.naftiko.document import InputParameter

    one = NaftikoRequest("POST", "/p", [InputParameter(name="body", **{"in": "body"})], None)
    assert json.loads(one({"body": {"k": 1}}, {}).body or b"") == {"k": 1}
    two = NaftikoRequest(
        "POST",
        "/p",
        [InputParameter(name="a", **{"in": "body"}), InputParameter(name="b", **{"in": "body"})],
        None,
    )
    assert json.loads(two({"a": 1, "b": [2]}, {}).body or b"") == {"a": 1, "b": [2]}
    passthrough = NaftikoRequest("PUT", "/p", [], None)
    assert json.loads(passthrough({"body": {"z": True}}, {}).body or b"") == {"z": True}


def test_with_mapping() -> None:
    mapping = WithMapping(
        {
            "id": "rest.id",
            "q": "own.query",
            "n": 3,
            "text": "x-{{tools.id}}",
            "gone": "tools.nope",
            "whole": "{{tools.obj}}",
        },
        "own",
    )
    assert mapping({"id": "7", "query": "q1", "obj": {"a": 1}, "extra": "kept"}) == {
        "id": "7",
        "q": "q1",
        "n": 3,
        "text": "x-7",
        "obj": {"a": 1},
        "extra": "kept",
        "query": "q1",
        "whole": {"a": 1},
    }


def test_render_json_drops_only_unresolved_whole_leaves() -> None:
    assert render_json({"a": "{{x}}", "b": ["{{y}}", "{{x}}"], "c": "lit"}, {"x": 1}) == {
        "a": 1,
        "b": [1],
        "c": "lit",
    }


def test_outputs(tmp_path: Path) -> None:
    report = load(tmp_path, CAPABILITY)
    [rest] = report.rest
    assert rest.output is not None
    assert rest.output({"data": {"name": "n", "tags": ["t1", "t2"]}}) == {"name": "n", "first": "t1"}
    tools = {tool.name: tool for tool in report.tools}
    assert tools["get-item"].output is not None
    assert tools["get-item"].output({"data": {"k": 1}}) == {"k": 1}  # object + mapping: the mapped document
    assert tools["create-item"].output is None  # no outputs: the upstream body as it is


def test_array_items_and_scalars(tmp_path: Path) -> None:
    report = load(
        tmp_path,
        """
        naftiko: 1.0.0-alpha2
        info: {label: T, description: T}
        capability:
          consumes:
          - {type: http, namespace: a, baseUri: 'https://a.example', resources: [{name: r, path: /r,
             operations: [{name: op, method: GET}]}]}
          exposes:
          - type: mcp
            namespace: m
            tools:
            - name: list
              description: d
              call: a.op
              outputParameters:
              - type: array
                mapping: $.items
                items: {type: object, properties: {id: {type: string, mapping: $.id}}}
            - name: names
              description: d
              call: a.op
              outputParameters:
              - {type: array, mapping: '$.items[*].name'}
            - name: first
              description: d
              call: a.op
              outputParameters:
              - {type: string, mapping: $.missing}
              - {type: string, mapping: '$.items[0].name', maxLength: 2}
        """,
    )
    tools = {tool.name: tool for tool in report.tools}
    document = {"items": [{"id": "1", "name": "alpha"}, {"id": "2", "name": "beta"}]}
    assert tools["list"].output and tools["list"].output(document) == [{"id": "1"}, {"id": "2"}]
    assert tools["names"].output and tools["names"].output(document) == ["alpha", "beta"]
    assert tools["first"].output and tools["first"].output(document) == "al"  # first non-null output wins


def test_input_schemas(tmp_path: Path) -> None:
    tools = {tool.name: tool for tool in load(tmp_path, CAPABILITY).tools}
    declared = tools["declared"].input_schema
    assert declared == {
        "type": "object",
        "required": ["code"],
        "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}$"}, "size": {"type": "integer"}},
    }
    derived = tools["get-item"].input_schema
    assert derived is not None
    assert derived["properties"]["id"]["type"] == "string" and "id" in derived["required"]
    assert derived["properties"]["limit"]["type"] == "integer"
    assert "kind" in derived["properties"]  # a path placeholder
    body = tools["create-item"].input_schema
    assert body is not None and set(body["properties"]) >= {"title", "count", "tags", "note"}


def bound(auth: Any, **values: str) -> Any:
    api = ConsumedApi(namespace="x", base_uri="https://x.example", operations=(), auth=auth)
    from host.model import EnvVar

    api = ConsumedApi(
        namespace="x",
        base_uri="https://x.example",
        operations=(),
        auth=auth,
        variables=tuple(EnvVar(name, placeholder=name) for name in values),
    )
    return bind(api, ConsumeConfig(), values, "test").auth


def test_auth_types() -> None:
    bearer = bound(BearerAuth("{{env.TOKEN}}"), TOKEN="tok-123456")
    assert bearer.header[0] == "Authorization" and bearer.header[1].reveal() == "Bearer tok-123456"
    basic = bound(BasicAuth("{{U}}", "{{P}}"), U="user", P="pass-word")
    assert basic.header[1].reveal() == "Basic dXNlcjpwYXNzLXdvcmQ="
    header_key = bound(ApiKeyAuth("X-Api-Key", "{{K}}"), K="key-123456")
    assert header_key.header[0] == "X-Api-Key" and header_key.header[1].reveal() == "key-123456"
    query_key = bound(ApiKeyAuth("token", "{{K}}", placement="query"), K="key-123456")
    assert query_key.query[0] == "token" and query_key.header is None
    digest = bound(DigestAuth("{{U}}", "{{P}}"), U="user", P="pass-word")
    assert digest.kind == "digest" and digest.username.reveal() == "user"
    assert bound(UnsupportedAuth("oauth1")).unsupported == "oauth1"
    with pytest.raises(StartupError, match="TOKEN"):
        bound(BearerAuth("{{TOKEN}}"))


def test_digest_answer_matches_rfc_2617_example(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("host.upstream.secrets.token_hex", lambda n: "0a4f113b")
    answer = digest_authorization(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41"',
        "GET",
        "http://www.nowhere.org/dir/index.html",
        [],
        Secret("Mufasa"),
        Secret("Circle Of Life"),
    )
    assert 'response="6629fae49393a05397450978507c4ef1"' in answer
    assert 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in answer


def test_unresolved_base_uri_placeholder_is_a_startup_error_naming_it(tmp_path: Path) -> None:
    [api, _] = load(tmp_path, CAPABILITY).apis
    with pytest.raises(StartupError, match="SVC_REGION"):
        bind(api, ConsumeConfig(), {"SVC_TOKEN": "tok-123456", "VERSION": "v1"}, "test")
    bound_api = bind(
        api,
        ConsumeConfig(variables={"version": "API_VERSION"}),
        {"SVC_TOKEN": "tok-123456", "SVC_REGION": "eu", "API_VERSION": "v2"},
        "test",
    )
    assert bound_api.base_url == "https://eu.svc.example/v2"


def test_tratta_file_fills_org_uuid_from_environment() -> None:
    path = (
        Path(__file__).resolve().parents[1] / "plugins/tratta_customer_sessions/tratta_customer_sessions/data"
    )
    report = load_capability(path / "tratta-customer-sessions.yaml")
    [api] = report.apis
    bound_api = bind(api, ConsumeConfig(), {"TRATTA_ORG_UUID": "org-1", "TRATTA_API_KEY": "key-123456"}, "t")
    assert bound_api.base_url == "https://org-1.production.tratta.io/api/v1"
    assert (
        bound_api.auth and bound_api.auth.header and bound_api.auth.header[1].reveal() == "Bearer key-123456"
    )
    [tool] = report.tools
    assert tool.input_schema == {
        "type": "object",
        "properties": {"body": {"type": "object", "description": "Request body (JSON)."}},
        "required": ["body"],
    }
    assert tool.output is not None and tool.output({"data": {"id": 1}}) == {"data": {"id": 1}}


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("naftiko: [unclosed", "not valid YAML at line"),
        ("- a\n- b\n", "not a mapping"),
        ("naftiko: 2.0.0\ncapability: {}\n", "version '2.0.0' is not supported"),
        ("ikanos: 1.0.0-beta1\n", "Ikanos"),
        ("naftiko: 1.0.0-alpha2\ninfo: {label: x}\n", "capability: missing"),
    ],
)
def test_bad_files_are_errors_with_a_reason(tmp_path: Path, text: str, error: str) -> None:
    report = load(tmp_path, text)
    assert report.status == "ERROR" and error in report.errors[0]


def test_invalid_jsonpath_and_dangling_call(tmp_path: Path) -> None:
    broken = CAPABILITY.replace("mapping: $.data.name", "mapping: data.name")
    report = load(tmp_path, broken)
    assert report.status == "ERROR"
    assert (
        "capability.exposes[0].resources[0].operations[0].outputParameters[0].properties.name.mapping"
        in (report.errors[0])
    )
    dangling = CAPABILITY.replace("call: svc.create-item", "call: svc.nope")
    report = load(tmp_path, dangling)
    assert report.status == "WARN"
    assert any(
        "exposes[1].tools[1].call: 'svc.nope' names no consumed operation" in w for w in report.warnings
    )
    assert "create-item" not in {tool.name for tool in report.tools}


def test_strict_turns_deviations_into_errors(tmp_path: Path) -> None:
    text = CAPABILITY.replace("info: {label: Test", "info: {title: Test")
    assert load(tmp_path, text).status == "WARN"
    assert load(tmp_path, text, strict=True).status == "ERROR"


def test_unsupported_auth_is_a_warning_not_silence(tmp_path: Path) -> None:
    report = load(
        tmp_path, CAPABILITY.replace("{type: bearer, token: '{{env.SVC_TOKEN}}'}", "{type: oauth1}")
    )
    assert report.status == "WARN"
    assert isinstance(report.apis[0].auth, UnsupportedAuth)
    assert any("oauth1 authentication is not supported" in w for w in report.warnings)
