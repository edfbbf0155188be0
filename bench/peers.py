"""The MCP peers that bench/run.py measures beside the host, each in its own virtualenv under bench/.peers/.

A peer pins its own mcp version, so it never runs in the host's venv: ``bash bench/peers.sh`` creates the
venvs, and writes ``bench-peer-ready`` (the installed version) into each once its install has finished.
A peer leg runs only when that marker exists; otherwise run.py prints how to create it and goes on.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
PEERS_DIR = BENCH / ".peers"
READY = "bench-peer-ready"
REGISTER_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Peer:
    key: str  # leg prefix: legs are key + "1" (2026-07-28) and key + "2" (2025-11-25)
    name: str  # venv folder under bench/.peers/ and the argument of bench/peers.sh
    title: str
    script: str  # in bench/, run with the peer's own python
    tool: str  # the tool's name as the peer lists it
    arguments: dict[str, Any]
    eras: tuple[str, ...]  # protocol versions the peer speaks, of the two the bench measures
    port_offset: int
    start_timeout: float = 30.0  # seconds until its port must listen
    unsupported: str = ""  # why an era is missing, printed instead of its leg
    # A peer too slow for --connections (answers past the load generator's 5 s timeout) gets fewer; its
    # throughput is already at saturation there, and the leg's title says so.
    max_connections: int | None = None
    extra_args: tuple[str, ...] = field(default_factory=tuple)


FASTMCP = Peer(
    key="f",
    name="fastmcp",
    title="FastMCP from_openapi",
    script="fastmcp_peer.py",
    # FastMCP slugs the operationId and maps the body's properties to top-level arguments.
    tool="create_customer_session",
    arguments={"customer_id": "c-1"},
    eras=("2026-07-28", "2025-11-25"),
    port_offset=391,
)
CONTEXTFORGE = Peer(
    key="g",
    name="contextforge",
    title="ContextForge",
    script="contextforge_peer.py",
    tool="create-customer-session",
    arguments={"customer_id": "c-1"},
    eras=("2025-11-25",),
    port_offset=491,
    # It migrates a new SQLite database and seeds its roles on first start: about 20 s on a quiet machine.
    start_timeout=180.0,
    unsupported="ContextForge speaks protocol versions up to 2025-11-25 (its mcp SDK is 1.x)",
    # About 5-20 calls per second on one core: at 32 connections most answers would take over 5 s.
    max_connections=8,
    extra_args=("serve",),
)
PEERS = (FASTMCP, CONTEXTFORGE)


def python(peer: Peer, root: Path = PEERS_DIR) -> Path:
    return root / peer.name / "bin" / "python"


def version(peer: Peer, root: Path = PEERS_DIR) -> str | None:
    """The installed version once ``bench/peers.sh`` has finished this peer's venv, else None."""
    marker = root / peer.name / READY
    if not python(peer, root).exists() or not marker.is_file():
        return None
    return marker.read_text().strip() or "?"


def missing(peer: Peer, root: Path = PEERS_DIR) -> str:
    return f"skipped: no venv at {root / peer.name}; create it with `bash bench/peers.sh {peer.name}`"


def command(peer: Peer, port: int, upstream: str, state: Path, root: Path = PEERS_DIR) -> list[str]:
    script = [str(python(peer, root)), str(BENCH / peer.script), *peer.extra_args]
    if peer is CONTEXTFORGE:
        return [*script, "--port", str(port), "--state", str(state)]
    return [*script, "--port", str(port), "--upstream", upstream]


def prepare(peer: Peer, port: int, upstream: str, state: Path, root: Path = PEERS_DIR) -> dict[str, str]:
    """Headers the peer's MCP requests need, after any set-up it needs once it listens."""
    if peer is not CONTEXTFORGE:
        return {}
    # ContextForge: register the REST tool through its admin API and authenticate as its admin.
    arguments = ["register", "--port", str(port), "--state", str(state), "--upstream", upstream]
    done = subprocess.run(
        [str(python(peer, root)), str(BENCH / peer.script), *arguments],
        capture_output=True,
        text=True,
        timeout=REGISTER_TIMEOUT_S,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise SystemExit(f"ContextForge: registering the tool failed:\n{done.stderr[-3000:]}")
    return {"Authorization": f"Bearer {json.loads(lines[-1])['token']}"}
