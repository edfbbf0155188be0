"""MCP over stdio answers every request it read before stdin closed (issue 11 #7).

The SDK's server loop ends, cancelling the handlers still running, as soon as its read stream ends. A client
that writes its requests and closes stdin (a pipe, a script, ``host serve --stdio FILE < requests``) then
loses the answers still in flight. :func:`answer_before_eof` sits between the stdio streams and the server:
it remembers the id of every request passed in and holds the end of input back until each has had its
response or error written out, or until ``grace`` seconds have gone by.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
import mcp_types as types
from mcp.shared._context_streams import create_context_streams
from mcp.shared._stream_protocols import ReadStream, WriteStream
from mcp.shared.message import SessionMessage

__all__ = ["answer_before_eof"]

Incoming = SessionMessage | Exception


@contextlib.asynccontextmanager
async def answer_before_eof(
    read_stream: ReadStream[Incoming],
    write_stream: WriteStream[SessionMessage],
    grace: float,
) -> AsyncIterator[tuple[ReadStream[Incoming], WriteStream[SessionMessage]]]:
    """The (read, write) streams to run the server on, in place of the stdio ones."""
    pending: set[types.RequestId] = set()
    inner_writer, inner_reader = create_context_streams[Incoming](0)
    outer_writer, outer_reader = create_context_streams[SessionMessage](0)

    reading = anyio.CancelScope()
    all_answered = anyio.Event()  # set once stdin is closed and every request read has its answer
    stdin_closed = False

    async def pass_requests_in() -> None:
        nonlocal stdin_closed
        with reading:
            async with inner_writer:
                async for incoming in read_stream:
                    if isinstance(incoming, SessionMessage) and isinstance(
                        incoming.message, types.JSONRPCRequest
                    ):
                        pending.add(incoming.message.id)
                    await inner_writer.send(incoming)
                stdin_closed = True
                if pending:  # stdin is closed: let what was asked be answered first
                    with anyio.move_on_after(grace):
                        await all_answered.wait()

    async def pass_answers_out() -> None:
        async with outer_reader, write_stream:  # closing stdout's stream ends the stdio writer
            async for outgoing in outer_reader:
                await write_stream.send(outgoing)
                if isinstance(outgoing.message, types.JSONRPCResponse | types.JSONRPCError):
                    pending.discard(outgoing.message.id)
                    if stdin_closed and not pending:
                        all_answered.set()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(pass_requests_in)
        tasks.start_soon(pass_answers_out)
        try:
            yield inner_reader, outer_writer
        finally:
            reading.cancel()  # the server is done (EOF, or it stopped): read no more
            await outer_writer.aclose()  # and let the answers it wrote out
