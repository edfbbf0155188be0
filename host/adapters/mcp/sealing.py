"""The requestState of 2026-07-28 input requests, sealed and opened by the SDK's boundary.

The SDK's ``RequestStateBoundary`` encrypts every requestState a result carries and verifies
every one a request echoes. Its module imports ``cryptography`` (about 7 MiB of RSS per
worker), which a host whose tools and prompts never ask for input needs only to refuse a
requestState it never issued. :class:`StateBoundary` is the boundary, built at start-up when
something can ask for input or the keys are configured (so a bad key still stops start-up),
and otherwise when the first request carrying a requestState arrives.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp_types.methods import INPUT_REQUIRED_METHODS

from host.adapters.mcp.state import exchange_of_context
from host.errors import StartupError
from host.secrets import Secret

if TYPE_CHECKING:
    from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity

SERVER_NAME = "capability-host"
# Secrets (>= 32 bytes each, comma-separated) encrypting the requestState of 2026-07-28 input
# requests: the first seals, all open (rotation). Every worker and replica must share them;
# without the variable each process uses a key of its own.
STATE_KEYS_ENV = "HOST_REQUEST_STATE_KEYS"


def request_state_security(environ: Mapping[str, str]) -> RequestStateSecurity:
    """How requestState is protected: AES-256-GCM under the shared keys, or a process-local key.

    The SDK adds expiry (10 min), binding to the method, name and arguments of the call, and
    binding to the authenticated caller. Raises :class:`StartupError` for a key that is too short.
    """
    from mcp.server.request_state import RequestStateSecurity

    keys = _configured_keys(environ)
    if not keys:
        return RequestStateSecurity(keys=[os.urandom(32)], bind_principal=_principal_of)
    for key in keys:
        Secret(key)  # registers it for log redaction
    try:
        return RequestStateSecurity(keys=keys, bind_principal=_principal_of)
    except ValueError as exc:
        raise StartupError(f"environment variable {STATE_KEYS_ENV}: {exc}") from None


def _configured_keys(environ: Mapping[str, str]) -> list[str]:
    return [key.strip() for key in environ.get(STATE_KEYS_ENV, "").split(",") if key.strip()]


def _principal_of(ctx: ServerRequestContext[Any, Any]) -> str | None:
    """Who a requestState is bound to: the authenticated caller, or nobody on an open host."""
    exchange = exchange_of_context(ctx.request)
    return exchange.principal if exchange is not None else None


class StateBoundary:
    """The SDK's requestState boundary as server middleware, built on first need (see the module)."""

    def __init__(self, environ: Mapping[str, str], *, asks_for_input: bool) -> None:
        self._environ = environ
        self._boundary: RequestStateBoundary | None = None
        if asks_for_input or _configured_keys(environ):
            self._boundary = self._build()

    def _build(self) -> RequestStateBoundary:
        from mcp.server.request_state import RequestStateBoundary

        return RequestStateBoundary(request_state_security(self._environ), default_audience=SERVER_NAME)

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if self._boundary is None:
            carries_state = ctx.params is not None and ctx.params.get("requestState") is not None
            if ctx.method not in INPUT_REQUIRED_METHODS or not carries_state:
                # Nothing here asks for input, so no result carries a requestState to seal either.
                return await call_next(ctx)
            self._boundary = self._build()
        return await self._boundary(ctx, call_next)
