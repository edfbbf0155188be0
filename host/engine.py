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

import asyncio
import base64
import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from host import templates
from host.config import ConsumeConfig, HostConfig, parse_rate
from host.errors import (
    CallError,
    InvalidArguments,
    MissingArgument,
    NotConfigured,
    StartupError,
    TooManyRequests,
    Unavailable,
    UpstreamBadStatus,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from host.model import (
    NOT_DECODED,
    ApiKeyAuth,
    ArgumentMapping,
    Arguments,
    Auth,
    BasicAuth,
    BearerAuth,
    ConsumedApi,
    ConsumedOperation,
    Credential,
    DigestAuth,
    EnvVar,
    JsonSchema,
    MockRequest,
    OutboundRequest,
    OutputMapping,
    UpstreamResponse,
)
from host.observability import CALLS, REQUEST_ID_HEADER, child, observe_upstream, request_id
from host.plugins import Catalog
from host.resilience import CircuitBreaker, TokenBucket
from host.secrets import REDACTOR, Secret

log = logging.getLogger("host.engine")

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class BoundAuth:
    """Credentials resolved for this process; secret values stay wrapped."""

    kind: str  # bearer, basic, digest, apikey, unsupported
    header: tuple[str, Secret] | None = None
    query: tuple[str, Secret] | None = None
    username: Secret | None = None
    password: Secret | None = None
    unsupported: str | None = None


@dataclass(frozen=True)
class BoundApi:
    """A consumed API made concrete for this process."""

    api: ConsumedApi
    base_url: str
    auth: BoundAuth | None
    timeout: aiohttp.ClientTimeout
    mock: bool
    variables: Mapping[str, str]
    settings: ConsumeConfig = field(default_factory=ConsumeConfig)
    breaker: CircuitBreaker = field(default_factory=lambda: CircuitBreaker(5, 30.0))
    bucket: TokenBucket | None = None

    @classmethod
    def make(
        cls,
        api: ConsumedApi,
        base_url: str,
        auth: BoundAuth | None,
        settings: ConsumeConfig,
        *,
        mock: bool,
        variables: Mapping[str, str],
    ) -> BoundApi:
        timeout = aiohttp.ClientTimeout(
            total=settings.timeout, sock_connect=min(settings.connect_timeout, settings.timeout)
        )
        bucket = TokenBucket(*parse_rate(settings.rate_limit)) if settings.rate_limit else None
        return cls(
            api,
            base_url,
            auth,
            timeout,
            mock,
            variables,
            settings,
            CircuitBreaker(settings.circuit_failures, settings.circuit_reset),
            bucket,
        )


def bind(api: ConsumedApi, settings: ConsumeConfig, environ: Mapping[str, str], origin: str) -> BoundApi:
    """Resolve ``api`` against its ``[consumes.<namespace>]`` settings and the environment.

    In mock mode nothing is read from the environment: the quickstart needs no secrets.
    """
    where = f"[consumes.{api.namespace}] (from {origin})"
    if settings.mock:
        return BoundApi.make(
            api, settings.base_uri or "mock://" + api.namespace, None, settings, mock=True, variables={}
        )

    # The override replaces the whole base URI, so variables only it needed may be absent.
    needed = set() if settings.base_uri else set(templates.names(api.base_uri))
    needed |= _credential_names(api.auth)
    mapped = [EnvVar(env_name, placeholder=key) for key, env_name in settings.variables.items()]
    values: dict[str, str] = {}
    candidates: dict[str, list[EnvVar]] = {}
    for var in [*mapped, *api.variables]:
        candidates.setdefault(var.key, []).append(var)
        if var.key not in values:
            value = _read_env(var, environ, where, required=False)
            if value is not None:
                values[var.key] = value
                if var.secret:
                    REDACTOR.add(value)
    for name in sorted(needed):
        short = name.split(".", 1)[-1]
        if name in values or short in values:
            continue
        options = candidates.get(name) or candidates.get(short) or []
        if options:
            hint = "".join(f" ({var.help})" for var in options if var.help)
            raise StartupError(
                f"{where}: environment variable {' or '.join(v.name for v in options)} is not set{hint}; "
                f"export it, or set mock = true under [consumes.{api.namespace}] to run without the upstream"
            )
        raise StartupError(
            f"{where}: {{{name}}} has no value; map it to an environment variable under "
            f"[consumes.{api.namespace}] variables, or set base_uri"
        )
    if api.operations and all(operation.static for operation in api.operations):
        return BoundApi.make(api, "static://", None, settings, mock=False, variables=values)

    def missing(name: str) -> str:
        raise StartupError(
            f"{where}: {{{name}}} in the base URI has no value; export the environment variable that "
            f"fills it, map it under variables, or set base_uri"
        )

    base_url = settings.base_uri or templates.render(api.base_uri, values, on_missing=missing).rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        raise StartupError(f"{where}: base URI {base_url!r} is not an http(s) URL; set base_uri in host.toml")
    auth = _bind_auth(api.auth, values, environ, where)
    return BoundApi.make(api, base_url, auth, settings, mock=False, variables=values)


def _credential_names(auth: Auth | None) -> set[str]:
    found: set[str] = set()
    for credential in _credentials(auth):
        if isinstance(credential, str):
            found.update(templates.names(credential, single_brace=False))
    return found


def _credentials(auth: Auth | None) -> list[Credential]:
    if isinstance(auth, BearerAuth):
        return [auth.token]
    if isinstance(auth, (BasicAuth, DigestAuth)):
        return [auth.username, auth.password]
    if isinstance(auth, ApiKeyAuth):
        return [auth.value]
    return []


def _bind_auth(
    auth: Auth | None, values: Mapping[str, str], environ: Mapping[str, str], where: str
) -> BoundAuth | None:
    def resolve(credential: Credential, what: str) -> Secret:
        if isinstance(credential, EnvVar):
            value = _read_env(credential, environ, where, required=True) or ""
        else:
            value = templates.render(credential, values, single_brace=False)
        if not value:
            raise StartupError(
                f"{where}: the {what} is empty; never sending a request without it "
                f"(check the environment variable behind {credential!r})"
            )
        return Secret(value)

    if auth is None:
        return None
    if isinstance(auth, BearerAuth):
        token = resolve(auth.token, "bearer token")
        return BoundAuth("bearer", header=("Authorization", Secret("Bearer " + token.reveal())))
    if isinstance(auth, BasicAuth):
        user, password = resolve(auth.username, "username"), resolve(auth.password, "password")
        encoded = base64.b64encode(f"{user.reveal()}:{password.reveal()}".encode()).decode()
        return BoundAuth("basic", header=("Authorization", Secret("Basic " + encoded)))
    if isinstance(auth, DigestAuth):
        return BoundAuth(
            "digest", username=resolve(auth.username, "username"), password=resolve(auth.password, "password")
        )
    if isinstance(auth, ApiKeyAuth):
        value = resolve(auth.value, f"API key {auth.name}")
        if auth.placement == "query":
            return BoundAuth("apikey", query=(auth.name, value))
        return BoundAuth("apikey", header=(auth.name, value))
    return BoundAuth("unsupported", unsupported=auth.type)


def _read_env(var: EnvVar, environ: Mapping[str, str], where: str, *, required: bool) -> str | None:
    value = environ.get(var.name, var.default)
    hint = f" ({var.help})" if var.help else ""
    if value is None or value == "":
        if not required:
            return None
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
    """A JSON Schema compiled once, reporting errors as ``{path: [message]}``.

    Valid arguments, the hot path, are confirmed by jsonschema-rs (compiled, ~150x faster than pure
    Python); only invalid ones go through ``jsonschema`` to describe every error in our own words.
    """

    def __init__(self, schema: JsonSchema) -> None:
        Draft202012Validator.check_schema(schema)
        self.schema = schema
        self._validator = Draft202012Validator(schema)
        try:
            self._fast: Any = jsonschema_rs.Draft202012Validator(dict(schema))
        except Exception:  # a schema the compiled validator cannot take is still checked, just slower
            self._fast = None

    def check(self, arguments: Arguments) -> None:
        if self._fast is not None:
            try:
                if self._fast.is_valid(arguments):
                    return
            except (TypeError, ValueError):  # a value outside JSON's types: let jsonschema judge it
                pass
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


@dataclass(frozen=True)
class Target:
    """What an exposure calls, prepared once: its schema, argument mapping and output mapping."""

    operation: str
    validator: ArgumentValidator | None  # None: the operation's own schema applies
    map_arguments: ArgumentMapping | None
    output: OutputMapping | None
    label: str = ""  # the exposure, for metrics: "POST /v1/x" or "tool x"


@dataclass(frozen=True)
class Outcome:
    """A call's result: the upstream response, and the mapped value when the exposure maps it."""

    response: UpstreamResponse
    mapped: bool = False
    value: Any = None


class Engine:
    """Runs operations. Create with :meth:`from_catalog`, then ``await start()``."""

    def __init__(self, operations: dict[str, BoundOperation], apis: dict[str, BoundApi]) -> None:
        self.operations = operations
        self.apis = apis
        self._sessions: dict[str, aiohttp.ClientSession] = {}

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
        # One pooled session per upstream: pool_size bounds the connections to each.
        for namespace, bound in self.apis.items():
            if not bound.mock:
                connector = aiohttp.TCPConnector(limit=bound.settings.pool_size, ttl_dns_cache=300)
                # The timeout is the session's: passing it with every request costs measurably more.
                self._sessions[namespace] = aiohttp.ClientSession(
                    connector=connector, timeout=bound.timeout, auto_decompress=True, trust_env=False
                )

    async def close(self) -> None:
        sessions, self._sessions = self._sessions, {}
        for session in sessions.values():
            await session.close()

    @property
    def healthy(self) -> bool:
        """False when every real upstream's circuit is open (readiness)."""
        real = [
            bound
            for bound in self.apis.values()
            if not bound.mock and not bound.base_url.startswith("static:")
        ]
        return not real or any(not bound.breaker.is_open for bound in real)

    def validator_for(self, ref: str) -> ArgumentValidator:
        return self.operations[ref].validator

    def target(
        self,
        operation: str,
        *,
        input_schema: JsonSchema | None = None,
        map_arguments: ArgumentMapping | None = None,
        output: OutputMapping | None = None,
        label: str | None = None,
    ) -> Target:
        """Prepare an exposure's call. The schema is compiled here, once."""
        validator = ArgumentValidator(input_schema) if input_schema is not None else None
        return Target(operation, validator, map_arguments, output, label or operation)

    async def run(self, target: Target, arguments: Arguments) -> Outcome:
        """Validate, map, call, and map the result: the whole path of one exposure call."""
        try:
            outcome = await self._run(target, arguments)
        except CallError as exc:
            child(CALLS, target.label, exc.slug).inc()
            raise
        status = outcome.response.status
        child(CALLS, target.label, "ok" if status < 400 else f"upstream-{status // 100}xx").inc()
        return outcome

    async def _run(self, target: Target, arguments: Arguments) -> Outcome:
        if target.validator is not None:
            target.validator.check(arguments)
        operation_arguments = target.map_arguments(arguments) if target.map_arguments else arguments
        response = await self.call(target.operation, operation_arguments)
        if target.output is None or not 200 <= response.status < 300:
            return Outcome(response)
        try:
            document = response.document()
        except ValueError as exc:
            raise UpstreamBadStatus(f"upstream answer is not valid {response.format}: {exc}") from None
        return Outcome(response, mapped=True, value=target.output(document))

    async def call(self, ref: str, arguments: Arguments, *, validated: bool = False) -> UpstreamResponse:
        """Call operation ``ref``. 2xx-4xx come back as a response; anything else raises."""
        target = self.operations[ref]
        if not validated:
            target.validator.check(arguments)
        operation, bound = target.operation, target.bound
        started = time.perf_counter()
        if bound.mock or operation.static:
            response = self._mock(target, arguments)
        else:
            request = self._build(operation, arguments, bound.variables)
            response = await self._send(target, request)
        log.debug(
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
        decoded: Any = NOT_DECODED
        if response.body and "json" in response.content_type and operation.output_format == "json":
            try:
                # Never pass a broken document on as if it were JSON; keep the parse for the mapping.
                decoded = json.loads(response.body)
            except ValueError:
                raise UpstreamBadStatus(
                    f"upstream {bound.api.namespace} answered {response.status} with invalid JSON"
                ) from None
        return replace(response, format=operation.output_format, decoded=decoded)

    def _mock(self, target: BoundOperation, arguments: Arguments) -> UpstreamResponse:
        operation = target.operation
        if operation.mock is None:
            raise NotConfigured(f"operation {target.ref} has no mock; set mock = false for its namespace")
        body = arguments.get(operation.body) if operation.body else None
        path = _render_path(operation.path, arguments) if operation.request is None else operation.path
        answer = operation.mock(MockRequest(operation.method, path, arguments, body))
        return replace(answer, mocked=True)

    @staticmethod
    def _build(
        operation: ConsumedOperation, arguments: Arguments, variables: Mapping[str, str]
    ) -> OutboundRequest:
        if operation.request is not None:
            return operation.request(arguments, variables)
        headers = dict(operation.headers)
        data: bytes | None = None
        body = arguments.get(operation.body) if operation.body else None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        query = tuple(
            (name, templates.as_text(arguments[name]))
            for name in operation.query
            if arguments.get(name) is not None
        )
        return OutboundRequest(
            operation.method, _render_path(operation.path, arguments), query, headers, data
        )

    async def _send(self, target: BoundOperation, request: OutboundRequest) -> UpstreamResponse:
        bound = target.bound
        namespace = bound.api.namespace
        auth = bound.auth
        if auth is not None and auth.unsupported:
            raise NotConfigured(
                f"operation {target.ref} needs {auth.unsupported} authentication, which this host cannot "
                f"perform; no request was sent"
            )
        wait = bound.breaker.admit()
        if wait:
            raise Unavailable(
                f"upstream {namespace} is failing; calls are refused for {wait:g} s (circuit open)",
                retry_after=wait,
            )
        if bound.bucket is not None and (wait := bound.bucket.take()):
            raise TooManyRequests(
                f"rate limit for upstream {namespace} ({bound.settings.rate_limit}) reached",
                retry_after=max(1, round(wait)),
            )
        headers = {**bound.api.headers, **request.headers}
        rid = request_id.get()
        if rid != "-":
            headers[REQUEST_ID_HEADER] = rid  # lets the upstream's logs be joined with ours
        if request.content_type:
            headers["Content-Type"] = request.content_type
        query = list(request.query)
        if auth is not None and auth.header is not None:
            headers[auth.header[0]] = auth.header[1].reveal()
        if auth is not None and auth.query is not None:
            query.append((auth.query[0], auth.query[1].reveal()))
        exchange = _Exchange(
            self._sessions[namespace],
            bound,
            request.method,
            bound.base_url + request.path,
            query,
            headers,
            request.body,
        )
        try:
            response = await self._with_retries(exchange, idempotent=request.method in IDEMPOTENT)
            if response.status == 401 and auth is not None and auth.kind == "digest":
                challenge = response.headers.get("WWW-Authenticate", "")
                headers["Authorization"] = digest_authorization(
                    challenge, request.method, exchange.url, query, auth.username, auth.password
                )
                response = await exchange.send()
        except (TimeoutError, aiohttp.ServerTimeoutError):
            bound.breaker.record(ok=False)
            raise UpstreamTimeout(
                f"upstream {namespace} did not answer within {bound.timeout.total:g} s"
            ) from None
        except aiohttp.ClientConnectorError as exc:
            bound.breaker.record(ok=False)
            reason = exc.os_error.strerror or type(exc.os_error).__name__
            raise UpstreamUnreachable(f"upstream {namespace} is unreachable: {reason}") from None
        except aiohttp.ServerDisconnectedError:
            bound.breaker.record(ok=False)
            raise UpstreamUnreachable(
                f"upstream {namespace} closed the connection without answering"
            ) from None
        except aiohttp.ClientError as exc:
            bound.breaker.record(ok=False)
            raise UpstreamUnreachable(f"upstream {namespace} failed: {type(exc).__name__}") from None
        except UpstreamBadStatus:
            bound.breaker.record(ok=False)
            raise
        bound.breaker.record(ok=response.status < 500)
        return response

    @staticmethod
    async def _with_retries(exchange: _Exchange, *, idempotent: bool) -> UpstreamResponse:
        """Retry only where it is safe: idempotent methods, or a connection that was never made.

        A POST whose request may have reached the upstream is never sent twice.
        """
        attempts = 1 + exchange.bound.settings.retries
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = await exchange.send()
            except aiohttp.ClientConnectorError:
                if last:
                    raise
            except (TimeoutError, aiohttp.ServerTimeoutError, aiohttp.ServerDisconnectedError):
                if last or not idempotent:
                    raise
            else:
                if last or not idempotent or response.status not in RETRY_STATUSES:
                    return response
            await asyncio.sleep(min(0.05 * 2**attempt, 1.0))
        raise AssertionError("unreachable")


@dataclass
class _Exchange:
    """One upstream request, sendable more than once."""

    session: aiohttp.ClientSession
    bound: BoundApi
    method: str
    url: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes | None

    async def send(self) -> UpstreamResponse:
        started, status = time.perf_counter(), "error"
        try:
            async with self.session.request(
                self.method,
                self.url,
                params=self.query or None,
                data=self.body,
                headers=self.headers,
                allow_redirects=False,
            ) as resp:
                status = str(resp.status)
                payload = await _read_capped(resp, self.bound)
                kept = {k: v for k, v in resp.headers.items() if k.lower() in _KEPT_HEADERS}
                content_type = resp.headers.get("Content-Type", "application/octet-stream")
                return UpstreamResponse(resp.status, payload, content_type, kept)
        except (TimeoutError, aiohttp.ServerTimeoutError):
            status = "timeout"
            raise
        finally:
            observe_upstream(self.bound.api.namespace, status, time.perf_counter() - started)


# Upstream response headers worth passing back to callers (the rest describe the upstream's transport).
_KEPT_HEADERS = frozenset({"retry-after", "www-authenticate", "etag", "last-modified", "location"})


def digest_authorization(
    challenge: str,
    method: str,
    url: str,
    query: list[tuple[str, str]],
    username: Secret | None,
    password: Secret | None,
) -> str:
    """The ``Authorization`` answer to an RFC 7616 ``WWW-Authenticate: Digest`` challenge."""
    if not challenge.lower().startswith("digest") or username is None or password is None:
        return ""
    fields = {k: a or b for k, a, b in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]*))', challenge[6:])}
    algorithm = fields.get("algorithm", "MD5").upper()
    hash_name = "sha256" if algorithm.startswith("SHA-256") else "md5"

    def h(text: str) -> str:
        return hashlib.new(hash_name, text.encode()).hexdigest()

    parsed = urlsplit(url)
    uri = parsed.path + ("?" + urlencode(query) if query else "")
    realm, nonce = fields.get("realm", ""), fields.get("nonce", "")
    ha1 = h(f"{username.reveal()}:{realm}:{password.reveal()}")
    ha2 = h(f"{method}:{uri}")
    parts = [
        f'username="{username.reveal()}"',
        f'realm="{realm}"',
        f'nonce="{nonce}"',
        f'uri="{uri}"',
        f"algorithm={fields.get('algorithm', 'MD5')}",
    ]
    if "auth" in fields.get("qop", "").split(","):
        cnonce, nc = secrets.token_hex(8), "00000001"
        parts += [
            f'response="{h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")}"',
            "qop=auth",
            f"nc={nc}",
            f'cnonce="{cnonce}"',
        ]
    else:
        parts.append(f'response="{h(f"{ha1}:{nonce}:{ha2}")}"')
    if "opaque" in fields:
        parts.append(f'opaque="{fields["opaque"]}"')
    return "Digest " + ", ".join(parts)


async def _read_capped(resp: aiohttp.ClientResponse, bound: BoundApi) -> bytes:
    """The body, refusing more than ``max_response_bytes``: a runaway upstream must not exhaust memory."""
    limit, namespace = bound.settings.max_response_bytes, bound.api.namespace
    if resp.content_length is not None:
        if resp.content_length > limit:
            raise UpstreamBadStatus(f"upstream {namespace} answer is too large ({resp.content_length} bytes)")
        return await resp.read()  # bounded by the declared length: the fast path
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise UpstreamBadStatus(f"upstream {namespace} answer exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _render_path(template: str, arguments: Arguments) -> str:
    def missing(name: str) -> str:
        raise MissingArgument({name: ["is required (path parameter)"]})

    return templates.render(template, arguments, on_missing=missing, encode=lambda v: quote(v, safe=""))
