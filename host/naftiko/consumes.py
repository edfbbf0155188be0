"""The consuming side of a capability: binds, consumed APIs, their authentication and operations."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

from host import binary_formats, templates
from host.formats import KNOWN_FORMATS, with_schema
from host.model import (
    ApiKeyAuth,
    Auth,
    BasicAuth,
    BearerAuth,
    ConsumedApi,
    ConsumedOperation,
    DigestAuth,
    EnvVar,
    UnsupportedAuth,
    credentials,
)
from host.naftiko.context import ConsumedOp, Context, FileError, confined_path
from host.naftiko.document import (
    AuthSpec,
    Bind,
    ConsumedOperationSpec,
    ConsumedResourceSpec,
    ConsumesSpec,
    InputParameter,
)
from host.naftiko.requests import CONTENT_TYPES, NaftikoRequest

SECRET_WORDS = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASS|CREDENTIAL|AUTH", re.IGNORECASE)
ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}


def compile_binds(ctx: Context, binds: list[Any]) -> None:
    """Each bind's keys become variables: read from a ``file://`` document, else from the environment."""
    for index, raw in enumerate(binds):
        path = f"binds[{index}]"
        bind = ctx.model(Bind, raw, path)
        if bind is None:
            continue
        file_values = _bind_file(ctx, bind.location, path) if bind.location else None
        for var, provider in bind.keys.items():
            secret = bool(SECRET_WORDS.search(var))
            if file_values is None:
                ctx.variables.append(EnvVar(str(provider), placeholder=var, secret=secret))
                continue
            value = file_values.get(provider)
            if value is None:
                ctx.warn(f"{path}.keys.{var}", f"{provider!r} not found in {bind.location}")
            ctx.variables.append(
                EnvVar(
                    provider, default=None if value is None else str(value), placeholder=var, secret=secret
                )
            )


def _bind_file(ctx: Context, location: str, path: str) -> dict[str, Any] | None:
    if not location.startswith("file://"):
        ctx.warn(
            f"{path}.location",
            f"{location.split(':')[0]}:// binds are not supported; values come from the environment instead",
        )
        return None
    target = Path(unquote(urlsplit(location).path))
    if location.startswith("file:///./"):
        target = Path(location[len("file:///./") :])
    try:
        text = target.read_text(encoding="utf-8")
        data = json.loads(text) if target.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        ctx.warn(
            f"{path}.location",
            f"cannot read {target}: {type(exc).__name__}; values come from the environment instead",
        )
        return None
    return data if isinstance(data, dict) else {}


def compile_consumes(ctx: Context, raw: Any, path: str) -> None:
    """One consumed API, appended to ``ctx.out.apis``; its operations are recorded in ``ctx.ops``."""
    if isinstance(raw, dict) and "location" in raw and not raw.get("resources"):
        raw = _import_consumes(ctx, raw, path)
        if raw is None:
            return
    spec: ConsumesSpec | None = ctx.model(ConsumesSpec, raw, path)
    if spec is None:
        return
    if spec.type != "http":
        ctx.warn(f"{path}.type", f"consumes type {spec.type!r} is not supported; disabled")
        return
    base_uri = spec.baseUri.strip()
    if base_uri.endswith("/"):
        base_uri = base_uri.rstrip("/")
        ctx.warn(f"{path}.baseUri", "trailing '/' removed")
    variables = list(ctx.variables)
    known = {v.key for v in variables}
    for name in templates.names(base_uri):
        short = name.split(".", 1)[1] if "." in name else name
        if name not in known and short not in known:
            variables += _guess_env(ctx, name, spec.namespace)
    auth = _auth(ctx, spec.authentication, f"{path}.authentication")
    variables += _credential_variables(auth, {v.key for v in variables})
    operations: list[ConsumedOperation] = []
    api_params = ctx.params(spec.inputParameters, f"{path}.inputParameters")
    ctx.api_params[spec.namespace] = api_params
    for r_index, resource in ctx.items(ConsumedResourceSpec, spec.resources, f"{path}.resources"):
        r_path = f"{path}.resources[{r_index}]"
        resource_params = ctx.params(resource.inputParameters, f"{r_path}.inputParameters")
        for o_index, op in ctx.items(ConsumedOperationSpec, resource.operations, f"{r_path}.operations"):
            op_path = f"{r_path}.operations[{o_index}]"
            params = [
                *api_params,
                *resource_params,
                *ctx.params(op.inputParameters, f"{op_path}.inputParameters"),
            ]
            variables += [
                EnvVar(p.name, secret=bool(SECRET_WORDS.search(p.name)))
                for p in params
                if p.in_ == "environment"
            ]
            built = _operation(ctx, spec.namespace, _joined(resource.path, op.path), op, params, op_path)
            if built is not None:
                operations.append(built)
    ctx.out.apis.append(
        ConsumedApi(
            namespace=spec.namespace,
            base_uri=base_uri,
            operations=tuple(operations),
            variables=tuple(variables),
            auth=auth,
            description=spec.description,
        )
    )


def _joined(resource_path: str, operation_path: str) -> str:
    """The path under the base URI: ``forecast`` is ``/forecast`` (the reference drops the ``/``)."""
    path = resource_path + operation_path
    return path if not path or path.startswith(("/", "?")) else "/" + path


def _import_consumes(ctx: Context, raw: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The import form ``{import|openapi, location, as}``: a consumes block kept in another file."""
    location = str(raw["location"])
    target = (ctx.file.parent / location.removeprefix("file://")).resolve()
    try:
        document = yaml.safe_load(target.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        ctx.warn(f"{path}.location", f"imported consumes {location!r} cannot be read; disabled")
        return None
    blocks = document.get("consumes") if isinstance(document, dict) else None
    wanted = raw.get("import") or raw.get("openapi")
    for block in blocks if isinstance(blocks, list) else []:
        if isinstance(block, dict) and (wanted is None or block.get("namespace") == wanted):
            return {**block, "namespace": raw.get("as") or block.get("namespace")}
    ctx.warn(f"{path}.import", f"{location!r} has no consumes block {wanted!r}; disabled")
    return None


def _guess_env(ctx: Context, name: str, namespace: str) -> list[EnvVar]:
    """Environment variables that may fill a ``{name}`` nobody binds: TRATTA_ORG_UUID for {org-uuid}."""
    stem = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").upper()
    prefixes = {v.key.split("_", 1)[0] for v in ctx.variables if "_" in v.key}
    prefixes.add(re.sub(r"[^A-Za-z0-9]+", "_", namespace.split("-", 1)[0]).upper())
    names = [
        f"{prefix}_{stem}" for prefix in sorted(prefixes) if prefix and not stem.startswith(prefix + "_")
    ]
    names.append(stem)
    return [EnvVar(env_name, placeholder=name) for env_name in dict.fromkeys(names)]


def _credential_variables(auth: Auth | None, known: set[str]) -> list[EnvVar]:
    """``{{ACCESS_TOKEN}}`` in a credential that no bind names: the environment variable of that name,
    as for the base URI, so that ``host check`` and start-up name what to export. Only names spelled as
    environment variables: ``{{signature}}`` is no operator's value (a per-request signature)."""
    found: list[EnvVar] = []
    for credential in credentials(auth):
        for name in templates.names(credential, single_brace=False) if isinstance(credential, str) else []:
            short = name.split(".", 1)[-1]
            if name not in known and short not in known and ENV_NAME.fullmatch(short):
                found.append(EnvVar(short, secret=True))
                known.add(short)
    return found


def _auth(ctx: Context, spec: AuthSpec | None, path: str) -> Auth | None:
    if spec is None:
        return None
    kind = spec.type.lower()
    auth: Auth
    if kind == "bearer":
        auth = BearerAuth(spec.token or "")
    elif kind in {"basic", "digest"}:
        auth = (BasicAuth if kind == "basic" else DigestAuth)(spec.username or "", spec.password or "")
    elif kind == "apikey":
        auth = _apikey(ctx, spec, path)
    else:
        ctx.warn(
            f"{path}.type",
            f"{spec.type} authentication is not supported by this host: "
            "calls to these operations fail with a clear error (never unauthenticated)",
        )
        return UnsupportedAuth(spec.type)
    for value in credentials(auth):
        if isinstance(value, str) and value and not templates.names(value, single_brace=False):
            ctx.warn(path, "literal credential in the file: prefer a {{VAR}} bound to the environment")
    return auth


def _apikey(ctx: Context, spec: AuthSpec, path: str) -> ApiKeyAuth | UnsupportedAuth:
    placement = (spec.placement or "header").lower()
    if placement not in {"header", "query"}:
        ctx.warn(f"{path}.placement", f"placement {placement!r} unknown; sending a header")
        placement = "header"
    if not spec.key:
        ctx.warn(f"{path}.key", "apikey without a key name; calls will fail")
        return UnsupportedAuth("apikey without a key name")
    # Further headers of the same key (the catalogue's `headers` dialect, read by document.normalise).
    extra = (spec.model_extra or {}).get("headers") if placement == "header" else None
    extra_headers = tuple((str(k), str(v)) for k, v in extra.items()) if isinstance(extra, dict) else ()
    return ApiKeyAuth(spec.key, spec.value or "", placement, extra_headers)


def _operation(
    ctx: Context,
    namespace: str,
    resource_path: str,
    spec: ConsumedOperationSpec,
    params: list[InputParameter],
    path: str,
) -> ConsumedOperation | None:
    method = spec.method.upper()
    if method not in HTTP_METHODS:
        ctx.warn(f"{path}.method", f"method {spec.method!r} is not HTTP; disabled")
        return None
    fmt = (spec.outputRawFormat or "json").lower()
    if fmt not in KNOWN_FORMATS:
        ctx.warn(f"{path}.outputRawFormat", f"{fmt!r} is passed through undecoded")
        fmt = "binary"
    schema = spec.outputSchema
    if fmt == "html" and schema:
        from host import markup  # html.parser: only when a capability reads HTML

        try:
            markup.check_selector(schema)
        except ValueError as exc:
            ctx.warn(f"{path}.outputSchema", f"{exc}; every table is read")
            schema = None
    if fmt in binary_formats.BINARY_FORMATS and schema:
        schema = str(_schema_file(ctx, fmt, schema, f"{path}.outputSchema"))
    elif fmt == "protobuf":
        ctx.warn(f"{path}.outputSchema", "protobuf needs the .proto file named here; calls answer 502")
    body_type = spec.body.get("type") if isinstance(spec.body, dict) else None
    if body_type not in {None, *CONTENT_TYPES, "multipartForm", "binary"}:
        ctx.warn(f"{path}.body.type", f"body type {body_type!r} unknown; sent as text")
    ctx.ops[f"{namespace}.{spec.name}"] = ConsumedOp(namespace, spec, resource_path, params)
    return ConsumedOperation(
        name=spec.name,
        method=method,
        path=resource_path,
        description=spec.description,
        request=NaftikoRequest(method, resource_path, params, spec.body),
        output_format=with_schema(fmt, schema),
    )


def _schema_file(ctx: Context, fmt: str, location: str, path: str) -> Path:
    """The ``outputSchema`` file of an avro or protobuf operation, confined and parsed now."""
    target = confined_path(ctx, location, path)
    try:
        binary_formats.check_schema(fmt, target)
    except ValueError as exc:
        raise FileError(f"{path}: {fmt} schema {location!r} ({str(target)!r}): {exc}") from None
    return target
