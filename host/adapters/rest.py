"""The REST adapter: each registered :class:`~host.model.RestResource` as an aiohttp route.

Request → arguments (path parameters, declared query parameters, the JSON body)
→ :meth:`Engine.call` → the upstream body, passed through unless the resource
maps it. Every error is ``application/problem+json`` (RFC 9457).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from host import __version__
from host.adapters.skills import add_skill_routes
from host.engine import Engine, Outcome
from host.errors import BadRequest, CallError, StartupError
from host.gate import ROUTE_POLICIES, ItemPolicy, Port, item_policy
from host.inbound import load_json
from host.model import HEALTH_PATHS, HOST_REST_PATHS, OPENAPI_PATH, RestResource
from host.plugins import Catalog

log = logging.getLogger("host.rest")

PROBLEM_JSON = "application/problem+json"
MOCK_HEADER = "X-Host-Mock"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# () -> (ready?, details for /readyz)
Readiness = Callable[[], tuple[bool, dict[str, Any]]]


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    slug: str = "about:blank",
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    """An RFC 9457 problem document."""
    document: dict[str, Any] = {
        "type": slug if slug == "about:blank" else f"urn:capability-host:problem:{slug}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        document["instance"] = instance
    document.update(extra)
    return web.Response(status=status, text=json.dumps(document), content_type=PROBLEM_JSON, headers=headers)


async def render_problem(request: web.Request, error: CallError, headers: dict[str, str]) -> web.Response:
    """A refusal or a failed call as a problem document (the REST port's renderer)."""
    return problem(
        error.status,
        error.title,
        error.detail,
        slug=error.slug,
        instance=request.path,
        headers=headers,
        **error.extra,
    )


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except CallError as exc:
        headers = {"Retry-After": f"{exc.retry_after:g}"} if exc.retry_after else {}
        return await render_problem(request, exc, headers)
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        return problem(
            405,
            "Method Not Allowed",
            f"{request.method} is not allowed on {request.path}; allowed: {allowed}",
            instance=request.path,
            headers={"Allow": allowed},
        )
    except web.HTTPNotFound:
        return problem(404, "Not Found", f"no resource at {request.path}", instance=request.path)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return problem(exc.status, exc.reason, exc.text or exc.reason, instance=request.path)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(
            500,
            "Internal Server Error",
            "the host failed to handle this request; see its log",
            instance=request.path,
        )


RESERVED_PATHS = HOST_REST_PATHS  # host.model's, so the capability loader refuses the same routes
# What the gate needs to know about this port: the probes are public, refusals are problems.
REST_PORT = Port("rest", render_problem, frozenset(HEALTH_PATHS))


@dataclass(frozen=True)
class RestSettings:
    max_body_bytes: int
    max_json_depth: int


def build_rest_app(
    engine: Engine,
    catalog: Catalog,
    *,
    environ: Mapping[str, str],
    settings: RestSettings,
    readiness: Readiness,
) -> web.Application:
    """The REST port's app; the gate (:mod:`host.gate`) goes first in its middlewares."""
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[problem_middleware])
    policies: dict[web.AbstractRoute, ItemPolicy] = {}
    app[ROUTE_POLICIES] = policies

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        ready, details = readiness()
        return web.json_response(
            {"status": "ready" if ready else "unready", **details}, status=200 if ready else 503
        )

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    document = build_openapi(catalog, engine)

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(document)

    app.router.add_get(OPENAPI_PATH, openapi)
    for _, contributed in sorted(catalog.rest.items()):
        resource = contributed.item
        if resource.path in RESERVED_PATHS:
            raise StartupError(
                f"REST resource {resource.path} from {contributed.origin} clashes with the host's "
                f"own endpoint {resource.path}"
            )
        route = app.router.add_route(
            resource.method.upper(),
            _aiohttp_path(resource.path),
            _handler(resource, engine, settings.max_json_depth),
        )
        policy = item_policy(
            resource.caller_auth, environ, f"REST resource {resource.path} ({contributed.origin})"
        )
        if policy is not None:
            policies[route] = policy  # the gate checks it, before the body is read
    add_skill_routes(app, catalog, environ)
    return app


def _aiohttp_path(path: str) -> str:
    """aiohttp takes ``{identifier}`` only: ``{org-id}`` and ``{{id}}`` become ``{org_id}`` and ``{id}``."""
    return re.sub(r"\{\{?\s*([^}\s]+)\s*\}?\}", lambda m: "{" + _identifier(m.group(1)) + "}", path)


def _identifier(name: str) -> str:
    return re.sub(r"\W", "_", name) if not name.isidentifier() else name


def _handler(resource: RestResource, engine: Engine, max_json_depth: int) -> Handler:
    # Route parameters whose names aiohttp cannot take come back under their original names.
    renamed = {_identifier(n): n for n in re.findall(r"\{\{?\s*([^}\s]+)\s*\}?\}", resource.path)}
    target = engine.target(
        resource.operation,
        input_schema=resource.input_schema,
        map_arguments=resource.map_arguments,
        output=resource.output,
        label=f"{resource.method.upper()} {resource.path}",
    )
    typed = _url_kinds(resource.input_schema)  # read once: most resources declare no such argument

    async def handle(request: web.Request) -> web.StreamResponse:
        arguments: dict[str, Any] = {renamed.get(k, k): v for k, v in request.match_info.items()}
        if resource.pass_undeclared:
            for name, value in request.query.items():
                arguments.setdefault(name, value)
        for name in resource.query:
            if name in request.query:
                arguments[name] = request.query[name]
        for name in resource.headers:
            if name in request.headers:
                arguments[name] = request.headers[name]
        if typed:
            _typed_from_url(arguments, typed)
        if resource.body_argument is not None:
            raw = await request.read()
            if raw:
                body = load_json(raw, max_json_depth)
                if not resource.pass_undeclared and not isinstance(body, dict):
                    raise BadRequest(f"request body must be a JSON object, not {_json_kind(body)}")
                arguments[resource.body_argument] = body
                if resource.pass_undeclared and isinstance(body, dict):
                    for name, value in body.items():
                        arguments.setdefault(name, value)
        return _render(await engine.run(target, arguments))

    return handle


_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")
_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_URL_KINDS = ("integer", "number", "boolean")


def _url_kinds(schema: Mapping[str, Any] | None) -> dict[str, str]:
    """The declared arguments a text value from the URL or a header is read as: name -> its type."""
    properties = (schema or {}).get("properties") or {}
    kinds = {}
    for name, declared in properties.items():
        kind = declared.get("type") if isinstance(declared, Mapping) else None
        if kind in _URL_KINDS:
            kinds[name] = kind
    return kinds


def _typed_from_url(arguments: dict[str, Any], kinds: Mapping[str, str]) -> None:
    """Path, query and header values are text: one declared integer, number or boolean is read as
    such (``?limit=5`` is 5). Text that is not one stays text, and validation then names it."""
    for name, kind in kinds.items():
        value = arguments.get(name)
        if not isinstance(value, str):
            continue
        if kind == "boolean" and value in ("true", "false"):
            arguments[name] = value == "true"
        elif kind == "integer" and _INTEGER.fullmatch(value):
            arguments[name] = int(value)
        elif kind == "number" and _NUMBER.fullmatch(value):
            arguments[name] = float(value) if any(c in value for c in ".eE") else int(value)


def _json_kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _render(outcome: Outcome) -> web.Response:
    response = outcome.response
    headers = dict(response.headers)
    if response.mocked:
        headers[MOCK_HEADER] = "true"
    if response.status == 204 or (outcome.mapped and outcome.value is None and not response.body):
        return web.Response(status=204, headers=headers)
    if not outcome.mapped:
        # Pass the upstream bytes through: no re-serialisation on the hot path.
        headers["Content-Type"] = response.content_type
        return web.Response(status=response.status, body=response.body, headers=headers)
    return web.Response(
        status=response.status,
        text=json.dumps(outcome.value),
        content_type="application/json",
        headers=headers,
    )


_PROBLEM_SCHEMA = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
    },
    "required": ["title", "status", "detail"],
}


def build_openapi(catalog: Catalog, engine: Engine) -> dict[str, Any]:
    """An OpenAPI 3.1 document of the registered resources, schemas where the operations declare them."""
    problem_response = {"content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    paths: dict[str, dict[str, Any]] = {}
    for _, contributed in sorted(catalog.rest.items()):
        resource = contributed.item
        path = re.sub(r"\{\{?\s*([^}\s]+)\s*\}?\}", r"{\1}", resource.path)
        schema = dict(resource.input_schema or engine.validator_for(resource.operation).schema)
        properties: dict[str, Any] = dict(schema.get("properties") or {})
        required = set(schema.get("required") or ())
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": properties.get(name, {"type": "string"})}
            for name in re.findall(r"\{([^}]+)\}", path)
        ]
        parameters += [
            {
                "name": name,
                "in": where,
                "required": name in required,
                "schema": properties.get(name, {"type": "string"}),
            }
            for where, names in (("query", resource.query), ("header", resource.headers))
            for name in names
        ]
        operation: dict[str, Any] = {
            "operationId": _operation_id(resource),
            "summary": resource.description.split("\n")[0] if resource.description else resource.operation,
            "description": f"{resource.description}\n\nCalls `{resource.operation}` "
            f"({contributed.origin}).".strip(),
            "parameters": parameters,
            "responses": {
                "2XX": {
                    "description": "The upstream's answer (mapped when the resource declares outputs).",
                    "content": {"application/json": {"schema": {}}},
                },
                "400": {"description": "The request body is not valid JSON.", **problem_response},
                "422": {
                    "description": "The arguments break the declared schema; nothing was sent upstream.",
                    **problem_response,
                },
                "4XX": {"description": "The upstream's own 4xx answer, passed through."},
                "502": {"description": "The upstream failed or is unreachable.", **problem_response},
                "504": {"description": "The upstream did not answer in time.", **problem_response},
            },
        }
        if resource.body_argument is not None:
            body_schema = properties.get(resource.body_argument, {"type": "object"})
            operation["requestBody"] = {
                "required": resource.body_argument in required,
                "content": {"application/json": {"schema": body_schema}},
            }
        paths.setdefault(path, {})[resource.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "capability-host",
            "version": __version__,
            "description": "REST resources of the capabilities installed on this host.",
        },
        "paths": paths,
        "components": {"schemas": {"Problem": _PROBLEM_SCHEMA}},
    }


def _operation_id(resource: RestResource) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", f"{resource.method}_{resource.path}").strip("_").lower()
