"""The REST adapter: each registered :class:`~host.model.RestResource` as an aiohttp route.

Request → arguments (path parameters, declared query parameters, the JSON body)
→ :meth:`Engine.call` → the upstream body, passed through unless the resource
maps it. Every error is ``application/problem+json`` (RFC 9457).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from host.engine import Engine, Outcome
from host.errors import BadRequest, CallError, PayloadTooLarge
from host.model import RestResource
from host.plugins import Catalog

log = logging.getLogger("host.rest")

PROBLEM_JSON = "application/problem+json"
MOCK_HEADER = "X-Host-Mock"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except CallError as exc:
        return problem(exc.status, exc.title, exc.detail, slug=exc.slug, instance=request.path, **exc.extra)
    except web.HTTPRequestEntityTooLarge:
        err = PayloadTooLarge(f"request body is larger than {request.app[MAX_BODY]} bytes")
        return problem(err.status, err.title, err.detail, slug=err.slug, instance=request.path)
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


MAX_BODY = web.AppKey("max_body", int)


def build_rest_app(engine: Engine, catalog: Catalog, *, max_body_bytes: int) -> web.Application:
    app = web.Application(client_max_size=max_body_bytes, middlewares=[problem_middleware])
    app[MAX_BODY] = max_body_bytes
    for _, contributed in sorted(catalog.rest.items()):
        resource = contributed.item
        app.router.add_route(resource.method.upper(), resource.path, _handler(resource, engine))
    return app


def _handler(resource: RestResource, engine: Engine) -> Handler:
    target = engine.target(
        resource.operation,
        input_schema=resource.input_schema,
        map_arguments=resource.map_arguments,
        output=resource.output,
    )

    async def handle(request: web.Request) -> web.StreamResponse:
        arguments: dict[str, Any] = dict(request.match_info)
        if resource.pass_undeclared:
            for name, value in request.query.items():
                arguments.setdefault(name, value)
        for name in resource.query:
            if name in request.query:
                arguments[name] = request.query[name]
        for name in resource.headers:
            if name in request.headers:
                arguments[name] = request.headers[name]
        if resource.body_argument is not None:
            raw = await request.read()
            if raw:
                body = _parse_json(raw, request.content_type, object_only=not resource.pass_undeclared)
                arguments[resource.body_argument] = body
                if resource.pass_undeclared and isinstance(body, dict):
                    for name, value in body.items():
                        arguments.setdefault(name, value)
        return _render(await engine.run(target, arguments))

    return handle


def _parse_json(raw: bytes, content_type: str, *, object_only: bool) -> Any:
    try:
        document = json.loads(raw)
    except UnicodeDecodeError:
        raise BadRequest("request body is not valid UTF-8 JSON") from None
    except (ValueError, RecursionError) as exc:
        hint = (
            "" if "json" in content_type else f" (Content-Type was {content_type!r}; send application/json)"
        )
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        raise BadRequest(f"request body is not valid JSON: {reason}{hint}") from None
    if object_only and not isinstance(document, dict):
        raise BadRequest(f"request body must be a JSON object, not {_json_kind(document)}")
    return document


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
