"""Metrics, request ids and log formats: what operators watch.

* Prometheus metrics (``GET /metrics`` on the REST port): requests and latencies
  per adapter and route, calls per exposure, upstream calls and latencies per
  namespace, plugin load failures. Labels never carry secrets or caller data:
  routes are patterns (``/v1/customers/{id}``), not concrete paths.
* A request id per inbound request: taken from ``X-Request-Id`` when the
  caller sends a sane one, else generated; returned in the response, sent
  upstream, and stamped on every log line of that request.
* Logs as plain text or one JSON object per line (``[logging] format``).
"""

from __future__ import annotations

import contextvars
import itertools
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.openmetrics import exposition as openmetrics

access = logging.getLogger("host.access")

# Set by the worker supervisor (before prometheus_client is imported in the workers).
MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")

REQUEST_ID_HEADER = "X-Request-Id"
WORKER_HEADER = "X-Host-Worker"
_SANE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

REGISTRY = CollectorRegistry(auto_describe=True)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HTTP_REQUESTS = Counter(
    "host_http_requests_total", "Inbound HTTP requests.", ("adapter", "route", "status"), registry=REGISTRY
)
HTTP_LATENCY = Histogram(
    "host_http_request_duration_seconds",
    "Inbound request latency.",
    ("adapter", "route"),
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
CALLS = Counter(
    "host_calls_total",
    "Operation calls by exposure (REST resource or MCP tool) and outcome.",
    ("exposure", "outcome"),
    registry=REGISTRY,
)
UPSTREAM_REQUESTS = Counter(
    "host_upstream_requests_total",
    "Upstream calls by namespace and status.",
    ("namespace", "status"),
    registry=REGISTRY,
)
UPSTREAM_LATENCY = Histogram(
    "host_upstream_request_duration_seconds",
    "Upstream call latency.",
    ("namespace",),
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
PLUGIN_FAILURES = Gauge(
    "host_plugin_load_failures",
    "Plugins that failed to load (1 each).",
    ("plugin",),
    registry=REGISTRY,
    multiprocess_mode="max",
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Set by host.tracing when traces are on: the sampled span in progress as a histogram exemplar.
exemplar: Callable[[], dict[str, str] | None] | None = None


_children: dict[tuple[object, ...], Any] = {}


def child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, resolved once: label lookup costs more than the update itself."""
    key = (metric, *labels)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*labels)
    return found


def observe_upstream(namespace: str, status: str, seconds: float) -> None:
    child(UPSTREAM_REQUESTS, namespace, status).inc()
    child(UPSTREAM_LATENCY, namespace).observe(seconds)


_ID_PREFIX = secrets.token_hex(12)  # per process, so ids stay unique across workers and restarts
_id_counter = itertools.count()


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_id_counter) & 0xFFFFFFFF:08x}"


_WORKER = os.environ.get("HOST_WORKER_ID")  # under --workers every answer names its worker (X-Host-Worker)


def start_request(request: web.Request) -> tuple[float, contextvars.Token[str]]:
    """The request's id (a sane ``X-Request-Id``, else a new one), set for its log lines; and its start."""
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    rid = offered if offered and _SANE_ID.fullmatch(offered) else new_request_id()
    return time.perf_counter(), request_id.set(rid)


def stamp_response(response: web.StreamResponse | web.HTTPException) -> None:
    """The request id (and the worker) on the answer."""
    response.headers[REQUEST_ID_HEADER] = request_id.get()
    if _WORKER:
        response.headers[WORKER_HEADER] = _WORKER


def record_request(adapter: str, request: web.Request, status: int, elapsed: float) -> None:
    """Count the request per route pattern, time it, and write its access-log line.

    The gate runs this once the answer is on its way (``loop.call_soon``, with the request's context,
    so the line carries its request id): logging and metrics cost the caller no latency.
    """
    route = request.match_info.route.resource
    pattern = route.canonical if route is not None else "(unmatched)"
    child(HTTP_REQUESTS, adapter, pattern, str(status)).inc()
    child(HTTP_LATENCY, adapter, pattern).observe(elapsed, exemplar() if exemplar is not None else None)
    # One line per request, with the request id; never the query string. The formatters escape
    # control characters, so a path cannot forge another line.
    access.info("%s %s %s %d %.1fms", adapter, request.method, request.path, status, elapsed * 1000)


async def metrics_handler(request: web.Request) -> web.Response:
    registry = REGISTRY
    if MULTIPROCESS_DIR:
        # Under --workers each process writes its series to files here; any worker answers for all of them.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=MULTIPROCESS_DIR)  # type: ignore[no-untyped-call]
    if "application/openmetrics-text" in request.headers.get("Accept", ""):
        # Exemplars (trace ids) exist only in the OpenMetrics format: served when the scraper asks for it.
        body = openmetrics.generate_latest(registry)  # type: ignore[no-untyped-call]
        return web.Response(body=body, headers={"Content-Type": openmetrics.CONTENT_TYPE_LATEST})
    return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


class RequestIdFilter(logging.Filter):
    """Stamps ``record.request_id`` so formats can show it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class _CachedTime(logging.Formatter):
    """``formatTime`` with ``strftime`` run once per second: it was most of a line's formatting cost."""

    # ((second, datefmt), its text), replaced as one object: safe if two threads format at once.
    _cache: tuple[tuple[int, str | None], str] = ((-1, None), "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        key = (int(record.created), datefmt)
        cached_key, text = self._cache
        if key != cached_key:
            text = time.strftime(datefmt or self.default_time_format, self.converter(key[0]))
            self._cache = (key, text)
        return text if datefmt else f"{text},{int(record.msecs):03d}"


class JsonFormatter(_CachedTime):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_text:  # already scrubbed by the redaction filter
            document["exception"] = record.exc_text
        elif record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"

# C0 controls (tab aside), DEL, C1 controls and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def escape_controls(text: str) -> str:
    """``\\n``, ``\\x1b``, ...: one log record stays one line, whatever a caller put in a path or header."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class TextFormatter(_CachedTime):
    """:data:`TEXT_FORMAT`, with control characters in the message escaped (tracebacks keep their lines)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.message)
        return super().formatMessage(record)
