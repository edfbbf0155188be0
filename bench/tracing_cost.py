"""What tracing costs: the host's REST and MCP legs with tracing off, on, and with no tracing hook at all.

    .venv/bin/python bench/tracing_cost.py              # about 3.5 minutes on a 2-core machine
    .venv/bin/python bench/tracing_cost.py --quick      # about 1.5 minutes

Four hosts run side by side (same settings as bench/run.py's host: inbound auth, INFO logging), against
one fake upstream:

- **anchor**: a copy of the host package with the two per-request hooks of tracing cut out of the source
  (the MCP adapter's ``mcp_message`` call and the histogram's exemplar check), run from a temporary folder
  ahead of the installed package: the host as if tracing had never been added;
- **off**: the host as installed, ``[observability]`` absent (the default);
- **on**: ``[observability] enabled = true``, sampling 1.0, exporting every span over OTLP/HTTP to a local
  receiver (a sink process that answers like a collector);
- **on@0.1**: the same with sampling 0.1 (every request still makes its spans and sends traceparent
  upstream; one trace in ten is recorded and exported).

The legs are interleaved (anchor, off, on, on@0.1; anchor, ...) so that a noisy neighbour hits all four
alike, and each ratio is the median of the rounds: off / anchor is what tracing costs when it is off,
on / anchor what it costs when it records everything.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import Measurement, Request, pin_to, run_python, run_wrk
from run import (
    API_KEY,
    BENCH,
    HOST_AUTH,
    HOST_KEY,
    MODERN,
    ROOT,
    cpus,
    mcp_request,
    preflight,
    rest_request,
    started,
)

VARIANTS = ("anchor", "off", "on", "on@0.1")
SAMPLING = {"on": 1.0, "on@0.1": 0.1}  # the traced variants and their [observability] sampling
# The per-request hooks tracing added, and what the source said before (anchor = the host without them).
HOOKS = {
    "adapters/mcp/transport.py": (
        re.compile(r"^\s*mcp_message\(request, .*\n", re.MULTILINE),
        "",
    ),
    "observability.py": (
        re.compile(r"\.observe\(elapsed, exemplar\(\) if exemplar is not None else None\)"),
        ".observe(elapsed)",
    ),
}


def anchor_package(into: Path) -> Path:
    """A copy of ``host/`` without the tracing hooks; SystemExit when a hook is not where expected."""
    target = into / "host"
    shutil.copytree(ROOT / "host", target, ignore=shutil.ignore_patterns("__pycache__"))
    for relative, (pattern, replacement) in HOOKS.items():
        file = target / relative
        text, count = pattern.subn(replacement, file.read_text())
        if count != 1:
            raise SystemExit(f"anchor: the tracing hook in host/{relative} moved; update HOOKS in {__file__}")
        file.write_text(text)
    return into


SINK = """
import sys
from aiohttp import web

async def export(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=b"", content_type="application/x-protobuf")

app = web.Application(client_max_size=64 * 1024 * 1024)
app.router.add_post("/v1/traces", export)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def host_config(folder: Path, name: str, rest: int, mcp: int, upstream: str, sampling: float | None) -> Path:
    config = folder / f"{name.replace('@', '-')}.toml"
    traced = f"[observability]\nenabled = true\nsampling = {sampling}\n" if sampling is not None else ""
    config.write_text(
        f'[server]\nhost = "127.0.0.1"\nrest_port = {rest}\nmcp_port = {mcp}\n'
        f'[consumes.tratta-customer-sessions]\nbase_uri = "{upstream}"\ntimeout = 10\n'
        '[[auth.keys]]\nname = "bench"\nenv = "HOST_KEY_BENCH"\n'
        '[logging]\nlevel = "INFO"\n' + traced
    )
    return config


def measure(args: argparse.Namespace) -> dict[str, dict[str, list[Measurement]]]:
    cores = cpus()
    two = len(cores) >= 2
    load_cpu, server_cpu = (cores[0], cores[1]) if two else (None, None)
    run_load = run_wrk if args.loadgen == "wrk" else run_python
    base, py = args.port_base, sys.executable
    ports = {"upstream": base + 90, "sink": base + 95}
    results: dict[str, dict[str, list[Measurement]]] = {v: {"rest": [], "mcp": []} for v in VARIANTS}
    with ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tracing-cost-")))
        upstream_url = f"http://127.0.0.1:{ports['upstream']}/api/v1"
        fake = [py, str(BENCH / "fake_upstream.py"), "--port", str(ports["upstream"])]
        stack.enter_context(started("upstream", fake, ports["upstream"], logs, cpu=load_cpu))
        sink = [py, "-c", SINK, str(ports["sink"])]
        stack.enter_context(started("sink", sink, ports["sink"], logs, cpu=load_cpu))
        anchor_path = anchor_package(logs / "anchor")
        requests: dict[str, dict[str, Request]] = {}
        for index, variant in enumerate(VARIANTS):
            rest, mcp = base + 100 + 10 * index, base + 105 + 10 * index
            config = host_config(logs, variant, rest, mcp, upstream_url, SAMPLING.get(variant))
            env = {"TRATTA_API_KEY": API_KEY, "HOST_KEY_BENCH": HOST_KEY}
            if variant in SAMPLING:
                env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{ports['sink']}"
            if variant == "anchor":
                env["PYTHONPATH"] = str(anchor_path)
            command = [py, "-m", "host", "serve", "--config", str(config)]
            stack.enter_context(started(f"host-{variant}", command, mcp, logs, cpu=server_cpu, env=env))
            requests[variant] = {
                "rest": rest_request(f"http://127.0.0.1:{rest}/v1/customer-sessions", HOST_AUTH),
                "mcp": mcp_request(f"http://127.0.0.1:{mcp}/mcp", MODERN, HOST_AUTH),
            }
            for request in requests[variant].values():
                preflight(request)
        for round_ in range(1, args.rounds + 1):
            for leg in ("rest", "mcp"):
                for variant in VARIANTS:
                    request = requests[variant][leg]
                    if args.warmup > 0:
                        run_load(
                            request,
                            connections=args.connections,
                            seconds=args.warmup,
                            preexec=pin_to(load_cpu),
                        )
                    done = run_load(
                        request, connections=args.connections, seconds=args.seconds, preexec=pin_to(load_cpu)
                    )
                    results[variant][leg].append(done)
                    print(
                        f"  round {round_} {leg:<4} {variant:<6} {done.rps:7.0f} req/s  "
                        f"p50 {done.p50_ms:6.2f} ms  p99 {done.p99_ms:7.2f} ms  errors {done.errors}",
                        flush=True,
                    )
    return results


def render(results: dict[str, dict[str, list[Measurement]]]) -> str:
    lines = ["", "leg   variant  median req/s  median p50 ms  vs anchor (req/s)  vs anchor (p50)"]
    for leg in ("rest", "mcp"):
        anchor = results["anchor"][leg]
        for variant in VARIANTS:
            runs = results[variant][leg]
            rps = statistics.median(m.rps for m in runs)
            p50 = statistics.median(m.p50_ms for m in runs)
            # Per round against that round's anchor, then the median: noise shared by a round cancels.
            rps_ratio = statistics.median(m.rps / a.rps for m, a in zip(runs, anchor, strict=True) if a.rps)
            p50_ratio = statistics.median(
                m.p50_ms / a.p50_ms for m, a in zip(runs, anchor, strict=True) if a.p50_ms
            )
            errors = sum(m.errors for m in runs)
            lines.append(
                f"{leg:<5} {variant:<8} {rps:12.0f} {p50:14.2f} {rps_ratio:18.3f} {p50_ratio:16.3f}"
                + (f"  ({errors} errors)" if errors else "")
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", "-c", type=int, default=32)
    parser.add_argument("--seconds", "-d", type=float, default=5.0, help="measured seconds per leg")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per leg (not measured)")
    parser.add_argument("--rounds", type=int, default=4, help="anchor/off/on rounds (the median is reported)")
    parser.add_argument("--port-base", type=int, default=29000, help="ports used: base+90 … base+135")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 3 s legs")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.seconds = 2, 3.0
    if args.loadgen == "auto":
        args.loadgen = "wrk" if shutil.which("wrk") else "python"
    if not 1 <= args.rounds <= 20 or not 0 < args.seconds <= 60:
        parser.error("--rounds must be 1..20 and --seconds 0..60")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: every server is stopped by PID
    began = time.monotonic()
    print(
        f"tracing cost: {args.rounds} rounds of {args.seconds:g} s legs "
        f"at c={args.connections}, {args.loadgen}"
    )
    results = measure(args)
    print(render(results))
    print(f"\nwall time: {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
