"""The fake upstream: a scriptable HTTP API on a real loopback port that records every request."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json as jsonlib
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiohttp import web

_MISSING: Any = object()


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake upstream received."""

    method: str
    path: str  # decoded, without the query string
    query: Mapping[str, str]  # a multidict: .getall(name) for a repeated parameter
    headers: Mapping[str, str]  # case-insensitive (a multidict)
    body: bytes
    path_params: Mapping[str, str] = field(default_factory=dict)
    raw_path: str = ""  # path and query string exactly as sent, percent-encoding kept

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body decoded as JSON; ``None`` for an empty body."""
        return jsonlib.loads(self.body) if self.body else None


@dataclass(frozen=True)
class FakeResponse:
    """What the fake upstream answers. A route ``handler`` may return one."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    # Send ``body`` this many times as a chunked stream, without Content-Length: a body too large to build.
    repeat: int = 1
    # Close the connection instead of answering (after ``delay``): a reset the client must survive.
    disconnect: bool = False

    @classmethod
    def of_json(
        cls, document: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> FakeResponse:
        return cls(status, jsonlib.dumps(document).encode(), "application/json", dict(headers or {}))


Handler = Callable[[RecordedRequest], "FakeResponse | Any"]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    respond: Handler


def _path_pattern(path: str) -> re.Pattern[str]:
    """``*`` matches any path; ``{name}`` matches one path segment."""
    if path == "*":
        return re.compile(r"(?s).*")
    parts = re.split(r"(\{[A-Za-z_][A-Za-z0-9_]*\})", path)
    regex = "".join(
        f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") and part.endswith("}") else re.escape(part)
        for part in parts
    )
    return re.compile(regex)


def _fixed(response: FakeResponse) -> Handler:
    return lambda _request: response


def _as_response(answer: Any) -> FakeResponse:
    return answer if isinstance(answer, FakeResponse) else FakeResponse.of_json(answer)


def _delayed(handler: Handler, delay: float) -> Handler:
    if not delay:
        return handler
    return lambda request: dataclasses.replace(_as_response(handler(request)), delay=delay)


class FakeUpstream:
    """A scriptable upstream API on a real loopback port.

    It runs its own event loop in a thread, so a ``host serve`` process (or any
    client, sync or async) can reach it. Requests without a scripted route get
    404 with a JSON body saying so; every request is recorded. Use it as a
    context manager (``with FakeUpstream() as fake:``) or call ``start``/``stop``.
    """

    def __init__(self) -> None:
        self._routes: list[_Route] = []
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def __enter__(self) -> FakeUpstream:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:<port>`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @contextlib.contextmanager
    def capture(self) -> Iterator[list[RecordedRequest]]:
        """The requests that arrive inside the ``with`` block (the list fills when the block ends)."""
        with self._lock:
            start = len(self._requests)
        seen: list[RecordedRequest] = []
        try:
            yield seen
        finally:
            with self._lock:
                seen.extend(self._requests[start:])

    def route(
        self,
        method: str,
        path: str,
        *,
        status: int = 200,
        json: Any = _MISSING,
        text: str | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        handler: Handler | None = None,
    ) -> None:
        """Answer ``method path`` (``*`` for any method or any path; ``{name}`` for a segment).

        Give at most one of ``json``, ``text``, ``body`` and ``handler``. A handler is
        called with the :class:`RecordedRequest` and returns a :class:`FakeResponse`,
        or any other value to be sent as JSON with status 200. ``delay`` (seconds)
        holds the answer back, to exercise timeouts. The latest matching route wins,
        so a test can override an earlier one.
        """
        given = [
            name
            for name, present in (
                ("json", json is not _MISSING),
                ("text", text is not None),
                ("body", body is not None),
                ("handler", handler is not None),
            )
            if present
        ]
        if len(given) > 1:
            raise ValueError(
                f"route(): give at most one of json, text, body, handler (got {', '.join(given)})"
            )
        extra = dict(headers or {})
        if handler is not None:
            respond = _delayed(handler, delay)
        elif text is not None:
            respond = _fixed(FakeResponse(status, text.encode(), content_type or "text/plain", extra, delay))
        elif body is not None:
            respond = _fixed(
                FakeResponse(status, body, content_type or "application/octet-stream", extra, delay)
            )
        else:
            document = jsonlib.dumps({} if json is _MISSING else json).encode()
            respond = _fixed(FakeResponse(status, document, content_type or "application/json", extra, delay))
        with self._lock:
            self._routes.append(_Route(method.upper(), _path_pattern(path), respond))

    def reset(self) -> None:
        """Forget every route and recorded request."""
        with self._lock:
            self._routes.clear()
            self._requests.clear()

    def _match(self, method: str, path: str) -> tuple[_Route | None, dict[str, str]]:
        with self._lock:
            routes = list(reversed(self._routes))
        for candidate in routes:
            match = candidate.pattern.fullmatch(path)
            if match and candidate.method in ("*", method):
                return candidate, match.groupdict()
        return None, {}

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web
        from multidict import CIMultiDict, MultiDict

        body = await request.read()
        route, params = self._match(request.method, request.path)
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=MultiDict(request.query),
            headers=CIMultiDict(request.headers),
            body=body,
            path_params=params,
            raw_path=request.raw_path,
        )
        with self._lock:
            self._requests.append(record)
        if route is None:
            return web.json_response(
                {
                    "error": f"fake_upstream: no route for {request.method} {request.path}; script one "
                    "with fake_upstream.route(method, path, json=...)"
                },
                status=404,
            )
        try:
            answer = _as_response(route.respond(record))
        except Exception as exc:  # a broken handler is the test's bug: say so instead of hanging
            return web.json_response({"error": f"fake_upstream handler raised {exc!r}"}, status=500)
        if answer.delay:
            await asyncio.sleep(answer.delay)
        return await _send(request, answer)

    def start(self) -> None:
        from aiohttp import web

        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, shutdown_timeout=1, access_log=None)

        async def setup() -> None:
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = int(runner.addresses[0][1])

        def run() -> None:
            try:
                loop.run_until_complete(setup())
            except BaseException as exc:
                failure.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()

        self._loop, self._runner = loop, runner
        self._thread = threading.Thread(target=run, name="fake_upstream", daemon=True)
        self._thread.start()
        if not started.wait(10) or failure:
            raise RuntimeError(f"fake_upstream did not start: {failure[0] if failure else 'timeout'}")

    def stop(self) -> None:
        loop, runner, thread = self._loop, self._runner, self._thread
        if loop is None or runner is None or thread is None:
            return

        async def cleanup() -> None:
            await runner.cleanup()
            current = asyncio.current_task()
            pending = [task for task in asyncio.all_tasks() if task is not current]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        self._loop = self._runner = self._thread = None


async def _send(request: web.Request, answer: FakeResponse) -> web.StreamResponse:
    from aiohttp import web

    if answer.disconnect:
        if request.transport is not None:
            request.transport.close()
        return web.Response()  # never sent: the connection is gone
    if answer.repeat > 1:
        stream = web.StreamResponse(status=answer.status, headers=dict(answer.headers))
        stream.content_type = answer.content_type
        await stream.prepare(request)
        for _ in range(answer.repeat):  # bounded by the scripted count
            await stream.write(answer.body)
        await stream.write_eof()
        return stream
    response = web.Response(status=answer.status, body=answer.body, headers=dict(answer.headers))
    response.content_type = answer.content_type
    return response
