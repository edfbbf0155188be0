"""The OpenTelemetry SDK side of tracing, imported only when ``[observability] enabled = true``.

* A server span per inbound request on each port (an aiohttp middleware, first in the chain, so refusals
  of the gate are traced too and the request-duration histogram sees the span): HTTP semantic
  conventions, and on the MCP port the MCP ones (``mcp.method.name``, ``gen_ai.tool.name``, ...), named
  once the adapter has parsed the message (:func:`host.tracing.mcp_message`).
* A client span per upstream request (an aiohttp ``TraceConfig`` on each upstream session), which also
  writes ``traceparent`` (and ``b3`` when configured) into the request's headers.
* Redaction: no header, body or argument is recorded; query values are ``REDACTED``; configured secrets
  are scrubbed from every URL; the MCP session id is not recorded (this host issues none, so whatever a
  client sends belongs to another server).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Middleware
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.propagators.b3 import B3MultiFormat, B3SingleFormat
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes
from yarl import URL

from host import __version__, observability
from host.catalog import Catalog
from host.config import HostConfig
from host.secrets import REDACTOR
from host.tracing import MCP_MESSAGE
from host.tracing.settings import (
    FileItems,
    Sampling,
    TraceSettings,
    disabled_by_environment,
    resolve,
    shown_endpoint,
)

log = logging.getLogger("host.tracing")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
# Probes and scrapes would be most of the traces and tell nothing.
UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
REDACTED_VALUE = "REDACTED"  # the semantic conventions' placeholder for a scrubbed query value
_MAX_TEXT = 256  # user agents and URIs beyond this are cut: a span is not a place for a caller's essay


def sampler_key(attributes: Attributes) -> str | None:
    """The item a server span is about, as :class:`TraceSettings.items` keys it."""
    if not attributes:
        return None
    tool = attributes.get("gen_ai.tool.name")
    if tool is not None:
        return f"tool:{tool}"
    prompt = attributes.get("gen_ai.prompt.name")
    if prompt is not None:
        return f"prompt:{prompt}"
    route = attributes.get("http.route")
    if route is not None and "mcp.method.name" not in attributes:
        return f"{attributes.get('http.request.method')} {route_shape(str(route))}"
    return None


def route_shape(path: str) -> str:
    """``/v1/a/{id}``, ``/v1/a/{{ id }}`` and ``/v1/a/{name}`` are one route: parameters blanked."""
    return re.sub(r"\{+[^}]*\}+", "{}", path)


class ItemSampler(Sampler):
    """The host's sampler, except for the items of a capability file that sets its own sampling."""

    def __init__(self, default: Sampler, items: Mapping[str, Sampler]) -> None:
        self.default, self.items = default, dict(items)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Any = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        sampler = self.default
        if self.items and kind is SpanKind.SERVER:
            sampler = self.items.get(sampler_key(attributes) or "", self.default)
        return sampler.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"ItemSampler{{{self.default.get_description()}, {len(self.items)} item(s)}}"


def make_sampler(sampling: Sampling) -> Sampler:
    ratio = TraceIdRatioBased(sampling.ratio)
    samplers: dict[str, Sampler] = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "traceidratio": ratio,
        "parentbased_always_on": ParentBased(ALWAYS_ON),
        "parentbased_always_off": ParentBased(ALWAYS_OFF),
        "parentbased_traceidratio": ParentBased(ratio),
    }
    return samplers[sampling.name]


def make_propagator(names: Iterable[str]) -> TextMapPropagator:
    known: dict[str, Callable[[], TextMapPropagator]] = {
        "tracecontext": TraceContextTextMapPropagator,
        "baggage": W3CBaggagePropagator,
        "b3": B3SingleFormat,
        "b3multi": B3MultiFormat,
    }
    return CompositePropagator([known[name]() for name in names if name in known])


@dataclass
class Tracing:
    """One host's tracer: its provider, propagators and the hooks it adds to the apps and sessions."""

    settings: TraceSettings
    provider: TracerProvider
    tracer: trace.Tracer
    extractor: TextMapPropagator
    injector: TextMapPropagator

    @classmethod
    def build(cls, settings: TraceSettings) -> Tracing:
        """The tracer, exporting nothing yet: building starts no thread (:meth:`open` does)."""
        sampler = ItemSampler(
            make_sampler(settings.sampling),
            {key: make_sampler(sampling) for key, sampling in settings.items.items()},
        )
        # A given OTEL_SERVICE_NAME is already in settings.service; OTEL_RESOURCE_ATTRIBUTES adds the rest.
        resource = Resource.create({"service.name": settings.service, "service.version": __version__})
        provider = TracerProvider(sampler=sampler, resource=resource, shutdown_on_exit=False)
        return cls(
            settings,
            provider,
            provider.get_tracer("capability-host", __version__),
            make_propagator(settings.extract),
            make_propagator(settings.propagators),
        )

    async def open(self) -> None:
        """Start exporting (the batch processor's thread), as the apps start."""
        settings = self.settings
        if settings.endpoint is not None:
            exporter = OTLPSpanExporter(endpoint=settings.endpoint)
            self.provider.add_span_processor(BatchSpanProcessor(exporter))
        log.info(
            "tracing: OpenTelemetry spans to %s as %r (sampler %s %g, propagators %s)",
            shown_endpoint(settings.endpoint) if settings.endpoint else "nowhere (OTEL_TRACES_EXPORTER=none)",
            settings.service,
            settings.sampling.name,
            settings.sampling.ratio,
            ",".join(settings.propagators),
        )

    async def close(self) -> None:
        """Export what is buffered (bounded: a collector that is down must not hold up the shutdown)."""
        try:
            await asyncio.wait_for(asyncio.to_thread(self.provider.force_flush, 1500), 2)
        except TimeoutError:
            log.warning("tracing: the last spans could not be exported within 2 s; dropped")
        await asyncio.to_thread(self.provider.shutdown)

    def middleware(self, adapter: str) -> Middleware:
        """The port's server spans: first in its app's middlewares, before the gate."""
        tracer, extractor = self.tracer, self.extractor
        deferred = adapter == "mcp"  # the MCP span is named (and sampled) once its message is parsed

        @web.middleware
        async def trace_request(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path in UNTRACED_PATHS:
                return await handler(request)
            served = _Served(tracer, extractor.extract(request.headers), request, mcp=deferred)
            if deferred:
                request[MCP_MESSAGE] = served.mcp_message
            else:
                served.begin(_http_name(request))
            status, error_type, response = 500, None, None
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as exc:
                status = exc.status
                raise
            except BaseException as exc:
                error_type = type(exc).__qualname__
                raise
            finally:
                served.finish(status, error_type, response)

        return trace_request

    def client_traces(self, namespace: str) -> list[aiohttp.TraceConfig]:
        """The trace config of one upstream's session: a client span per request, context injected."""
        tracer = self.tracer
        names = self.settings.outbound.get(namespace)
        injector = self.injector if names is None else make_propagator(names)
        config = aiohttp.TraceConfig()

        async def on_start(
            session: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceRequestStartParams
        ) -> None:
            span = tracer.start_span(params.method, kind=SpanKind.CLIENT)
            if span.is_recording():  # an unsampled call only carries the context on
                span.set_attributes(_client_attributes(params.method, params.url, namespace))
            ctx.span = span
            injector.inject(params.headers, context=trace.set_span_in_context(span))

        async def on_end(
            session: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceRequestEndParams
        ) -> None:
            status = params.response.status
            span: trace.Span = ctx.span
            span.set_attribute("http.response.status_code", status)
            if status >= 400:
                span.set_attribute("error.type", str(status))
                span.set_status(Status(StatusCode.ERROR))
            span.end()

        async def on_exception(
            session: aiohttp.ClientSession,
            ctx: SimpleNamespace,
            params: aiohttp.TraceRequestExceptionParams,
        ) -> None:
            span: trace.Span = ctx.span
            span.set_attribute("error.type", type(params.exception).__qualname__)
            span.set_status(Status(StatusCode.ERROR))
            span.end()

        config.on_request_start.append(on_start)
        config.on_request_end.append(on_end)
        config.on_request_exception.append(on_exception)
        return [config]


def exemplar() -> dict[str, str] | None:
    """The sampled span in progress, as an exemplar of the request-duration histogram."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    return {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}


class _Served:
    """One inbound request's server span, started at once (REST) or when the MCP message is known."""

    __slots__ = ("mcp", "parent", "request", "span", "start_time", "token", "tracer")

    def __init__(self, tracer: trace.Tracer, parent: Context, request: web.Request, *, mcp: bool) -> None:
        self.tracer, self.parent, self.request, self.mcp = tracer, parent, request, mcp
        self.start_time = time.time_ns()
        self.span: trace.Span | None = None
        self.token: object | None = None

    def begin(self, name: str, item: Mapping[str, Any] | None = None, parent: Context | None = None) -> None:
        """Start the span with what the sampler reads (method, route, ``item``); the rest only if it
        records: an unsampled request only carries the context on."""
        request = self.request
        route = request.match_info.route.resource
        attributes: dict[str, Any] = {"http.request.method": request.method, **(item or {})}
        if route is not None:
            attributes["http.route"] = route.canonical
        self.span = span = self.tracer.start_span(
            name, parent or self.parent, SpanKind.SERVER, attributes=attributes, start_time=self.start_time
        )
        if span.is_recording():
            span.set_attributes(_http_attributes(request))
        self.token = otel_context.attach(trace.set_span_in_context(span))

    def mcp_message(self, request_id: Any, method: str, params: Mapping[str, Any] | None) -> None:
        if self.span is not None:
            return
        attributes = _mcp_attributes(self.request, request_id, method, params)
        target = attributes.get("gen_ai.tool.name") or attributes.get("gen_ai.prompt.name")
        # An MCP client may carry the context in params._meta (MCP semantic conventions): it wins.
        meta = params.get("_meta") if params else None
        parent = _meta_context(meta) if isinstance(meta, Mapping) else None
        self.begin(f"{method} {target}" if target else method, attributes, parent)

    def finish(self, status: int, error_type: str | None, response: web.StreamResponse | None) -> None:
        if self.span is None:  # the MCP port refused it before any message: an HTTP span
            self.begin(_http_name(self.request))
        span = self.span
        assert span is not None
        if not span.is_recording():
            self.end(span)
            return
        span.set_attribute("http.response.status_code", status)
        rpc_error = _rpc_error(response) if self.mcp else None
        if rpc_error is not None:
            error_type = error_type or rpc_error
            if rpc_error != "tool_error":
                span.set_attribute("rpc.response.status_code", rpc_error)
        if error_type is None and status >= 500:
            error_type = str(status)
        if error_type is not None:
            span.set_attribute("error.type", error_type)
            span.set_status(Status(StatusCode.ERROR))
        self.end(span)

    def end(self, span: trace.Span) -> None:
        span.end()
        if self.token is not None:
            otel_context.detach(self.token)  # type: ignore[arg-type]


def _http_name(request: web.Request) -> str:
    method = request.method if request.method in KNOWN_METHODS else "HTTP"
    resource = request.match_info.route.resource
    return f"{method} {resource.canonical}" if resource is not None else method


def _http_attributes(request: web.Request) -> dict[str, Any]:
    """HTTP server attributes, redacted: the path with secrets scrubbed, query values dropped."""
    method = request.method
    attributes: dict[str, Any] = {
        "http.request.method": method if method in KNOWN_METHODS else "_OTHER",
        "url.scheme": request.scheme,
        "url.path": REDACTOR.redact_values(request.path)[:_MAX_TEXT],
        "network.protocol.version": f"{request.version.major}.{request.version.minor}",
    }
    if method not in KNOWN_METHODS:
        attributes["http.request.method_original"] = method[:32]
    resource = request.match_info.route.resource
    if resource is not None:
        attributes["http.route"] = resource.canonical
    if request.query_string:
        attributes["url.query"] = _redacted_query(request.query.keys())
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        attributes["server.address"], attributes["server.port"] = str(sockname[0]), int(sockname[1])
    if request.remote:
        attributes["client.address"] = request.remote
    agent = request.headers.get("User-Agent")
    if agent:
        attributes["user_agent.original"] = agent[:_MAX_TEXT]
    return attributes


def _mcp_attributes(
    request: web.Request, request_id: Any, method: str, params: Mapping[str, Any] | None
) -> dict[str, Any]:
    """MCP semantic conventions; never the arguments, never the session id."""
    attributes: dict[str, Any] = {
        "mcp.method.name": method,
        "jsonrpc.request.id": str(request_id),
        "network.transport": "tcp",
        "network.protocol.name": "http",
    }
    version = request.headers.get("MCP-Protocol-Version")
    if version:
        attributes["mcp.protocol.version"] = version[:32]
    name = params.get("name") if params else None
    if method == "tools/call":
        attributes["gen_ai.operation.name"] = "execute_tool"
        if isinstance(name, str):
            attributes["gen_ai.tool.name"] = name[:_MAX_TEXT]
    elif method == "prompts/get" and isinstance(name, str):
        attributes["gen_ai.prompt.name"] = name[:_MAX_TEXT]
    uri = params.get("uri") if params else None
    if method.startswith("resources/") and isinstance(uri, str):
        attributes["mcp.resource.uri"] = _redacted_url(uri)[:_MAX_TEXT]
    return attributes


def _meta_context(meta: Mapping[str, Any]) -> Context | None:
    if "traceparent" not in meta:
        return None
    carrier = {key: value for key, value in meta.items() if isinstance(value, str)}
    context = TraceContextTextMapPropagator().extract(carrier)
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def _rpc_error(response: web.StreamResponse | None) -> str | None:
    """A JSON-RPC error's code, or ``tool_error`` for a tool result with ``isError``, read from the
    answer (a JSON body; an event stream is not read back)."""
    body = getattr(response, "body", None)
    # Only a body that may hold an error is parsed: every tool result says "isError":false.
    if not isinstance(body, bytes) or not (
        b'"error"' in body or b'"isError":true' in body or b'"isError": true' in body
    ):
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    error, result = document.get("error"), document.get("result")
    if isinstance(error, dict) and isinstance(error.get("code"), int):
        return str(error["code"])
    if isinstance(result, dict) and result.get("isError") is True:
        return "tool_error"
    return None


def _client_attributes(method: str, url: URL, namespace: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "http.request.method": method if method in KNOWN_METHODS else "_OTHER",
        "url.full": _redacted_url(str(url)),
        "server.address": REDACTOR.redact_values(url.host or ""),
        "peer.service": namespace,
    }
    if url.explicit_port or url.port:
        attributes["server.port"] = url.port
    return attributes


def _redacted_url(text: str) -> str:
    """No credentials, no query values, no configured secret: what a span may say about a URL."""
    try:
        url = URL(text)
    except ValueError:
        return REDACTED_VALUE
    if url.user is not None or url.password is not None:
        url = url.with_user(None)
    shown = str(url.with_query(None).with_fragment(None))
    if url.query_string:
        shown += "?" + _redacted_query(url.query.keys())
    return REDACTOR.redact_values(shown)


def _redacted_query(keys: Iterable[str]) -> str:
    return REDACTOR.redact_values("&".join(f"{key}={REDACTED_VALUE}" for key in keys))[:_MAX_TEXT]


def file_items(catalog: Catalog) -> list[FileItems]:
    """The capability files that set their own traces, with the sampler keys of what they serve."""
    found = []
    for report in catalog.files:
        if report.traces is None or report.errors:
            continue
        items = [f"{resource.method.upper()} {route_shape(resource.path)}" for resource in report.rest]
        items += [f"tool:{tool.name}" for tool in report.tools]
        items += [f"prompt:{prompt.name}" for prompt in report.prompts]
        namespaces = tuple(api.namespace for api in report.apis)
        found.append(FileItems(report.traces, tuple(items), namespaces))
    return found


def install(
    config: HostConfig,
    environ: Mapping[str, str],
    catalog: Catalog,
    apps: Mapping[str, web.Application],
) -> Tracing | None:
    """Trace both ports (``apps``: adapter -> app, the gate already first): returns the tracing, whose
    :meth:`Tracing.client_traces` the engine gives its upstream sessions. Raises :class:`StartupError`."""
    if disabled_by_environment(environ):
        log.info("tracing: off (OTEL_SDK_DISABLED=true)")
        return None
    tracing = Tracing.build(resolve(config, environ, file_items(catalog)))
    for adapter, app in apps.items():
        app.middlewares.insert(0, tracing.middleware(adapter))  # outside the gate: it traces refusals too
    observability.exemplar = exemplar
    first = next(iter(apps.values()))  # both ports run together: the first one carries the exporter

    async def export(app: web.Application) -> AsyncIterator[None]:
        await tracing.open()
        yield
        await tracing.close()

    first.cleanup_ctx.append(export)
    return tracing
