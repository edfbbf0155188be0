"""What bench/run.py measured, and how it prints it: the legs table, the ratios from the same run, issue 13's
targets (met or not), the memory marks and the py-spy profile summaries."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadgen import Measurement

MODERN, LEGACY = "2026-07-28", "2025-11-25"
# "Other CPU" above this (in % of one CPU) flags a leg as disturbed by another workload.
NOISE_PCT = 10.0
# Between the two memory marks a steady service stays flat; allocator noise is well under this.
GROWTH_TOLERANCE_MIB = 1.0
TARGET_REQUESTS = 100_000


@dataclass
class LegResult:
    key: str
    title: str
    load: Measurement
    c1: Measurement
    # Over the measured fixed-concurrency run, in % of one CPU (None without /proc):
    server_cpu: float | None = None  # the server under test
    other_cpu: float | None = None  # processes that are not part of the bench (noise)


@dataclass
class MemoryMark:
    label: str
    served: int
    rss_mib: float


@dataclass
class Report:
    settings: dict[str, Any]
    machine: dict[str, Any]
    legs: list[LegResult] = field(default_factory=list)
    memory: list[MemoryMark] = field(default_factory=list)
    rss_after_legs: dict[str, float] = field(default_factory=dict)
    # Peer name → version that ran, or the reason it did not.
    peers: dict[str, str] = field(default_factory=dict)

    def leg(self, key: str) -> LegResult | None:
        return next((leg for leg in self.legs if leg.key == key), None)


@dataclass(frozen=True)
class Target:
    label: str
    measured: str
    met: bool | None  # None: not measured in this run


# --- ratios and targets ---------------------------------------------------------------------------------

# MCP anchors: (leg prefix, name). Each is compared with the host's MCP leg of the same era.
MCP_PEERS = (("e", "SDK MCPServer"), ("f", "FastMCP from_openapi"), ("g", "ContextForge"))
ERAS = (("1", MODERN), ("2", LEGACY))


def throughput_ratio(report: Report, a: str, b: str) -> float | None:
    first, second = report.leg(a), report.leg(b)
    if first is None or second is None or second.load.rps <= 0:
        return None
    return first.load.rps / second.load.rps


def added_p50(report: Report, key: str, base: str) -> float | None:
    """p50 at one connection of leg ``key`` minus that of leg ``base``, in ms."""
    leg, anchor = report.leg(key), report.leg(base)
    if leg is None or anchor is None:
        return None
    return leg.c1.p50_ms - anchor.c1.p50_ms


def memory_verdict(report: Report) -> tuple[float, float, int] | None:
    """(RSS at the last mark, growth between the two marks, requests served after the legs), if measured."""
    marks = [m for m in report.memory if m.label.startswith("mark")]
    after_legs = next((m for m in report.memory if m.label == "after the legs"), None)
    if len(marks) < 2 or after_legs is None:
        return None
    first, last = marks[-2], marks[-1]
    return last.rss_mib, last.rss_mib - first.rss_mib, last.served - after_legs.served


def targets(report: Report) -> list[Target]:
    """Issue 13's targets, each from this run's legs (None when the legs it needs did not run)."""
    out: list[Target] = []
    for suffix, era in ERAS:
        ratio = throughput_ratio(report, f"d{suffix}", "c")
        out.append(_at_least(f"host MCP {era} / host REST ≥ 0.85x", ratio, 0.85, "x"))
    out.append(_at_least("host REST / aiohttp proxy ≥ 0.8x", throughput_ratio(report, "c", "b"), 0.8, "x"))
    out.append(_at_most("added p50 at c=1 over the proxy, REST ≤ 0.3 ms", added_p50(report, "c", "b"), 0.3))
    for suffix, era in ERAS:
        added = added_p50(report, f"d{suffix}", "b")
        out.append(_at_most(f"added p50 at c=1 over the proxy, MCP {era} ≤ 0.5 ms", added, 0.5))
    verdict = memory_verdict(report)
    if verdict is None:
        out.append(Target("RSS per worker after 100k requests ≤ 80 MiB, no growth", "not measured", None))
    else:
        rss, growth, served = verdict
        short = "" if served >= TARGET_REQUESTS else f" after only {served:,}"
        out.append(
            Target(
                "RSS per worker after 100k requests ≤ 80 MiB",
                f"{rss:.1f} MiB{short}",
                rss <= 80.0 and served >= TARGET_REQUESTS,
            )
        )
        out.append(
            Target(
                f"no growth between the memory marks (≤ {GROWTH_TOLERANCE_MIB:g} MiB)",
                f"{growth:+.1f} MiB",
                growth <= GROWTH_TOLERANCE_MIB,
            )
        )
    return out


def _at_least(label: str, value: float | None, floor: float, unit: str) -> Target:
    if value is None:
        return Target(label, "not measured", None)
    return Target(label, f"{value:.2f}{unit}", value >= floor)


def _at_most(label: str, value: float | None, ceiling: float) -> Target:
    if value is None:
        return Target(label, "not measured", None)
    return Target(label, f"{value:+.3f} ms", value <= ceiling)


# --- rendering ------------------------------------------------------------------------------------------


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def render(report: Report) -> str:
    lines = _header(report) + _table(report)
    lines += _ratios(report) + _latency(report) + _memory(report) + _targets(report) + _warnings(report)
    return "\n".join(lines)


def _header(report: Report) -> list[str]:
    s, m = report.settings, report.machine
    lines = [
        "",
        f"capability-host bench: {s['connections']} connections for {s['seconds']:g} s per leg "
        f"(after {s['warmup']:g} s warm-up), then 1 connection for {s['c1_seconds']:g} s",
        f"machine: {m['cpus']} CPU(s) {m['cpu_model']}; Python {m['python']}; load generator: {m['loadgen']}",
        f"pinning: {m['pinning']}",
        f"CPU used by other processes just before the start: {pct(m.get('busy_before_pct'))}",
    ]
    if report.peers:
        lines.append("peers: " + "; ".join(f"{name} {state}" for name, state in report.peers.items()))
    return lines


def _table(report: Report) -> list[str]:
    lines = [
        "",
        f"{'leg':<4}{'':32}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}{'c=1 p50 ms':>11}"
        f"{'server CPU':>11}{'other CPU':>10}",
    ]
    for leg in report.legs:
        lines.append(
            f"{leg.key:<4}{leg.title:<32}{leg.load.rps:>8.0f}{leg.load.p50_ms:>8.2f}{leg.load.p99_ms:>8.2f}"
            f"{leg.load.errors:>7}{leg.c1.p50_ms:>11.3f}{pct(leg.server_cpu):>11}{pct(leg.other_cpu):>10}"
        )
    lines.append("server CPU: the server under test, in % of one CPU, during the measured run; other CPU:")
    lines.append("processes outside the bench (about 0% on a quiet machine; more: another workload ran)")
    return lines


def _ratios(report: Report) -> list[str]:
    lines = ["", "throughput ratios from this run:"]

    def ratio(label: str, a: str, b: str) -> None:
        value = throughput_ratio(report, a, b)
        if value is not None:
            lines.append(f"  {label:<56}{value:>7.2f}x")

    ratio("REST: host REST / aiohttp proxy", "c", "b")
    for suffix, era in ERAS:
        ratio(f"host MCP {era} / host REST", f"d{suffix}", "c")
    for prefix, name in MCP_PEERS:
        for suffix, era in ERAS:
            ratio(f"MCP {era}: host / {name}", f"d{suffix}", f"{prefix}{suffix}")
    return lines


def _latency(report: Report) -> list[str]:
    lines: list[str] = []
    for base, name in (("a", "the direct upstream"), ("b", "the aiohttp proxy")):
        anchor = report.leg(base)
        if anchor is None:
            continue
        lines += ["", f"added latency at c=1 over {name} (p50, {name} = {anchor.c1.p50_ms:.3f} ms):"]
        for leg in report.legs:
            if leg.key not in ("a", base):
                lines.append(f"  {leg.title:<56}{leg.c1.p50_ms - anchor.c1.p50_ms:>+7.3f} ms")
    return lines


def _memory(report: Report) -> list[str]:
    lines: list[str] = []
    if report.rss_after_legs:
        rss = ", ".join(f"{k} {v:.1f} MiB" for k, v in report.rss_after_legs.items())
        lines += ["", "RSS after its legs: " + rss]
    if report.memory:
        lines += ["", "host memory (RSS of the one worker process):"]
        for mark in report.memory:
            lines.append(f"  {mark.label:<34}{mark.served:>10,} requests served{mark.rss_mib:>9.1f} MiB")
        verdict = memory_verdict(report)
        if verdict is not None:
            _, growth, served = verdict
            m1, m2 = report.memory[-2], report.memory[-1]
            per_10k = growth / max(1, m2.served - m1.served) * 10_000
            target = 2 * int(report.settings["mem_requests"])
            if served < target:
                lines.append("  (target not reached within --mem-max-seconds: a slow or busy machine)")
            if target < TARGET_REQUESTS:
                lines.append(f"  (--mem-requests {target // 2:,}: fewer than issue 13's 100k requests)")
            lines.append(
                f"  growth between the two marks: {growth:+.1f} MiB ({per_10k:+.2f} MiB per 10k requests)"
            )
    return lines


def _targets(report: Report) -> list[str]:
    lines = ["", "issue 13 targets:"]
    for target in targets(report):
        verdict = {True: "met", False: "NOT met", None: "-"}[target.met]
        lines.append(f"  {target.label:<58}{target.measured:>24}  {verdict}")
    return lines


def _warnings(report: Report) -> list[str]:
    lines: list[str] = []
    silent = [leg.key for leg in report.legs if leg.load.requests == 0 or leg.c1.requests == 0]
    if silent:
        lines += [
            "",
            f"WARNING: no answer completed within the run in leg(s) {', '.join(silent)} (each answer took "
            "longer than the run, or 5 s): their figures are meaningless",
        ]
    errors = sum(leg.load.errors + leg.c1.errors for leg in report.legs)
    if errors:
        lines += ["", f"WARNING: {errors} errors in total; see --json-out for the breakdown"]
    noisy = [leg.key for leg in report.legs if leg.other_cpu is not None and leg.other_cpu > NOISE_PCT]
    if noisy:
        lines += [
            "",
            f"WARNING: processes outside the bench used more than {NOISE_PCT:g}% of a CPU during leg(s) "
            f"{', '.join(noisy)}: those numbers are not comparable; re-run on a quiet machine",
        ]
    return lines


# --- markdown (docs/benchmarks.md) -------------------------------------------------------------------


def leg_ratio(report: Report, key: str) -> str:
    """The ratio column of docs/benchmarks.md: each leg against what issue 13 compares it with."""
    if key == "b":
        return "1.00 (REST anchor)"
    if key == "c":
        value = throughput_ratio(report, "c", "b")
        return "" if value is None else f"{value:.2f}x the proxy"
    if key[0] == "d":
        value = throughput_ratio(report, key, "c")
        return "" if value is None else f"{value:.2f}x own REST"
    host = throughput_ratio(report, f"d{key[1:]}", key) if key[0] in "efg" else None
    return "" if host is None else f"host MCP = {host:.2f}x"


def markdown(report: Report) -> str:
    """The results and targets tables, as docs/benchmarks.md shows them."""
    lines = [
        "| leg | req/s | p50 ms | p99 ms | errors | c=1 p50 ms | server CPU | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for leg in report.legs:
        load, c1 = leg.load, leg.c1
        lines.append(
            f"| {leg.key}. {leg.title} | {load.rps:,.0f} | {load.p50_ms:.2f} | {load.p99_ms:.2f} "
            f"| {load.errors} | {c1.p50_ms:.3f} | {pct(leg.server_cpu)} | {leg_ratio(report, leg.key)} |"
        )
    lines += ["", "| target | measured | met? |", "|---|---|---|"]
    for target in targets(report):
        verdict = {True: "yes", False: "**no**", None: "not measured"}[target.met]
        lines.append(f"| {target.label} | {target.measured} | {verdict} |")
    return "\n".join(lines) + "\n"


# --- py-spy profiles --------------------------------------------------------------------------------------


def summarize_profile(path: Path, top: int) -> list[str]:
    """Top functions of a py-spy raw (collapsed stacks) file: inclusive share, then self share."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    total = 0
    try:
        text = path.read_text()
    except OSError:
        return [f"  (no profile: {path} was not written)"]
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [frame.split(" (")[0] + " " + _short(frame) for frame in stack.split(";")]
        n = int(count)
        total += n
        own[frames[-1]] += n
        packages[_package(frames[-1])] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return ["  (empty profile)"]
    # Frames present in nearly every sample (the event loop, uvicorn's serve) say nothing.
    lines = [f"  {total} samples; self time by package:"]
    lines.append("    " + ", ".join(f"{p} {100 * n / total:.0f}%" for p, n in packages.most_common(12)))
    lines.append("  inclusive (frames in under 95% of samples):")
    shown = [(f, n) for f, n in inclusive.most_common() if n < 0.95 * total][:top]
    lines += [f"    {100 * n / total:5.1f}%  {f}" for f, n in shown]
    lines.append("  self:")
    lines += [f"    {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    return lines


def _package(frame: str) -> str:
    """``name pkg/mod.py:12`` (as made by :func:`_short`) → ``pkg``; the standard library by module."""
    path = frame.split(" ", 1)[1] if " " in frame else frame
    if path.startswith("<"):
        return "<frozen or generated>"
    head = path.split("/", 1)[0]
    return head.split(".py:", 1)[0] if ".py:" in head else head


def _short(frame: str) -> str:
    """``name (path/to/site-packages/pkg/mod.py:12)`` → ``pkg/mod.py:12``."""
    where = frame.rpartition(" (")[2].rstrip(")")
    for marker in ("site-packages/", "python3.11/", "/work/main/"):
        if marker in where:
            return where.split(marker, 1)[1]
    return where
