"""``forward`` on an exposed REST resource: proxy the sub-path to a consumed namespace (spec §2).

``path: /notion/{{path}}`` with ``forward: {targetNamespace: notion, trustedHeaders: [Notion-Version]}``
sends ``GET /notion/pages`` as ``GET <notion baseUri>/pages``: with the namespace's authentication and
its own ``inputParameters`` (a header with a ``value`` is set; it wins over a caller's header of the
same name), the caller's trusted headers, query parameters and JSON body. The answer comes back as is.
Operations declared on the resource take precedence over ``forward`` for their methods.

Where the reference is loose, this host is strict: the sub-path is one path segment and may not be
``.`` or ``..`` (a forward never leaves the target's base URI), and credentials (``Authorization``,
``Cookie``, ...) and hop-by-hop headers are never forwarded, even when listed as trusted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from host import templates
from host.model import ConsumedOperation, OutboundRequest, RestResource
from host.naftiko.context import Context
from host.naftiko.document import ExposedResourceSpec, InputParameter
from host.naftiko.requests import NaftikoRequest

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
NEVER_FORWARDED = {
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "upgrade",
    "te",
    "keep-alive",
}
# One path segment, never `.` or `..`.
SEGMENT = r"^(?!\.{1,2}$)[^/]+$"


def compile_forward(
    ctx: Context, resource: ExposedResourceSpec, route: str, taken: set[str], path: str
) -> None:
    """Register the forwarding REST resources of ``resource`` for the methods no operation takes."""
    spec: Any = resource.forward
    where = f"{path}.forward"
    target = spec.get("targetNamespace") if isinstance(spec, dict) else None
    if not target:
        ctx.warn(where, "forward needs a targetNamespace; disabled")
        return
    index = next((i for i, api in enumerate(ctx.out.apis) if api.namespace == target), None)
    if index is None:
        ctx.warn(f"{where}.targetNamespace", f"{target!r} names no consumed namespace; disabled")
        return
    trusted = _trusted(ctx, spec.get("trustedHeaders"), f"{where}.trustedHeaders")
    placeholders = templates.names(resource.path)
    segment = placeholders[-1].split(".")[-1] if placeholders else None
    upstream_path = f"/{{{{{segment}}}}}" if segment else ""
    params = [
        *(InputParameter.model_validate({"name": h, "in": "header"}) for h in trusted),
        *ctx.api_params.get(str(target), []),
    ]
    if segment:
        params.append(InputParameter.model_validate({"name": segment, "in": "path"}))
    schema: dict[str, Any] = {"type": "object"}
    if segment:
        schema["properties"] = {segment: {"type": "string", "pattern": SEGMENT}}
        schema["required"] = [segment]
    api = ctx.out.apis[index]
    added: list[ConsumedOperation] = []
    for method in (m for m in METHODS if m not in taken):
        name = f"forward-{len(api.operations) + len(added)}-{method.lower()}"
        added.append(
            ConsumedOperation(
                name=name,
                method=method,
                path=upstream_path,
                description=f"forward of {resource.path}",
                request=ForwardRequest(
                    NaftikoRequest(method, upstream_path, params, None),
                    frozenset({"body", *(p.name for p in params)}),
                ),
            )
        )
        ctx.out.rest.append(
            RestResource(
                method=method,
                path=route,
                operation=f"{target}.{name}",
                description=resource.description or f"forwarded to {target}",
                headers=tuple(trusted),
                pass_undeclared=True,
                input_schema=schema,
                caller_auth=ctx.caller_auth,
            )
        )
    ctx.out.apis[index] = replace(api, operations=(*api.operations, *added))


@dataclass(frozen=True)
class ForwardRequest:
    """The forwarded request: the sub-path, headers and body, plus the caller's other query parameters.

    The REST adapter passes query parameters and the body's top-level fields by name; a name that is
    a field of the body, a declared parameter or ``body`` is not sent as a query parameter.
    """

    base: NaftikoRequest
    reserved: frozenset[str]

    def __call__(self, arguments: Mapping[str, Any], variables: Mapping[str, str]) -> OutboundRequest:
        request = self.base(arguments, variables)
        body = arguments.get("body")
        fields = set(body) if isinstance(body, dict) else set()
        query = [
            (name, templates.as_text(value))
            for name, value in arguments.items()
            if name not in self.reserved and name not in fields and value is not None
        ]
        return replace(request, query=(*request.query, *query))


def _trusted(ctx: Context, raw: Any, path: str) -> list[str]:
    names = [str(h) for h in raw] if isinstance(raw, list) else []
    refused = [h for h in names if h.lower() in NEVER_FORWARDED]
    if refused:
        ctx.warn(path, f"{', '.join(refused)} never forwarded (credentials and hop-by-hop headers)")
    return [h for h in names if h.lower() not in NEVER_FORWARDED]
