"""Load generators: ``wrk`` driven by a generated Lua script, or a bounded Python aiohttp fallback.

Both report the same :class:`Measurement`. A request counts as an error when the connection fails or times
out, when the status is 300 or more, or when the body lacks the leg's ``expect`` string (e.g. an MCP answer
with ``"isError":true`` is an error although its HTTP status is 200).

The fallback is also a script, run in its own process so that it can be pinned like wrk:

    .venv/bin/python bench/loadgen.py --url http://127.0.0.1:28081/v1/customer-sessions \\
        --body '{"customer_id": "c-1"}' --header 'Content-Type: application/json' -c 32 -d 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

MARKER = "BENCH "
REQUEST_TIMEOUT_S = 5.0
# A hard ceiling on any one run, whatever duration was asked for.
MAX_RUN_S = 600.0
DEFAULT_MAX_REQUESTS = 5_000_000
LOOPBACK = ("http://127.0.0.1:", "http://localhost:")


@dataclass(frozen=True)
class Request:
    """One POST, sent over and over."""

    url: str
    body: bytes
    headers: Mapping[str, str]
    expect: str = ""

    def __post_init__(self) -> None:
        if not self.url.startswith(LOOPBACK):
            raise ValueError(f"loopback URLs only, not {self.url}")


@dataclass
class Measurement:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    detail: dict[str, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def _parse(output: str) -> Measurement:
    for line in output.splitlines():
        if line.startswith(MARKER):
            data = json.loads(line[len(MARKER) :])
            return Measurement(
                requests=int(data["requests"]),
                seconds=float(data["seconds"]),
                p50_ms=float(data["p50_ms"]),
                p99_ms=float(data["p99_ms"]),
                errors=int(data["errors"]),
                detail={str(k): int(v) for k, v in data.get("detail", {}).items()},
            )
    raise RuntimeError(f"load generator printed no {MARKER.strip()} line:\n{output[-2000:]}")


# --- wrk ---------------------------------------------------------------------------------------------

_LUA = """
wrk.method = "POST"
wrk.body = [==[{body}]==]
{headers}
local expect = [==[{expect}]==]
local threads = {{}}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bad = 0
end

function response(status, headers, body)
  if status >= 300 or (expect ~= "" and (body == nil or not string.find(body, expect, 1, true))) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do
    b = b + (t:get("bad") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    '{marker}{{"requests": %d, "seconds": %.6f, "p50_ms": %.4f, "p99_ms": %.4f, "errors": %d, '
    .. '"detail": {{"connect": %d, "read": %d, "write": %d, "timeout": %d, "bad_response": %d}}}}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    e.connect + e.read + e.write + e.timeout + b, e.connect, e.read, e.write, e.timeout, b))
end
"""


def _lua_long(text: str) -> str:
    if "]==]" in text:
        raise ValueError(f"cannot embed {text!r} in a Lua long string")
    return text


def wrk_script(request: Request) -> str:
    headers = "\n".join(
        f"wrk.headers[ [==[{_lua_long(k)}]==] ] = [==[{_lua_long(v)}]==]" for k, v in request.headers.items()
    )
    return _LUA.format(
        body=_lua_long(request.body.decode()),
        headers=headers,
        expect=_lua_long(request.expect),
        marker=MARKER,
    )


def wrk_version() -> str | None:
    path = shutil.which("wrk")
    if path is None:
        return None
    done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    match = re.search(r"wrk\s+(\S+)", done.stdout + done.stderr)
    return f"wrk {match.group(1)}" if match else "wrk"


def run_wrk(
    request: Request,
    *,
    connections: int,
    seconds: float,
    preexec: Callable[[], None] | None = None,
) -> Measurement:
    """``wrk -t1`` for whole ``seconds``: one thread is plenty against a Python server, and stays on one core.

    wrk is bounded by time only (its request count follows); ``subprocess`` adds a hard timeout.
    """
    seconds = min(seconds, MAX_RUN_S)
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script = Path(tmp) / "leg.lua"
        script.write_text(wrk_script(request))
        command = [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, math.ceil(seconds))}s",
            f"--timeout={REQUEST_TIMEOUT_S:g}s",
            "-s",
            str(script),
            request.url,
        ]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 60, preexec_fn=preexec
        )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return _parse(done.stdout)


# --- Python fallback -----------------------------------------------------------------------------------


def run_python(
    request: Request,
    *,
    connections: int,
    seconds: float,
    preexec: Callable[[], None] | None = None,
    max_requests: int = DEFAULT_MAX_REQUESTS,
) -> Measurement:
    """Run this file as a script in its own (pinnable) process, bounded by time and by request count."""
    seconds = min(seconds, MAX_RUN_S)
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--url",
        request.url,
        "--body",
        request.body.decode(),
        "--expect",
        request.expect,
        "-c",
        str(connections),
        "-d",
        str(seconds),
        "--max-requests",
        str(max_requests),
    ]
    for name, value in request.headers.items():
        command += ["--header", f"{name}: {value}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, preexec_fn=preexec)
    if done.returncode != 0:
        raise RuntimeError(f"python load generator failed ({done.returncode}): {done.stderr[-2000:]}")
    return _parse(done.stdout)


def _percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))
    return ordered[index]


async def _drive(request: Request, connections: int, seconds: float, max_requests: int) -> Measurement:
    import aiohttp  # only the fallback needs it

    latencies: list[float] = []
    detail = {"connect": 0, "read": 0, "timeout": 0, "bad_response": 0}
    started = time.perf_counter()
    deadline = started + seconds
    issued = 0
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, skip_auto_headers=()) as session:

        async def worker() -> None:
            nonlocal issued
            while issued < max_requests and time.perf_counter() < deadline:
                issued += 1
                begin = time.perf_counter()
                try:
                    async with session.post(
                        request.url, data=request.body, headers=dict(request.headers)
                    ) as r:
                        body = await r.text()
                        if r.status >= 300 or (request.expect and request.expect not in body):
                            detail["bad_response"] += 1
                except TimeoutError:
                    detail["timeout"] += 1
                except aiohttp.ClientConnectionError:
                    detail["connect"] += 1
                except aiohttp.ClientError:
                    detail["read"] += 1
                latencies.append(time.perf_counter() - begin)

        await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return Measurement(
        requests=len(latencies),
        seconds=elapsed,
        p50_ms=_percentile(ordered, 0.50) * 1e3,
        p99_ms=_percentile(ordered, 0.99) * 1e3,
        errors=sum(detail.values()),
        detail=detail,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="bounded aiohttp load generator (wrk fallback)")
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", default="")
    parser.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    parser.add_argument("--expect", default="", help="a successful body contains this string")
    parser.add_argument("-c", "--connections", type=int, default=32)
    parser.add_argument("-d", "--seconds", type=float, default=10.0)
    parser.add_argument("--max-requests", type=int, default=DEFAULT_MAX_REQUESTS)
    args = parser.parse_args()
    headers = dict(h.split(":", 1) for h in args.header)
    request = Request(
        args.url, args.body.encode(), {k.strip(): v.strip() for k, v in headers.items()}, args.expect
    )
    seconds = min(args.seconds, MAX_RUN_S)
    result = asyncio.run(_drive(request, args.connections, seconds, max(1, args.max_requests)))
    data = asdict(result)
    print(MARKER + json.dumps(data), flush=True)


def pin_to(cpu: int | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` pinning the child to one CPU, or None where that is not possible."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return None

    def pin() -> None:
        os.sched_setaffinity(0, {cpu})

    return pin


if __name__ == "__main__":
    main()
