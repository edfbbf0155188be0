"""`host import openapi`: the reference's fixtures convert to valid capability files that `host check`
passes with no warning; names follow the reference converter; what cannot be converted faithfully is
refused, naming the operation and the reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from host.openapi import Options, import_file

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "naftiko-reference"
FIXTURES = REFERENCE / "src/test/resources/openapi"
SCHEMA = REFERENCE / "src/main/resources/schemas/naftiko-schema.json"
if not FIXTURES.is_dir():
    pytest.skip(f"{FIXTURES} is absent: no OpenAPI fixtures", allow_module_level=True)

FIXTURE_FILES = sorted(path.name for path in FIXTURES.iterdir())
# Every credential variable the fixtures' security schemes produce, so `host check` has no reason to warn.
ENVIRONMENT = {
    "PATH": "/usr/bin:/bin",
    "HOST_LOAD_PLUGINS": "",
    "COMPLEX_API_TOKEN": "t" * 20,
    "PETSTORE_31_TOKEN": "t" * 20,
    "SWAGGER_PETSTORE_API_KEY_API_KEY": "k" * 20,
}


def host(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "host", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=ENVIRONMENT,
        timeout=60,
        check=False,
    )


def schema_errors(document: dict[str, Any], version: str) -> list[str]:
    schema = json.loads(SCHEMA.read_text())
    schema["properties"]["naftiko"]["const"] = version  # alpha3's schema differs only in this constant
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def convert(name: str, **options: Any) -> dict[str, Any]:
    conversion = import_file(FIXTURES / name, Options(**options))
    assert conversion.refusals == []
    return conversion.document


def consumed(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        op["name"]: {**op, "path": resource["path"], "namespace": block["namespace"]}
        for block in document["capability"]["consumes"]
        for resource in block["resources"]
        for op in resource["operations"]
    }


@pytest.mark.parametrize("name", FIXTURE_FILES)
@pytest.mark.parametrize("version", ["alpha3", "alpha2"])
def test_fixture_converts_to_a_schema_valid_file_that_check_passes(
    name: str, version: str, tmp_path: Path
) -> None:
    output = tmp_path / "capability.yaml"
    result = host(
        "import",
        "openapi",
        str(FIXTURES / name),
        "--rest",
        "--version",
        version,
        "-o",
        str(output),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    document = yaml.safe_load(output.read_text())
    assert document["naftiko"] == f"1.0.0-{version}"
    assert schema_errors(document, f"1.0.0-{version}") == []

    check = host("check", "--json", str(output), cwd=tmp_path)
    (report,) = json.loads(check.stdout)
    assert (report["status"], report["warnings"], report["errors"]) == ("OK", [], []), report
    operations = consumed(document)
    assert report["operations"] == report["tools"] == report["rest"] == len(operations)
    explained = [note for note in report["notes"] if note.startswith("tool ")]
    assert len(explained) == len(operations)


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_rest_and_mcp_call_the_same_consumed_operation(name: str) -> None:
    document = convert(name, rest=True)
    rest, mcp = document["capability"]["exposes"]
    rest_calls = [op["call"] for resource in rest["resources"] for op in resource["operations"]]
    tool_calls = [tool["call"] for tool in mcp["tools"]]
    targets = {f"{op['namespace']}.{name}" for name, op in consumed(document).items()}
    assert sorted(rest_calls) == sorted(tool_calls) == sorted(targets)


def test_names_and_base_uris_follow_the_reference() -> None:
    petstore = convert("petstore-3.0.yaml")
    (block,) = petstore["capability"]["consumes"]
    assert (block["namespace"], block["baseUri"]) == ("petstore", "https://petstore.swagger.io/v1")
    assert [(r["name"], r["path"]) for r in block["resources"]] == [
        ("pets", "/pets"),
        ("pets-pet-id", "/pets/{{petId}}"),
    ]
    operations = consumed(petstore)
    assert list(operations) == ["list-pets", "create-pet", "show-pet-by-id", "delete-pet"]
    assert {"name": "limit", "in": "query"} in operations["list-pets"]["inputParameters"]
    assert {"name": "name", "in": "body"} in operations["create-pet"]["inputParameters"]

    swagger = consumed(convert("petstore-2.0.yaml"))
    assert (
        convert("petstore-2.0.yaml")["capability"]["consumes"][0]["baseUri"]
        == "https://petstore.swagger.io/v1"
    )
    assert {"name": "petId", "in": "path"} in swagger["show-pet-by-id"]["inputParameters"]

    complex_api = convert("complex-api.yaml")
    (block,) = complex_api["capability"]["consumes"]
    assert (block["namespace"], block["baseUri"]) == ("complex-api", "https://api.complex.io/v2")
    assert block["authentication"] == {"type": "bearer", "token": "{{COMPLEX_API_TOKEN}}"}
    assert complex_api["binds"][0]["keys"] == {"COMPLEX_API_TOKEN": "COMPLEX_API_TOKEN"}

    assert convert("petstore-3.1.yaml")["capability"]["consumes"][0]["namespace"] == "petstore-31"


def test_missing_operation_ids_and_servers() -> None:
    names = list(consumed(convert("no-operation-ids.yaml")))
    assert names == ["get-widgets", "post-widgets", "delete-widgets-widget-id"]
    conversion = import_file(FIXTURES / "no-servers.yaml", Options())
    assert conversion.document["capability"]["consumes"][0]["baseUri"] == "https://api.example.com"
    assert any("No servers" in warning for warning in conversion.warnings)


def test_openapi_31_nullable_types_become_their_non_null_type() -> None:
    (_, mcp) = convert("petstore-3.1.yaml", rest=True)["capability"]["exposes"]
    tools = {tool["name"]: {p["name"]: p for p in tool.get("inputParameters", [])} for tool in mcp["tools"]}
    assert tools["list-pets"]["status"]["type"] == "string"
    assert tools["list-pets"]["limit"] == {
        "name": "limit",
        "type": "integer",
        "description": "The limit query parameter.",
        "required": False,
    }
    assert (tools["create-pet"]["tag"]["type"], tools["create-pet"]["tag"]["required"]) == ("string", False)
    assert tools["create-pet"]["name"]["required"] is True


def write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "api.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def api(paths: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "Zoo", "version": "1"},
        "servers": [{"url": "https://zoo.example/v1/"}],
        "paths": paths,
        **extra,
    }


def test_names_are_stable_and_collision_free(tmp_path: Path) -> None:
    answer = {"responses": {"200": {"description": "ok"}}}
    document = api(
        {
            "/animals": {
                "get": {"operationId": "getAnimal", **answer},
                "post": {"operationId": "get_animal", **answer},
            },
            "/animals/{id}": {"get": {"operationId": "getAnimal", **answer}, "delete": answer},
            "/animals-id": {"delete": answer},
        }
    )
    path = write(tmp_path, document)
    first = import_file(path, Options()).document
    assert list(consumed(first)) == [
        "get-animal",
        "get-animal-2",
        "get-animal-3",
        "delete-animals-id",
        "delete-animals-id-2",
    ]
    assert import_file(path, Options()).document == first
    assert first["capability"]["consumes"][0]["baseUri"] == "https://zoo.example/v1"


def test_refs_are_resolved_and_recursive_schemas_end(tmp_path: Path) -> None:
    components = {
        "schemas": {
            "Node": {
                "type": "object",
                "description": "A tree node.",
                "required": ["label"],
                "properties": {
                    "label": {"$ref": "#/components/schemas/Label"},
                    "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
                    "parent": {"$ref": "#/components/schemas/Node"},
                },
            },
            "Label": {"type": "string", "enum": ["a", "b"], "description": "The label."},
            "Named": {
                "allOf": [
                    {"$ref": "#/components/schemas/Node"},
                    {"properties": {"weight": {"type": "number"}}},
                ]
            },
        },
        "parameters": {"Depth": {"name": "depth", "in": "query", "schema": {"type": "integer"}}},
    }
    body = {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Named"}}},
    }
    document = api(
        {
            "/nodes": {
                "post": {
                    "operationId": "addNode",
                    "parameters": [{"$ref": "#/components/parameters/Depth"}],
                    "requestBody": body,
                    "responses": {"201": {"description": "ok"}},
                }
            }
        },
        components=components,
    )
    conversion = import_file(write(tmp_path, document), Options())
    (tool,) = conversion.document["capability"]["exposes"][0]["tools"]
    inputs = {p["name"]: p for p in tool["inputParameters"]}
    assert {name: (p["type"], p["required"]) for name, p in inputs.items()} == {
        "depth": ("integer", False),
        "label": ("string", True),
        "children": ("array", False),
        "parent": ("object", False),
        "weight": ("number", False),
    }
    assert inputs["label"]["description"] == "The label. One of: a, b."
    assert consumed(conversion.document)["add-node"]["body"] == {
        "type": "json",
        "data": {name: "{{" + name + "}}" for name in ("label", "children", "parent", "weight")},
    }


UNSUPPORTED = {
    "callbacks": (
        {
            "post": {
                "operationId": "subscribe",
                "callbacks": {"onEvent": {}},
                "responses": {"201": {"description": "ok"}},
            }
        },
        {},
        "POST /hooks (operationId subscribe): callbacks",
    ),
    "cookie auth": (
        {
            "get": {
                "operationId": "listHooks",
                "security": [{"session": []}],
                "responses": {"200": {"description": "ok"}},
            }
        },
        {"securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": "SID"}}},
        "GET /hooks (operationId listHooks): security: 'session' is cookie authentication",
    ),
    "oneOf body": (
        {
            "put": {
                "operationId": "setHook",
                "requestBody": {
                    "content": {
                        "application/json": {"schema": {"oneOf": [{"type": "string"}, {"type": "object"}]}}
                    }
                },
                "responses": {"200": {"description": "ok"}},
            }
        },
        {},
        "PUT /hooks (operationId setHook): the request body is a oneOf/anyOf of 2 schemas of different types",
    ),
}


@pytest.mark.parametrize("case", list(UNSUPPORTED))
def test_what_cannot_be_converted_faithfully_is_refused_by_name(case: str, tmp_path: Path) -> None:
    operation, components, message = UNSUPPORTED[case]
    ok = {"get": {"operationId": "ping", "responses": {"200": {"description": "ok"}}}}
    path = write(tmp_path, api({"/hooks": operation, "/ping": ok}, components=components))
    output = tmp_path / "capability.yaml"

    refused = host("import", "openapi", str(path), "-o", str(output), cwd=tmp_path)
    assert refused.returncode == 1
    assert message in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not output.exists()

    skipped = host("import", "openapi", str(path), "-o", str(output), "--skip-unsupported", cwd=tmp_path)
    assert skipped.returncode == 0, skipped.stderr
    assert f"warning: skipped {message}" in skipped.stderr
    assert list(consumed(yaml.safe_load(output.read_text()))) == ["ping"]


def test_a_oneof_body_of_one_type_is_one_whole_body_input(tmp_path: Path) -> None:
    schemas = {"Cat": {"type": "object", "title": "Cat"}, "Dog": {"type": "object", "title": "Dog"}}
    body = {
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [{"$ref": "#/components/schemas/Cat"}, {"$ref": "#/components/schemas/Dog"}]
                }
            }
        }
    }
    document = api(
        {
            "/pets": {
                "post": {
                    "operationId": "addPet",
                    "requestBody": body,
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
        components={"schemas": schemas},
    )
    conversion = import_file(write(tmp_path, document), Options())
    (tool,) = conversion.document["capability"]["exposes"][0]["tools"]
    assert tool["inputParameters"] == [
        {"name": "body", "type": "object", "description": "One of: Cat, Dog.", "required": False}
    ]
    assert consumed(conversion.document)["add-pet"]["inputParameters"] == [{"name": "body", "in": "body"}]


def test_an_unreadable_document_is_a_clear_error(tmp_path: Path) -> None:
    not_openapi = tmp_path / "capability.yaml"
    not_openapi.write_text("naftiko: 1.0.0-alpha2\n")
    for target, message in (
        (not_openapi, "not an OpenAPI document"),
        (tmp_path / "absent.yaml", "cannot read"),
    ):
        result = host("import", "openapi", str(target), cwd=tmp_path)
        assert (result.returncode, result.stdout) == (1, "")
        assert message in result.stderr and "Traceback" not in result.stderr


def test_help_lists_import() -> None:
    result = host("--help", cwd=Path.cwd())
    assert "import" in result.stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("listAllPets", "list-all-pets"),
        ("Petstore API", "petstore-api"),
        ("MyAwesomeService", "my-awesome-service"),
        ("/users/{id}", "users-id"),
        ("/pets/{petId}", "pets-pet-id"),
    ],
)
def test_kebab_case_as_the_reference(text: str, expected: str) -> None:
    from host.openapi.names import kebab

    assert kebab(text) == expected


SCHEMES: dict[str, tuple[dict[str, Any], dict[str, Any], str | None]] = {
    "apiKey": (
        {"type": "apiKey", "name": "X-API-Key", "in": "header"},
        {"type": "apikey", "key": "X-API-Key", "value": "{{ZOO_API_KEY}}", "placement": "header"},
        None,
    ),
    "bearer": ({"type": "http", "scheme": "bearer"}, {"type": "bearer", "token": "{{ZOO_TOKEN}}"}, None),
    "basic": (
        {"type": "http", "scheme": "basic"},
        {"type": "basic", "username": "{{ZOO_USERNAME}}", "password": "{{ZOO_PASSWORD}}"},
        None,
    ),
    "digest": (
        {"type": "http", "scheme": "digest"},
        {"type": "digest", "username": "{{ZOO_USERNAME}}", "password": "{{ZOO_PASSWORD}}"},
        "Digest authentication mapped",
    ),
    "oauth2": (
        {"type": "oauth2", "flows": {}},
        {"type": "bearer", "token": "{{ZOO_ACCESS_TOKEN}}"},
        "oauth2",
    ),
    "openIdConnect": (
        {"type": "openIdConnect", "openIdConnectUrl": "https://id.example/.well-known/openid-configuration"},
        {"type": "bearer", "token": "{{ZOO_ACCESS_TOKEN}}"},
        "openIdConnect",
    ),
}


@pytest.mark.parametrize("kind", list(SCHEMES))
def test_security_schemes_become_authentication_with_bound_variables(kind: str, tmp_path: Path) -> None:
    scheme, expected, warning = SCHEMES[kind]
    ping = {"get": {"operationId": "ping", "responses": {"200": {"description": "ok"}}}}
    document = api({"/ping": ping}, components={"securitySchemes": {"s": scheme}}, security=[{"s": []}])
    conversion = import_file(write(tmp_path, document), Options())
    assert conversion.document["capability"]["consumes"][0]["authentication"] == expected
    assert conversion.document["binds"][0]["keys"] == {v: v for v in conversion.variables}
    if warning:
        assert any(warning in w for w in conversion.warnings), conversion.warnings
    assert schema_errors(conversion.document, "1.0.0-alpha3") == []


def test_a_scheme_without_type_is_refused_by_name(tmp_path: Path) -> None:
    ping = {"get": {"operationId": "ping", "responses": {"200": {"description": "ok"}}}}
    document = api({"/ping": ping}, components={"securitySchemes": {"broken": {}}}, security=[{"broken": []}])
    (refusal,) = import_file(write(tmp_path, document), Options()).refusals
    assert (
        str(refusal)
        == "GET /ping (operationId ping): security: 'broken': missing type authentication is not supported"
    )


def test_config_takes_path_or_openapi_not_both(tmp_path: Path) -> None:
    from host.config import load_config
    from host.errors import StartupError

    config = tmp_path / "host.toml"
    config.write_text('[[capabilities]]\nopenapi = "api.yaml"\n')
    (entry,) = load_config(config).capabilities
    assert entry.path == entry.openapi == tmp_path / "api.yaml"
    config.write_text('[[capabilities]]\nopenapi = "api.yaml"\npath = "other.yaml"\n')
    with pytest.raises(StartupError, match="give either path"):
        load_config(config)
