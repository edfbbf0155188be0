"""The fast path of the two hot methods, ``tools/call`` and ``tools/list``, beside the SDK kernel.

The kernel (``serve_one``) validates every message with pydantic, builds a connection, a session
and a context, then validates and re-dumps the result: about a quarter of a millisecond per
call. For a plain ``tools/call`` or ``tools/list`` all of that has one possible outcome, known
in advance: this module answers such requests itself, with the same checks and the same bytes
(after JSON normalisation; ``tests/test_mcp_fastpath_differential.py`` compares the two).

A request is plain when its params carry only the keys whose meaning is reproduced here:
``name`` (a string naming a registered tool), ``arguments`` (an object) and ``_meta`` holding
only the 2026-07-28 envelope keys and the log level, and only when that ``_meta`` passed the
SDK's own validation for the method and version (once per distinct ``_meta``, remembered).
Anything else goes to the kernel, which owns its answer: an unknown tool, malformed params,
a ``progressToken``, ``requestState``, a tool that needs client capabilities or input
requests, a cursor, extra fields.

What stays identical on this path: the transport checks before it (the gate, the envelope,
the era and its headers), the item credential (:func:`.items.refusal_for`), the tool's call
(:meth:`.service.McpService.run_tool`: argument validation, limits, redaction, progress and
log reports, SSE when the client takes it), and the result, shaped as the kernel shapes it.
The fast serialisation covers results known to pass the SDK's result validation unchanged;
any other result is shaped by the kernel's own serialiser.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

import msgspec
import orjson
from aiohttp import web
from mcp.server.connection import Connection, allowed_log_levels
from mcp.server.runner import ServerRunner, modern_error_data
from mcp.types import ErrorData, ListToolsResult, RequestParams, ServerNotification
from mcp_types import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    LOG_LEVEL_META_KEY,
    PROTOCOL_VERSION_META_KEY,
    SERVER_INFO_META_KEY,
)
from mcp_types import methods as wire_methods
from mcp_types.version import LATEST_MODERN_VERSION, MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from host.adapters.mcp.content import ToolResult, error_result, tool_result_model
from host.adapters.mcp.interaction import Notifier
from host.adapters.mcp.items import ToolEntry, refusal_for
from host.adapters.mcp.service import McpService
from host.adapters.mcp.state import Exchange, exchange_of
from host.adapters.mcp.stream import (
    MOCK_HEADER,
    EventStream,
    accepts_event_stream,
    finish_stream,
    notification_message,
    reply,
)
from host.inbound import check_depth, load_json

log = logging.getLogger("host.mcp")

_CALL_KEYS: Final = frozenset({"name", "arguments", "_meta"})
_LIST_KEYS: Final = frozenset({"_meta"})
# The _meta keys whose meaning this path reproduces; any other (progressToken, traces, ...) is the kernel's.
_META_KEYS: Final = frozenset(
    {PROTOCOL_VERSION_META_KEY, CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, LOG_LEVEL_META_KEY}
)
# Types orjson would write differently from pydantic's JSON mode raise instead: such a result is
# shaped by the kernel's serialiser.
_STRICT: Final = (
    orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS
)
_REMEMBERED: Final = 256  # distinct _meta verdicts and tool lists kept (clients send the same few)
_BINARY_BLOCKS: Final = frozenset({"image", "audio"})
_DECODER: Final = msgspec.json.Decoder()


def load_json_fast(raw: bytes, max_depth: int) -> Any:
    """:func:`host.inbound.load_json` with msgspec: the same documents, and the same errors.

    msgspec reads what the stdlib reads, integers of any length included; whatever it refuses
    (NaN, a BOM, lone surrogates, UTF-16, invalid JSON, deep nesting) goes to the stdlib parser,
    which accepts or refuses it with its own message, as before.
    """
    try:
        document = _DECODER.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return load_json(raw, max_depth)
    # Nesting cannot exceed the number of brackets: most bodies need no walk to prove their depth.
    if raw.count(b"{") + raw.count(b"[") > max_depth:
        check_depth(document, max_depth)
    return document


class FastPath:
    """Answers plain ``tools/call`` and ``tools/list`` requests; None for anything else."""

    def __init__(self, service: McpService) -> None:
        self.service = service
        # The kernel's own result shaping, for results this path does not serialise itself. It
        # reads only the server; the connection is a placeholder that is never served.
        placeholder = Connection.from_envelope(LATEST_MODERN_VERSION, None, None)
        self._shaper: ServerRunner[Any] = ServerRunner(service.server, placeholder, None)
        stamp = orjson.dumps({SERVER_INFO_META_KEY: service.server.server_info_stamp})
        self._stamp = orjson.Fragment(stamp)
        self._levels: dict[tuple[str, str, bytes], frozenset[str] | None] = {}
        self._lists: dict[tuple[str, tuple[str, ...]], bytes] = {}
        self.served = 0  # requests answered here (the differential test checks the path is taken)

    async def answer(
        self,
        request: web.Request,
        request_id: str | int,
        method: str,
        params: dict[str, Any] | None,
        version: str,
    ) -> web.StreamResponse | None:
        if method == "tools/call":
            return await self._call(request, request_id, params, version)
        if method == "tools/list":
            return self._list(request, request_id, params, version)
        return None

    async def _call(
        self, request: web.Request, request_id: str | int, params: dict[str, Any] | None, version: str
    ) -> web.StreamResponse | None:
        if params is None or not params.keys() <= _CALL_KEYS:
            return None
        entry = self._plain_tool(params)
        levels = self._log_levels("tools/call", version, params) if entry is not None else None
        if entry is None or levels is None:
            return None
        self.served += 1
        exchange = exchange_of(request)
        stream = EventStream(request) if accepts_event_stream(request.headers.get("Accept", "")) else None
        exchange.stream, exchange.request_id = stream, request_id
        try:
            outcome = await self._run(request, entry, params.get("arguments") or {}, levels, exchange)
        finally:
            if stream is not None:
                stream.close()
        modern = version in MODERN_PROTOCOL_VERSIONS
        if stream is not None and stream.started:
            return await finish_stream(stream, request_id, self._shaped(outcome, version))
        if isinstance(outcome, ErrorData) or not _plain_result(outcome):
            return reply(request, request_id, self._shaped(outcome, version), modern=modern)
        result: dict[str, Any] = outcome
        if modern:
            result = {**outcome, "resultType": "complete", "_meta": self._stamp}
        try:
            body = orjson.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}, option=_STRICT)
        except TypeError:  # a value pydantic writes its own way (or cannot): the kernel's serialiser
            return reply(request, request_id, self._shaped(outcome, version), modern=modern)
        response = web.Response(body=body, content_type="application/json", charset="utf-8")
        if exchange.mocked:
            response.headers[MOCK_HEADER] = "true"
        return response

    def _plain_tool(self, params: Mapping[str, Any]) -> ToolEntry | None:
        """The tool a plain call names; None when the call is the kernel's."""
        name = params.get("name")
        entry = self.service.tools.get(name) if isinstance(name, str) else None
        if entry is None or entry.spec.request_input is not None or entry.spec.requires_client:
            return None
        if "arguments" in params and not isinstance(params["arguments"], dict):
            return None  # null or malformed arguments: the kernel's validation answers
        return entry

    async def _run(
        self,
        request: web.Request,
        entry: ToolEntry,
        arguments: Mapping[str, Any],
        levels: frozenset[str],
        exchange: Exchange,
    ) -> ToolResult | ErrorData:
        """The call as the kernel's handler makes it (the admitted request), or its JSON-RPC error."""
        refusal = refusal_for(entry, request.headers)
        if refusal is not None:
            return error_result(refusal.error.message)  # a tool's refusal is a tool error, as ever
        stream = exchange.stream

        async def notify(notification: ServerNotification) -> None:
            if stream is not None:  # the SDK session's dump, on this request's stream
                data = notification.model_dump(by_alias=True, mode="json", exclude_none=True)
                await stream.send(notification_message(data["method"], data.get("params")))

        try:  # no progressToken reaches this path: progress reports go nowhere, as in the kernel
            return await self.service.run_tool(entry, arguments, Notifier(levels, None, notify), exchange)
        except Exception as exc:
            return modern_error_data(exc)

    def _shaped(self, outcome: ToolResult | ErrorData, version: str) -> dict[str, Any] | ErrorData:
        """The result as the kernel shapes it for ``version`` (validated, sieved, stamped)."""
        if isinstance(outcome, ErrorData):
            return outcome
        try:
            model = tool_result_model(outcome)
            return self._shaper._serialize("tools/call", version, model)
        except Exception as exc:
            return modern_error_data(exc)

    def _list(
        self, request: web.Request, request_id: str | int, params: dict[str, Any] | None, version: str
    ) -> web.StreamResponse | None:
        if params is not None and not params.keys() <= _LIST_KEYS:
            return None
        if self._log_levels("tools/list", version, params) is None:
            return None
        tools, headers = self.service.tools, request.headers
        names = tuple(name for name, entry in tools.items() if refusal_for(entry, headers) is None)
        result = self._lists.get((version, names))
        if result is None:
            listed = ListToolsResult(tools=[tools[name].wire for name in names])
            try:
                result = orjson.dumps(self._shaper._serialize("tools/list", version, listed))
            except Exception:  # whatever fails here, fails the same way in the kernel: it answers
                return None
            _remember(self._lists, (version, names), result)
        self.served += 1
        body = orjson.dumps(
            {"jsonrpc": "2.0", "id": request_id, "result": orjson.Fragment(result)}, option=_STRICT
        )
        return web.Response(body=body, content_type="application/json", charset="utf-8")

    def _log_levels(
        self, method: str, version: str, params: Mapping[str, Any] | None
    ) -> frozenset[str] | None:
        """The log levels a plain request accepts; None when its ``_meta`` is the kernel's to judge."""
        meta = None if params is None else params.get("_meta")
        if meta is None:
            if params is not None and "_meta" in params:
                return None  # an explicit null
            return allowed_log_levels(version, None)
        if not isinstance(meta, dict) or not meta.keys() <= _META_KEYS:
            return None
        try:
            key = (method, version, orjson.dumps(meta, option=orjson.OPT_SORT_KEYS | _STRICT))
        except TypeError:
            return None
        if key in self._levels:
            return self._levels[key]
        verdict = _meta_verdict(method, version, meta)
        _remember(self._levels, key, verdict)
        return verdict


def _meta_verdict(method: str, version: str, meta: dict[str, Any]) -> frozenset[str] | None:
    """What the kernel makes of this ``_meta``: the log levels it opens, or None when it fails validation.

    Plain params differ only in their ``_meta``; ``name`` and ``arguments`` are checked by type.
    """
    probe: dict[str, Any] = {"name": "probe", "_meta": meta} if method == "tools/call" else {"_meta": meta}
    try:
        wire_methods.validate_client_request(method, version, probe)
    except (ValidationError, KeyError, ValueError):
        return None
    try:  # as the kernel reads it for the request's context (a malformed one reads as absent)
        request_meta = RequestParams.model_validate(probe, by_name=False).meta
    except ValidationError:
        request_meta = None
    return allowed_log_levels(version, request_meta)


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _REMEMBERED:
        cache.clear()  # bounded: a client varying its _meta only costs the kernel's price again
    cache[key] = value


def _plain_result(result: ToolResult) -> bool:
    """Whether the SDK's result validation would pass ``result`` through unchanged."""
    structured = result.get("structuredContent")
    if structured is not None and type(structured) is not dict:
        return False
    for block in result["content"]:
        kind = block.get("type")
        if kind == "text":
            if type(block.get("text")) is not str:
                return False
        elif kind in _BINARY_BLOCKS:
            if type(block.get("data")) is not str or type(block.get("mimeType")) is not str:
                return False
        else:
            return False  # embedded resources: their URIs are the SDK's to validate
    return True
