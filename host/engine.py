"""Calling operations: arguments in, upstream response out.

:class:`Engine` owns one pooled ``aiohttp.ClientSession`` per upstream and runs a call: validate the
arguments against the declared schema (:mod:`host.arguments`), build the upstream request, send it
(:mod:`host.upstream`) or ask the mock, and classify what came back. Adapters get an
:class:`~host.model.UpstreamResponse` for 2xx-4xx answers and a :class:`~host.errors.CallError` for
everything else. Binding an API to this process's settings lives in :mod:`host.binding`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

import aiohttp

from host import fastjson, templates, upstream
from host.arguments import ArgumentValidator, check_headers, check_text
from host.binding import BoundApi, BoundAuth, bind
from host.catalog import Catalog
from host.config import HostConfig
from host.errors import CallError, MissingArgument, NotConfigured, StartupError, UpstreamBadStatus
from host.model import (
    NOT_DECODED,
    ArgumentMapping,
    Arguments,
    ConsumedOperation,
    JsonSchema,
    MockRequest,
    OutboundRequest,
    OutputMapping,
    UpstreamResponse,
)
from host.observability import CALLS, child
from host.secrets import REDACTOR
from host.upstream import digest_authorization

# Re-exported: callers import these from here.
__all__ = [
    "ArgumentValidator",
    "BoundApi",
    "BoundAuth",
    "BoundOperation",
    "Engine",
    "Outcome",
    "Target",
    "bind",
    "digest_authorization",
]

log = logging.getLogger("host.engine")


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
        self._sessions: dict[str, upstream.Pool] = {}
        # namespace -> the upstream session's aiohttp trace configs; set by the builder when tracing is on.
        self.client_traces: Callable[[str], list[aiohttp.TraceConfig]] | None = None

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
                traces = self.client_traces(namespace) if self.client_traces is not None else None
                self._sessions[namespace] = upstream.Pool(bound, traces)

    async def close(self) -> None:
        sessions, self._sessions = self._sessions, {}
        for pool in sessions.values():
            await pool.close()

    @property
    def healthy(self) -> bool:
        """False when every real upstream's circuit refuses calls (readiness)."""
        real = [
            bound
            for bound in self.apis.values()
            if not bound.mock and not bound.base_url.startswith("static:")
        ]
        return not real or any(not bound.breaker.refusing for bound in real)

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
            arguments = target.validator.check(arguments)
        operation_arguments = target.map_arguments(arguments) if target.map_arguments else arguments
        response = await self.call(target.operation, operation_arguments)
        if target.output is None or not 200 <= response.status < 300:
            return Outcome(response)
        try:
            document = response.document()
        except ValueError as exc:
            raise UpstreamBadStatus(f"upstream answer is not valid {response.format}: {exc}") from None
        return Outcome(response, mapped=True, value=target.output(document))

    async def call(self, ref: str, arguments: Arguments) -> UpstreamResponse:
        """Call operation ``ref``. 2xx-4xx come back as a response; anything else raises."""
        target = self.operations[ref]
        arguments = target.validator.check(arguments)
        check_text(arguments)
        operation, bound = target.operation, target.bound
        if operation.run is not None:
            # Several calls as one; each goes through this method, with its own checks and limits.
            return await operation.run(self.call, arguments)
        started = time.perf_counter()
        if bound.mock or operation.static:
            response = self._mock(target, arguments)
        else:
            request = self._build(operation, arguments, bound.variables)
            check_headers(request.headers)  # before admission: a refused call never takes a probe
            response = await upstream.send(self._sessions[bound.api.namespace], bound, ref, request)
        log.debug(
            "%s %s -> %d%s (%.1f ms)",
            operation.method,
            ref,
            response.status,
            " MOCK" if response.mocked else "",
            (time.perf_counter() - started) * 1000,
        )
        _check_status(bound.api.namespace, response.status)
        # An upstream may echo the credential it was sent: callers never see a configured secret.
        body = REDACTOR.redact_bytes(response.body)
        decoded: Any = NOT_DECODED
        if body and "json" in response.content_type and operation.output_format == "json":
            try:
                # Never pass a broken document on as if it were JSON; keep the parse for the mapping.
                decoded = fastjson.loads(body)
            except ValueError:
                raise UpstreamBadStatus(
                    f"upstream {bound.api.namespace} answered {response.status} with invalid JSON"
                ) from None
        # One new response (dataclasses.replace costs several times more than the constructor).
        return UpstreamResponse(
            status=response.status,
            body=body,
            content_type=response.content_type,
            headers=response.headers,
            mocked=response.mocked,
            format=operation.output_format,
            decoded=decoded,
        )

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
            data = fastjson.dumps_compact(body)
            headers["Content-Type"] = "application/json"
        query = tuple(
            (name, templates.as_text(arguments[name]))
            for name in operation.query
            if arguments.get(name) is not None
        )
        return OutboundRequest(
            operation.method, _render_path(operation.path, arguments), query, headers, data
        )


def _check_status(namespace: str, status: int) -> None:
    """5xx, and a redirect the host does not follow, are the upstream's failure: 502 naming the status."""
    if status >= 500:
        raise UpstreamBadStatus(f"upstream {namespace} answered {status}", extra={"upstream_status": status})
    if 300 <= status < 400 and status != 304:  # 304 answers a conditional request: not a redirect
        raise UpstreamBadStatus(
            f"upstream {namespace} answered {status}, a redirect the host does not follow",
            extra={"upstream_status": status},
        )


def _render_path(template: str, arguments: Arguments) -> str:
    def missing(name: str) -> str:
        raise MissingArgument({name: ["is required (path parameter)"]})

    return templates.render(template, arguments, on_missing=missing, encode=lambda v: quote(v, safe=""))
