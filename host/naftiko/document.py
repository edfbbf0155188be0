"""Naftiko 1.0.0-alpha2 documents as lenient pydantic models.

Real capability files are messy (the catalogue is machine-generated; only a
handful pass the official schema). :func:`normalise` rewrites the known
dialects into the schema's shapes and records one warning per deviation; the
models then accept unknown keys, so nothing valid is lost and nothing is
silently reinterpreted.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

SPEC_VERSION = "1.0.0-alpha2"
# alpha3's schema differs from alpha2's only in this constant: both are read the same way.
SUPPORTED_VERSIONS = (SPEC_VERSION, "1.0.0-alpha3")


class Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, coerce_numbers_to_str=True)


class Bind(Lenient):
    namespace: str = "env"
    location: str | None = None
    keys: dict[str, str] = {}


class AuthSpec(Lenient):
    type: str
    token: str | None = None
    username: str | None = None
    password: str | None = None
    key: str | None = None
    value: str | None = None
    placement: str | None = None


class InputParameter(Lenient):
    name: str
    in_: str | None = Field(None, alias="in")
    value: Any = None
    type: str | None = None
    description: str | None = None
    required: bool | None = None
    pattern: str | None = None

    @field_validator("type", mode="before")
    @classmethod
    def _type_text(cls, value: Any) -> Any:
        return value[0] if isinstance(value, list) and value else value


class OutputParameter(Lenient):
    name: str | None = None
    type: str | None = None
    value: Any = None
    const: Any = None
    mapping: str | None = None
    maxLength: int | None = None
    properties: dict[str, OutputParameter] | None = None
    items: OutputParameter | None = None
    values: OutputParameter | None = None

    @field_validator("items", mode="before")
    @classmethod
    def _items_list(cls, value: Any) -> Any:
        # Orchestrated outputs declare array items as a list of named fields: an object of them.
        if isinstance(value, list):
            fields = {
                str(item.get("name")): item for item in value if isinstance(item, dict) and item.get("name")
            }
            return {"type": "object", "properties": fields}
        return value


class ConsumedOperationSpec(Lenient):
    name: str
    method: str = "GET"
    path: str = ""  # dialect: appended to the resource's path
    description: str = ""
    inputParameters: list[Any] = []
    body: Any = None
    outputRawFormat: str = "json"
    outputSchema: str | None = None
    outputParameters: list[OutputParameter] = []


class ConsumedResourceSpec(Lenient):
    name: str | None = None
    path: str = ""
    inputParameters: list[Any] = []
    operations: list[Any] = []


class ConsumesSpec(Lenient):
    type: str = "http"
    namespace: str
    baseUri: str = ""
    description: str = ""
    authentication: AuthSpec | None = None
    inputParameters: list[Any] = []
    resources: list[Any] = []


class ExposedOperationSpec(Lenient):
    method: str = "GET"
    name: str = ""
    description: str = ""
    inputParameters: list[InputParameter] = []
    call: str | None = None
    with_: dict[str, Any] | None = Field(None, validation_alias=AliasChoices("with", "with_"))
    outputParameters: list[OutputParameter] = []
    steps: list[Any] | None = None
    mappings: list[Any] = []
    ref: str | None = None


class ExposedResourceSpec(Lenient):
    path: str
    name: str = ""
    description: str = ""
    inputParameters: list[InputParameter] = []
    operations: list[Any] = []  # validated one by one: one bad operation leaves its siblings served
    forward: Any = None


class ToolSpec(ExposedOperationSpec):
    name: str
    label: str | None = None
    hints: dict[str, Any] = {}


class McpResourceSpec(Lenient):
    name: str
    label: str | None = None
    uri: str
    description: str = ""
    mimeType: str | None = None
    call: str | None = None
    with_: dict[str, Any] | None = Field(None, validation_alias=AliasChoices("with", "with_"))
    location: str | None = None
    outputParameters: list[OutputParameter] = []


class PromptSpec(Lenient):
    name: str
    label: str | None = None
    description: str = ""
    arguments: list[dict[str, Any]] = []
    template: list[dict[str, Any]] = []
    location: str | None = None


def normalise(raw: dict[str, Any], warn: Any) -> dict[str, Any]:
    """Rewrite known dialects in place into schema shapes, calling ``warn(path, message)`` for each."""
    info = raw.get("info")
    if isinstance(info, dict) and "label" not in info and "title" in info:
        info["label"] = info.pop("title")
        warn("info.title", "dialect: 'title' read as 'label'")
    capability = raw.get("capability")
    if not isinstance(capability, dict):
        return raw
    for index, consumes in enumerate(capability.get("consumes") or []):
        if isinstance(consumes, dict):
            path = f"capability.consumes[{index}]"
            if "authentication" not in consumes and isinstance(consumes.get("auth"), dict):
                consumes["authentication"] = consumes.pop("auth")
                warn(f"{path}.auth", "dialect: 'auth' read as 'authentication'")
            _normalise_auth(consumes.get("authentication"), f"{path}.authentication", warn)
            for r_index, resource in enumerate(consumes.get("resources") or []):
                operations = resource.get("operations") if isinstance(resource, dict) else None
                for o_index, op in enumerate(operations if isinstance(operations, list) else []):
                    if isinstance(op, dict) and "name" not in op and "id" in op:
                        op["name"] = op.pop("id")
                        warn(
                            f"{path}.resources[{r_index}].operations[{o_index}].id",
                            "dialect: 'id' read as 'name'",
                        )
    return raw


def _normalise_auth(auth: Any, path: str, warn: Any) -> None:
    if not isinstance(auth, dict):
        return
    kind = str(auth.get("type", ""))
    if kind == "apiKey":
        auth["type"] = "apikey"
        warn(f"{path}.type", "dialect: 'apiKey' read as 'apikey'")
    if auth.get("type") == "apikey":
        _normalise_apikey(auth, path, warn)
    elif auth.get("type") == "bearer" and "token" not in auth and isinstance(auth.get("value"), str):
        auth["token"] = auth.pop("value")
        if str(auth.get("placement", "header")).lower() == "header":  # where a bearer token goes anyway
            auth.pop("placement", None)
        warn(path, "dialect: bearer 'value' read as 'token'")


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def _normalise_apikey(auth: dict[str, Any], path: str, warn: Any) -> None:
    """The catalogue's apikey dialects, read as the schema's ``{key, value, placement}``.

    ``{in, name, value}``; ``{header, value|token}`` and ``{header, key: '{{VALUE}}'}`` (the header's
    name under ``header``); ``token`` for ``value``; ``{headers: {A: v, B: w}}``, one key per header
    (kept as ``headers`` for the second and later ones).
    """
    if "key" not in auth and "name" in auth:
        # catalogue dialect {in, name, value} for the schema's {placement, key, value}
        auth["key"] = auth.pop("name")
        if "in" in auth:
            auth["placement"] = auth.pop("in")
        warn(path, "dialect: apikey {in, name, value} read as {placement, key, value}")
    header = auth.get("header")
    if isinstance(header, str) and ("key" not in auth or _is_template(auth["key"])):
        if _is_template(auth.get("key")) and "value" not in auth and "token" not in auth:
            auth["value"] = auth.pop("key")
        auth["key"] = auth.pop("header")
        auth.setdefault("placement", "header")
        warn(path, "dialect: apikey {header, value} read as {key: <header>, value, placement: header}")
    if "value" not in auth and isinstance(auth.get("token"), str):
        auth["value"] = auth.pop("token")
        warn(path, "dialect: apikey 'token' read as 'value'")
    headers = auth.get("headers")
    if "key" not in auth and isinstance(headers, dict) and headers:
        (first, value), *others = headers.items()
        auth.update(key=str(first), value=value, placement="header", headers=dict(others))
        warn(path, f"dialect: apikey headers read as one key per header ({', '.join(map(str, headers))})")
