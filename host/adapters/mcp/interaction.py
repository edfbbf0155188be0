"""The client side of a call: its progress and log reports, its declared capabilities, input requests."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from functools import partial
from typing import Any

from mcp.server.connection import allowed_log_levels
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    InputRequiredResult,
    LoggingMessageNotification,
    LoggingMessageNotificationParams,
    ServerNotification,
)
from mcp_types import MISSING_REQUIRED_CLIENT_CAPABILITY
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from host.model import InputHook, InputRequired, InputRound
from host.reporting import check_level

log = logging.getLogger("host.mcp")

Progress = Callable[[float, float | None, str | None], Awaitable[None]]
Notify = Callable[[ServerNotification], Awaitable[None]]


class Notifier:
    """A call's progress and log messages (a :class:`host.reporting.CallReport`), sent in order.

    Reports arrive synchronously from the call; one task forwards them to the client on the
    request's own channel while the call runs, and :meth:`aclose` waits for the last one, so
    they all precede the result. Progress goes out only when the caller asked for it (a
    ``progressToken``); log messages only at the levels the request accepts (2026-07-28: its
    ``_meta`` log level, none without one; handshake era: every level).
    """

    def __init__(self, levels: frozenset[str], progress: Progress | None, notify: Notify) -> None:
        self._levels = levels
        self._progress = progress  # None: the caller asked for no progress
        self._notify = notify
        self._queue: asyncio.Queue[Callable[[], Awaitable[None]] | None] | None = None
        self._pump: asyncio.Task[None] | None = None

    @classmethod
    def of(cls, ctx: ServerRequestContext[Any]) -> Notifier:
        """The reports of the request ``ctx`` serves, sent through the SDK's request channel."""
        # The session knows the caller's progress token (or, in process, its callback).
        notify = partial(ctx.session.send_notification, related_request_id=ctx.request_id)
        return cls(allowed_log_levels(ctx.protocol_version, ctx.meta), ctx.session.report_progress, notify)

    def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        if self._progress is not None:
            self._send(partial(self._progress, progress, total, message))

    def log(self, level: str, data: Any, logger: str | None = None) -> None:
        check_level(level)
        if level in self._levels:
            params = LoggingMessageNotificationParams.model_validate(
                {"level": level, "data": data, "logger": logger}
            )
            self._send(partial(self._notify, LoggingMessageNotification(params=params)))

    def _send(self, report: Callable[[], Awaitable[None]]) -> None:
        if self._queue is None:  # most calls report nothing: no queue, no task
            self._queue = asyncio.Queue()
            self._pump = asyncio.get_running_loop().create_task(self._forward(self._queue))
        self._queue.put_nowait(report)

    async def _forward(self, queue: asyncio.Queue[Callable[[], Awaitable[None]] | None]) -> None:
        while (report := await queue.get()) is not None:
            try:
                await report()
            except Exception:  # a report must never fail the call
                log.debug("MCP: could not send a progress or log notification", exc_info=True)

    async def aclose(self) -> None:
        """Wait until every report is sent; drop them when the call itself is being cancelled."""
        if self._pump is None or self._queue is None:
            return
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            self._pump.cancel()
            return
        self._queue.put_nowait(None)
        await self._pump


def _declared_capabilities(ctx: ServerRequestContext[Any]) -> frozenset[str]:
    """The client capabilities this request declared (none are known on handshake-era requests)."""
    capabilities = ctx.session.client_capabilities
    if capabilities is None:
        return frozenset()
    return frozenset(capabilities.model_dump(by_alias=True, exclude_none=True))


def _missing_capabilities(names: Iterable[str]) -> MCPError:
    missing = sorted(set(names))
    return MCPError(
        code=MISSING_REQUIRED_CLIENT_CAPABILITY,
        message=f"This request needs client capabilities the request did not declare: {', '.join(missing)}",
        data={"requiredCapabilities": {name: {} for name in missing}},
    )


def require_client(ctx: ServerRequestContext[Any], required: Iterable[str]) -> None:
    """2026-07-28 requests declare their client's capabilities; refuse one that lacks a required one."""
    if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return  # the handshake declared them on another request: not known here
    declared = _declared_capabilities(ctx)
    missing = [name for name in required if name not in declared]
    if missing:
        raise _missing_capabilities(missing)


def ask(
    ctx: ServerRequestContext[Any], hook: InputHook, arguments: Mapping[str, Any], request_state: str | None
) -> InputRequired | Mapping[str, Any]:
    """One round of a call's input hook, with the client's responses and the previous round's state."""
    raw = (ctx.params or {}).get("inputResponses")
    responses = (
        {str(key): value for key, value in raw.items() if isinstance(value, Mapping)}
        if isinstance(raw, Mapping)
        else {}
    )
    state: Any = {}
    if request_state:  # already decrypted and verified by the RequestStateBoundary
        try:
            state = json.loads(request_state)
        except ValueError:
            state = None
        if not isinstance(state, dict):
            raise MCPError(code=INVALID_PARAMS, message="Invalid or expired requestState")
    return hook(InputRound(arguments, responses, state, _declared_capabilities(ctx)))


def input_required(ctx: ServerRequestContext[Any], ask: InputRequired) -> InputRequiredResult:
    missing = {request.capability for request in ask.requests.values()} - _declared_capabilities(ctx)
    if missing:
        raise _missing_capabilities(missing)
    wire: dict[str, Any] = {
        "resultType": "input_required",
        "inputRequests": {
            key: {"method": r.method, "params": dict(r.params)} for key, r in ask.requests.items()
        },
    }
    if ask.state is not None:
        wire["requestState"] = json.dumps(ask.state, separators=(",", ":"))  # sealed by the boundary
    try:
        return InputRequiredResult.model_validate(wire, by_name=False)
    except ValidationError:
        log.exception("MCP: %s asked the client for malformed input", ctx.method)
        raise MCPError(code=INTERNAL_ERROR, message="The server built an invalid input request") from None


def input_unavailable(what: str, ask: InputRequired) -> str:
    methods = ", ".join(sorted({request.method for request in ask.requests.values()}))
    return (
        f"{what} needs input from the client ({methods}). This host serves MCP statelessly and asks "
        f"for input only with protocol 2026-07-28 input requests; reconnect with that version."
    )
