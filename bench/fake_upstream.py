"""A fake Tratta for benchmarks: a raw asyncio HTTP/1.1 server with keep-alive, one fixed answer.

``POST /api/v1/customer-sessions`` answers 201 with a small fixed JSON document; anything else is 404.
No framework, so the upstream costs as little CPU as Python allows and is never the bottleneck.

    .venv/bin/python bench/fake_upstream.py --port 28090
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

PATH = b"/api/v1/customer-sessions"
BODY = json.dumps(
    {
        "data": {
            "id": "s",
            "portal_url": "https://x/y",
            "return_url": None,
            "expiration": "2026-01-01T00:00:00Z",
        }
    },
    separators=(",", ":"),
).encode()
CREATED = (
    b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
MAX_HEAD = 64 * 1024


class Upstream(asyncio.Protocol):
    """Parses pipelined requests out of one buffer; bodies by Content-Length or chunked."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None:
            consumed = self._one_request()
            if consumed == 0:
                return
            del self.buffer[:consumed]

    def _one_request(self) -> int:
        """Answer the first complete request in the buffer; return its length, 0 when incomplete."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD:
                self._fail()
            return 0
        head = bytes(self.buffer[:end]).split(b"\r\n")
        parts = head[0].split(b" ")
        if len(parts) != 3:
            self._fail()
            return 0
        length = 0
        chunked = False
        for line in head[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        start = end + 4
        if chunked:
            total = _chunked_length(self.buffer, start)
            if total < 0:
                return 0
        else:
            if len(self.buffer) < start + length:
                return 0
            total = start + length
        assert self.transport is not None
        ok = parts[0] == b"POST" and parts[1] == PATH
        self.transport.write(CREATED if ok else NOT_FOUND)
        return total

    def _fail(self) -> None:
        assert self.transport is not None
        self.transport.write(BAD_REQUEST)
        self.transport.close()
        self.transport = None


def _chunked_length(buffer: bytearray, start: int) -> int:
    """End offset of a complete chunked body starting at ``start``, or -1 when more bytes are needed."""
    position = start
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return -1
        size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
        position = line_end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n\r\n", position - 2)
            return -1 if trailer_end < 0 else trailer_end + 4
        position += size + 2
        if position > len(buffer):
            return -1


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Upstream, host, port, backlog=1024, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"fake upstream on http://{host}:{port}{PATH.decode()}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="fake Tratta upstream for benchmarks")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=28090)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
