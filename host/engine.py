"""Calling operations: arguments in, upstream response out.

:func:`bind` turns a plugin's :class:`~host.model.ConsumedApi` plus host.toml
and the environment into a :class:`BoundApi` (a concrete base URL, a resolved
credential, a timeout, mock on or off). Every problem found there is a start-up
error naming the variable or key to fix.

:class:`Engine` owns the one shared ``aiohttp.ClientSession`` and runs a call:
validate the arguments against the declared schema, build the upstream
request, send it (or ask the mock), and classify what came back. Adapters get
an :class:`~host.model.UpstreamResponse` for 2xx-4xx answers and a
:class:`~host.errors.CallError` for everything else.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from host.config import ConsumeConfig, HostConfig
from host.errors import (
    InvalidArguments,
    NotConfigured,
    StartupError,
    UpstreamBadStatus,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from host.model import (
    Arguments,
    ConsumedApi,
    ConsumedOperation,
    EnvVar,
    JsonSchema,
    MockRequest,
    UpstreamResponse,
)
from host.plugins import Catalog
from host.secrets import Secret

log = logging.getLogger("host.engine")

_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.-]+)\}")
MAX_UPSTREAM_BODY = 16 * 1024 * 1024  # a runaway upstream answer must not exhaust memory


@dataclass(frozen=True)
class BoundApi:
    """A consumed API made concrete for this process."""

    api: ConsumedApi
    base_url: str
    authorization: Secret | None
    timeout: aiohttp.ClientTimeout
    mock: bool


def bind(api: ConsumedApi, settings: ConsumeConfig, environ: Mapping[str, str], origin: str) -> BoundApi:
    """Resolve ``api`` against its ``[consumes.<namespace>]`` settings and the environment.

    In mock mode nothing is read from the environment: the quickstart needs no secrets.
    """
    where = f"[consumes.{api.namespace}] (from {origin})"
    timeout = aiohttp.ClientTimeout(total=settings.timeout, sock_connect=min(3.0, settings.timeout))
    if settings.mock:
        return BoundApi(api, settings.base_uri or "mock://" + api.namespace, None, timeout, mock=True)

    if settings.base_uri:
        # The override replaces the whole template, so its variables are not needed.
        base_url = settings.base_uri
    else:
        values = {var.name: _read_env(var, environ, where) for var in api.variables}
        missing = [name for name in _PLACEHOLDER.findall(api.base_uri) if name not in values]
        if missing:
            raise StartupError(
                f"{where}: base URI {api.base_uri!r} needs {', '.join(missing)}; set base_uri in host.toml"
            )
        base_url = _PLACEHOLDER.sub(lambda m: values[m.group(1)], api.base_uri).rstrip("/")
    authorization = None
    if api.auth is not None:
        # Register the bare token for redaction too, not only the header value.
        authorization = Secret("Bearer " + Secret(_read_env(api.auth.token, environ, where)).reveal())
    return BoundApi(api, base_url, authorization, timeout, mock=False)


def _read_env(var: EnvVar, environ: Mapping[str, str], where: str) -> str:
    value = environ.get(var.name, var.default)
    hint = f" ({var.help})" if var.help else ""
    if value is None or value == "":
        raise StartupError(
            f"{where}: environment variable {var.name} is not set{hint}; "
            f"export it, or set mock = true under {where.split(' ')[0]} to run without the upstream"
        )
    if var.choices and value not in var.choices:
        shown = "***" if var.secret else repr(value)
        raise StartupError(f"{where}: {var.name}={shown} must be one of {', '.join(var.choices)}")
    if var.pattern and not re.fullmatch(var.pattern, value):
        shown = "***" if var.secret else repr(value)
        raise StartupError(f"{where}: {var.name}={shown} does not match {var.pattern}")
    return value


class ArgumentValidator:
    """A JSON Schema compiled once, reporting errors as ``{path: [message]}``."""

    def __init__(self, schema: JsonSchema) -> None:
        Draft202012Validator.check_schema(schema)
        self.schema = schema
        self._validator = Draft202012Validator(schema)

    def check(self, arguments: Arguments) -> None:
        errors: dict[str, list[str]] = {}
        for error in sorted(self._validator.iter_errors(arguments), key=lambda e: list(e.absolute_path)):
            key, message = _describe_error(error)
            errors.setdefault(key, []).append(message)
        if errors:
            raise InvalidArguments(errors)


def _describe_error(error: ValidationError) -> tuple[str, str]:
    path = [str(part) for part in error.absolute_path]
    if error.validator == "required":
        missing = re.match(r"'([^']+)' is a required property", error.message)
        if missing:
            return ".".join([*path, missing.group(1)]), "is required"
    if error.validator == "additionalProperties":
        return ".".join(path) or "(arguments)", error.message
    where = ".".join(path) or "(arguments)"
    # jsonschema quotes the offending instance; it may be long or sensitive, so
    # describe the rule instead of echoing the value.
    rule = error.validator
    expected: Any = error.validator_value
    if rule == "type":
        return where, f"must be of type {expected}"
    if rule == "enum":
        return where, "must be one of " + ", ".join(str(choice) for choice in expected)
    if rule in {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}:
        return where, f"must be {_RULE_WORDS[str(rule)]} {expected}"
    if rule == "pattern":
        return where, f"must match {expected}"
    if rule in {"minLength", "maxLength", "minItems", "maxItems"}:
        return where, f"{_RULE_WORDS[str(rule)]} {expected}"
    return where, error.message


_RULE_WORDS = {
    "minimum": "at least",
    "maximum": "at most",
    "exclusiveMinimum": "greater than",
    "exclusiveMaximum": "less than",
    "minLength": "must have at least this many characters:",
    "maxLength": "must have at most this many characters:",
    "minItems": "must have at least this many items:",
    "maxItems": "must have at most this many items:",
}


@dataclass(frozen=True)
class BoundOperation:
    ref: str
    bound: BoundApi
    operation: ConsumedOperation
    validator: ArgumentValidator


class Engine:
    """Runs operations. Create with :meth:`from_catalog`, then ``await start()``."""

    def __init__(self, operations: dict[str, BoundOperation], apis: dict[str, BoundApi]) -> None:
        self.operations = operations
        self.apis = apis
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_catalog(cls, catalog: Catalog, config: HostConfig, environ: Mapping[str, str]) -> Engine:
        apis: dict[str, BoundApi] = {}
        operations: dict[str, BoundOperation] = {}
        unknown = sorted(set(config.consumes) - set(catalog.apis))
        for namespace in unknown:
            log.warning("%s: [consumes.%s] matches no loaded capability; ignored", config.path, namespace)
        for namespace, contributed in catalog.apis.items():
            bound = bind(contributed.item, config.consume(namespace), environ, contributed.origin)
            apis[namespace] = bound
            for operation in contributed.item.operations:
                ref = f"{namespace}.{operation.name}"
                try:
                    validator = ArgumentValidator(operation.input_schema)
                except Exception as exc:
                    raise StartupError(
                        f"operation {ref} from {contributed.origin}: invalid input_schema: {exc}"
                    ) from None
                operations[ref] = BoundOperation(ref, bound, operation, validator)
        return cls(operations, apis)

    async def start(self) -> None:
        # One pooled session for every upstream; per-API limits come with the timeouts.
        connector = aiohttp.TCPConnector(limit=100, limit_per_host=50, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True, trust_env=False)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def validator_for(self, ref: str) -> ArgumentValidator:
        return self.operations[ref].validator

    async def call(self, ref: str, arguments: Arguments, *, validated: bool = False) -> UpstreamResponse:
        """Call operation ``ref``. 2xx-4xx come back as a response; anything else raises."""
        target = self.operations[ref]
        if not validated:
            target.validator.check(arguments)
        operation, bound = target.operation, target.bound
        path = _render_path(operation.path, arguments)
        body = arguments.get(operation.body) if operation.body else None
        started = time.perf_counter()
        if bound.mock:
            if operation.mock is None:
                raise NotConfigured(f"operation {ref} has no mock; set mock = false for its namespace")
            response = operation.mock(MockRequest(operation.method, path, arguments, body))
            response = UpstreamResponse(
                response.status, response.body, response.content_type, response.headers, mocked=True
            )
        else:
            response = await self._send(target, path, arguments, body)
        log.info(
            "%s %s -> %d%s (%.1f ms)",
            operation.method,
            ref,
            response.status,
            " MOCK" if response.mocked else "",
            (time.perf_counter() - started) * 1000,
        )
        if response.status >= 500:
            raise UpstreamBadStatus(
                f"upstream {bound.api.namespace} answered {response.status}",
                extra={"upstream_status": response.status},
            )
        return response

    async def _send(
        self, target: BoundOperation, path: str, arguments: Arguments, body: Any
    ) -> UpstreamResponse:
        assert self._session is not None, "Engine.start() was not awaited"
        operation, bound = target.operation, target.bound
        namespace = bound.api.namespace
        headers = {**bound.api.headers, **operation.headers}
        if bound.authorization is not None:
            headers["Authorization"] = bound.authorization.reveal()
        data: bytes | None = None
        if operation.body is not None and body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        query = {
            name: _query_value(arguments[name]) for name in operation.query if arguments.get(name) is not None
        }
        try:
            async with self._session.request(
                operation.method,
                bound.base_url + path,
                params=query or None,
                data=data,
                headers=headers,
                timeout=bound.timeout,
                allow_redirects=False,
            ) as resp:
                payload = await _read_capped(resp, namespace)
                return UpstreamResponse(
                    resp.status,
                    payload,
                    resp.headers.get("Content-Type", "application/octet-stream"),
                    {k: v for k, v in resp.headers.items() if k.lower() == "retry-after"},
                )
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamTimeout(
                f"upstream {namespace} did not answer within {bound.timeout.total:g} s"
            ) from None
        except aiohttp.ClientConnectorError as exc:
            reason = exc.os_error.strerror or type(exc.os_error).__name__
            raise UpstreamUnreachable(f"upstream {namespace} is unreachable: {reason}") from None
        except aiohttp.ServerDisconnectedError:
            raise UpstreamUnreachable(
                f"upstream {namespace} closed the connection without answering"
            ) from None
        except aiohttp.ClientError as exc:
            raise UpstreamUnreachable(f"upstream {namespace} failed: {type(exc).__name__}") from None


async def _read_capped(resp: aiohttp.ClientResponse, namespace: str) -> bytes:
    if resp.content_length is not None and resp.content_length > MAX_UPSTREAM_BODY:
        raise UpstreamBadStatus(f"upstream {namespace} answer is too large ({resp.content_length} bytes)")
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_UPSTREAM_BODY:
            raise UpstreamBadStatus(f"upstream {namespace} answer exceeds {MAX_UPSTREAM_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _render_path(template: str, arguments: Arguments) -> str:
    def fill(match: re.Match[str]) -> str:
        value = arguments.get(match.group(1))
        if value is None:
            raise InvalidArguments({match.group(1): ["is required (path parameter)"]})
        return quote(str(value), safe="")

    return _PLACEHOLDER.sub(fill, template)


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
