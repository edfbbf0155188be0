"""One HTTP exchange as the SDK kernel sees it, and its answer: JSON, or Server-Sent Events."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from aiohttp import web
from mcp.shared.exceptions import NoBackChannelError
from mcp.shared.inbound import ERROR_CODE_HTTP_STATUS
from mcp.shared.message import MessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp.types import ErrorData

from host.adapters.mcp.items import CALLER_UNAUTHORIZED
from host.adapters.mcp.state import exchange_of
from host.observability import REQUEST_ID_HEADER, request_id

log = logging.getLogger("host.mcp")

MOCK_HEADER = "X-Host-Mock"
SSE_PING_INTERVAL = 15.0  # seconds between keep-alive comments on a quiet event stream
# 2026-07-28 error statuses: the SDK's, and 403 for an item refused for want of its own credential.
ERROR_STATUS = {**ERROR_CODE_HTTP_STATUS, CALLER_UNAUTHORIZED: 403}
SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",
}


def compact_dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _ping_interval() -> float:
    # The package re-exports the constant as the one to tune (tests shorten it): read it there.
    package = sys.modules.get(__name__.rpartition(".")[0])
    return float(getattr(package, "SSE_PING_INTERVAL", SSE_PING_INTERVAL))


@dataclass
class OneShotDispatchContext:
    """The SDK's ``DispatchContext`` for one HTTP exchange: no back-channel for server requests.

    Notifications about the request (progress, log messages) go to ``sink`` as SSE frames
    when the client accepts an event stream; without one they are dropped.
    """

    transport: TransportContext
    request_id: Any
    message_metadata: MessageMetadata
    progress_token: str | int | None = None
    sink: EventStream | None = None
    cancel_requested: anyio.Event = field(default_factory=anyio.Event)
    can_send_request: bool = False

    async def send_raw_request(
        self, method: str, params: Mapping[str, Any] | None, opts: Any = None
    ) -> dict[str, Any]:
        raise NoBackChannelError(method)

    async def notify(self, method: str, params: Mapping[str, Any] | None, opts: Any = None) -> None:
        if self.sink is not None:
            await self.sink.send(notification_message(method, params))

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        if self.progress_token is None:
            return
        params: dict[str, Any] = {"progressToken": self.progress_token, "progress": progress}
        if total is not None:
            params["total"] = total
        if message is not None:
            params["message"] = message
        await self.notify("notifications/progress", params)


def notification_message(method: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = dict(params)
    return message


def rpc_error(
    request_id: Any,
    code: int,
    message: str,
    *,
    status: int,
    data: Any = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return web.json_response(
        {"jsonrpc": "2.0", "id": request_id, "error": error}, status=status, headers=headers
    )


def reply(
    request: web.Request, request_id: Any, outcome: dict[str, Any] | ErrorData, *, modern: bool
) -> web.Response:
    """The JSON answer to a request: its result, or its JSON-RPC error."""
    if isinstance(outcome, ErrorData):
        # The handshake era answers JSON-RPC errors with 200; 2026-07-28 maps codes to statuses.
        status = ERROR_STATUS.get(outcome.code, 500) if modern else 200
        return rpc_error(request_id, outcome.code, outcome.message, data=outcome.data, status=status)
    response = web.json_response({"jsonrpc": "2.0", "id": request_id, "result": outcome}, dumps=compact_dumps)
    if exchange_of(request).mocked:
        response.headers[MOCK_HEADER] = "true"
    return response


async def finish_stream(
    stream: EventStream, request_id: Any, outcome: dict[str, Any] | ErrorData
) -> web.StreamResponse:
    """End the started event stream with the request's result or JSON-RPC error."""
    if isinstance(outcome, ErrorData):
        error = outcome.model_dump(mode="json", exclude_none=True)
        return await stream.finish({"jsonrpc": "2.0", "id": request_id, "error": error})
    return await stream.finish({"jsonrpc": "2.0", "id": request_id, "result": outcome})


def _sse_event(message: Mapping[str, Any]) -> bytes:
    """One JSON-RPC message as an SSE ``message`` event (the SDK's framing)."""
    return f"event: message\r\ndata: {compact_dumps(message)}\r\n\r\n".encode()


class EventStream:
    """The answer to one POST, switched to Server-Sent Events by the first notification.

    Until then nothing is sent, and the exchange may still answer plain JSON. Once
    started, a quiet stream gets a keep-alive comment every :data:`SSE_PING_INTERVAL`
    seconds, and :meth:`finish` writes the JSON-RPC answer as the last event.
    """

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.response: web.StreamResponse | None = None
        self._lock = asyncio.Lock()
        self._keepalive: asyncio.Task[None] | None = None
        self._broken = False

    @property
    def started(self) -> bool:
        return self.response is not None

    async def send(self, message: Mapping[str, Any]) -> None:
        """Send a notification, starting the stream if need be; dropped once the client is gone."""
        async with self._lock:
            if self.response is None:
                # Headers go out with the first event, before any middleware sees the response.
                response = web.StreamResponse(
                    status=200, headers={**SSE_HEADERS, REQUEST_ID_HEADER: request_id.get()}
                )
                if exchange_of(self.request).mocked:
                    response.headers[MOCK_HEADER] = "true"
                await response.prepare(self.request)
                self.response = response
                self._keepalive = asyncio.create_task(self._ping())
            await self._write(_sse_event(message))

    async def finish(self, message: Mapping[str, Any]) -> web.StreamResponse:
        """End the started stream with the exchange's answer."""
        assert self.response is not None
        self.close()
        async with self._lock:
            await self._write(_sse_event(message))
            if not self._broken:
                try:
                    await self.response.write_eof()
                except (ConnectionError, RuntimeError):
                    self._broken = True
        return self.response

    def close(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(_ping_interval())
            async with self._lock:
                await self._write(b": ping\r\n\r\n")

    async def _write(self, data: bytes) -> None:
        assert self.response is not None
        if self._broken:
            return
        try:
            await self.response.write(data)
        except (ConnectionError, RuntimeError):
            self._broken = True  # the client left; the call still runs to its end
            log.debug("MCP: the client closed the event stream")


def _accept_kinds(accept: str) -> set[str]:
    return {part.split(";")[0].strip().lower() for part in accept.split(",")}


def accepts_json(accept: str) -> bool:
    if not accept:
        return True  # no preference stated: JSON is acceptable
    return bool(_accept_kinds(accept) & {"application/json", "application/*", "*/*"})


def accepts_event_stream(accept: str) -> bool:
    """Whether the client takes Server-Sent Events (stated, never assumed from a missing Accept)."""
    return bool(_accept_kinds(accept) & {"text/event-stream", "text/*", "*/*"})
