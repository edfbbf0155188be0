"""Security finding 10: drain_delay + shutdown_grace is the whole shutdown budget.

A real ``host serve`` process, a slow upstream and SIGTERM; the exit time is measured and bounded.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from host.testing import (
    FakeResponse,
    FakeUpstream,
    RecordedRequest,
    free_port,
    render_host_toml,
    start_host_process,
)
from tests.conftest import ROOT
from tests.test_serve_process import run_cli

PLUGIN = "tratta-customer-sessions"
ENV = {
    "TRATTA_API_KEY": "tk_test_shutdown_0123456789",
    "TRATTA_ORG_UUID": "0b6f3e2a-1111-4c4c-8d8d-123456789abc",
}
DRAIN, GRACE = 1.0, 2.0
MARGIN = 1.5  # what the host may take past the budget to cancel, close and exit


def _session(request: RecordedRequest) -> FakeResponse:
    """A created session after the delay named by the customer id ("wait-2.5" waits 2.5 s)."""
    delay = float(str(request.json()["customer_id"]).removeprefix("wait-"))
    document = {
        "data": {"id": "s", "portal_url": "https://p.example/x", "return_url": None, "expiration": "x"}
    }
    answer = FakeResponse.of_json(document, status=201)
    return FakeResponse(answer.status, answer.body, answer.content_type, answer.headers, delay)


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        fake.route("POST", "/api/v1/customer-sessions", handler=_session)
        yield fake


class Host:
    def __init__(self, directory: Path, upstream: FakeUpstream) -> None:
        toml = render_host_toml(
            rest_port=free_port(),
            mcp_port=free_port(),
            consumes={PLUGIN: {"base_uri": upstream.url + "/api/v1", "timeout": 60}},
            shutdown_grace=GRACE,
        )
        toml = toml.replace(
            f"shutdown_grace = {GRACE:g}", f"shutdown_grace = {GRACE:g}\ndrain_delay = {DRAIN:g}"
        )
        (directory / "host.toml").write_text(toml)
        self.server = start_host_process(directory / "host.toml", plugins=[PLUGIN], environment=ENV)
        self.process, self.rest_port = self.server.process, self.server.rest_port

    def log(self) -> str:
        return self.server.log()

    def call(self, seconds: float, outcome: dict[str, object]) -> None:
        """POST a session whose upstream answer takes ``seconds``; record the status and when it ended."""
        body = json.dumps({"customer_id": f"wait-{seconds}"}).encode()
        with socket.create_connection(("127.0.0.1", self.rest_port), timeout=60) as sock:
            sock.sendall(
                b"POST /v1/customer-sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            try:
                first = sock.recv(65536)
            except ConnectionResetError:
                first = b""
        outcome["ended"] = time.monotonic()
        outcome["status"] = first.split(b" ")[1].decode() if first else "cut"

    def sigterm_and_wait(self) -> tuple[float, int]:
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=DRAIN + 2 * GRACE + 10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        return started, code


def _in_flight(host: Host, seconds: float) -> tuple[threading.Thread, dict[str, object]]:
    outcome: dict[str, object] = {}
    thread = threading.Thread(target=host.call, args=(seconds, outcome))
    thread.start()
    time.sleep(0.5)  # the call has reached the upstream
    return thread, outcome


def test_a_call_longer_than_the_budget_gets_all_of_it_and_the_host_exits_in_time(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    host = Host(tmp_path, upstream)
    thread, outcome = _in_flight(host, 30.0)
    sigterm, code = host.sigterm_and_wait()
    exited = time.monotonic() - sigterm
    thread.join(10)
    cut = float(outcome["ended"]) - sigterm  # type: ignore[arg-type]
    assert code == 0, host.log()
    assert exited <= DRAIN + GRACE + MARGIN, f"exited {exited:.1f} s after SIGTERM"
    assert cut >= DRAIN + GRACE - 0.2, f"the call was cut {cut:.1f} s after SIGTERM, before its grace ended"
    assert "still in flight" in host.log()


def test_a_call_within_the_budget_completes_and_the_host_exits_when_it_is_done(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    host = Host(tmp_path, upstream)
    thread, outcome = _in_flight(host, DRAIN + GRACE - 1.0)
    sigterm, code = host.sigterm_and_wait()
    exited = time.monotonic() - sigterm
    thread.join(10)
    assert code == 0 and outcome["status"] == "201", host.log()
    assert exited <= DRAIN + GRACE - 0.5 + MARGIN  # no idle wait for the rest of the budget


def test_the_shipped_kubernetes_grace_covers_the_whole_budget() -> None:
    from host.config import load_config
    from host.shutdown import SHUTDOWN_MARGIN

    documents = list(yaml.safe_load_all((ROOT / "deploy" / "kubernetes.yaml").read_text()))
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    kill_after = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    server = load_config(ROOT / "deploy" / "host.toml").server
    assert server.drain_delay + server.shutdown_grace + SHUTDOWN_MARGIN <= kill_after


def test_check_config_warns_when_the_manifest_kills_before_the_budget(tmp_path: Path) -> None:
    (tmp_path / "host.toml").write_text(
        (ROOT / "deploy" / "host.toml").read_text().replace("shutdown_grace = ", "shutdown_grace = 40 #")
    )
    (tmp_path / "kubernetes.yaml").write_text((ROOT / "deploy" / "kubernetes.yaml").read_text())
    env = {"HOST_API_KEY": "k" * 32}
    result = run_cli("check", "--config", str(tmp_path / "host.toml"), env=env)
    assert result.returncode == 0, (
        result.stdout
    )  # a warning, not an error: the manifest may be someone else's
    warning = next(line for line in result.stdout.splitlines() if "terminationGracePeriodSeconds" in line)
    assert warning.startswith("config: warning: ") and "kubernetes.yaml" in warning
    assert "shutdown_grace" in warning and "drain_delay" in warning

    documents = json.loads(
        run_cli("check", "--config", str(tmp_path / "host.toml"), "--json", env=env).stdout
    )
    assert any("terminationGracePeriodSeconds" in w for w in documents[-1]["warnings"])

    shipped = run_cli("check", "--config", str(ROOT / "deploy" / "host.toml"), env=env)
    assert "warning" not in shipped.stdout, shipped.stdout
