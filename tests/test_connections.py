"""Security finding 9: idle and half-open connections are closed, and a cap per port keeps the host answering.

Real sockets on loopback against a real ``host serve``; every wait is bounded.
"""

from __future__ import annotations

import re
import socket
import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from host.testing import FakeResponse, FakeUpstream, HostServer, RecordedRequest, start_host_server

PLUGIN = "tratta-customer-sessions"
API_KEY = "tk_test_connections_0123456789"
ORG_UUID = "0b6f3e2a-1111-4c4c-8d8d-123456789abc"
SESSION = {
    "data": {
        "id": "s",
        "portal_url": "https://portal.example/x",
        "return_url": None,
        "expiration": "2030-01-01",
    }
}
IDLE, HEADER, CAP = 1.0, 1.0, 12


def _session(request: RecordedRequest) -> FakeResponse:
    """A created session; a customer id starting with "slow" waits 3 s for it (longer than every timeout)."""
    slow = str(request.json()["customer_id"]).startswith("slow")
    answer = FakeResponse.of_json(SESSION, status=201)
    return FakeResponse(answer.status, answer.body, answer.content_type, answer.headers, 3.0 if slow else 0)


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        fake.route("POST", "/api/v1/customer-sessions", handler=_session)
        yield fake


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream) -> Iterator[HostServer]:
    server = start_host_server(
        tmp_path_factory.mktemp("connections"),
        [PLUGIN],
        {PLUGIN: {"base_uri": upstream.url + "/api/v1"}},
        environment={"TRATTA_API_KEY": API_KEY, "TRATTA_ORG_UUID": ORG_UUID},
        toml_extra=f"[limits]\nidle_timeout = {IDLE}\nheader_timeout = {HEADER}\nmax_connections = {CAP}\n",
    )
    try:
        yield server
    finally:
        server.stop()


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.settimeout(5)
    return sock


def _request(sock: socket.socket, path: str = "/healthz") -> bytes:
    """One keep-alive GET; the status line and headers of the answer (the body is short and read too)."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(65536)
        assert chunk, f"closed before answering: {answer!r}"
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = int(re.search(rb"Content-Length: (\d+)", head, re.IGNORECASE).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += sock.recv(65536)
    return head


def _seconds_until_closed(sock: socket.socket, limit: float) -> tuple[float, bytes]:
    """Wait (at most ``limit``) for the host to close ``sock``; the time it took and what it sent first."""
    started, received = time.monotonic(), b""
    sock.settimeout(limit)
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        pytest.fail(f"still open after {limit} s (received {received!r})")
    except ConnectionResetError:
        pass
    return time.monotonic() - started, received


def test_an_idle_kept_alive_connection_is_closed_after_idle_timeout(host: HostServer) -> None:
    with _connect(host.rest_port) as sock:
        assert b" 200 " in _request(sock)
        waited, _ = _seconds_until_closed(sock, IDLE + 5)
    assert IDLE * 0.5 <= waited <= IDLE + 3


def test_a_connection_that_sends_nothing_is_closed_after_header_timeout(host: HostServer) -> None:
    for port in (host.rest_port, host.mcp_port):
        with _connect(port) as sock:
            waited, _ = _seconds_until_closed(sock, HEADER + 5)
        assert HEADER * 0.5 <= waited <= HEADER + 3


def test_half_a_header_line_is_closed_after_header_timeout_with_408(host: HostServer) -> None:
    with _connect(host.rest_port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0")
        waited, received = _seconds_until_closed(sock, HEADER + 5)
    assert HEADER * 0.5 <= waited <= HEADER + 3
    assert received.startswith(b"HTTP/1.1 408 ")


def test_a_slow_answer_is_not_cut_by_the_header_timeout(host: HostServer) -> None:
    """The header deadline covers the header only: a call longer than it still gets its answer."""
    with _connect(host.rest_port) as sock:
        body = b'{"customer_id": "slow-one"}'
        sock.sendall(
            b"POST /v1/customer-sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        sock.settimeout(15)
        assert sock.recv(65536).startswith(b"HTTP/1.1 201 ")


def _metric(host: HostServer, reason: str) -> float:
    with _connect(host.rest_port) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        text = b""
        while chunk := sock.recv(65536):
            text += chunk
    pattern = rf'host_connections_closed_total{{adapter="rest",reason="{reason}"}} (\S+)'
    found = re.search(pattern, text.decode())
    return float(found.group(1)) if found else 0.0


def test_at_the_cap_idle_connections_make_room_and_healthz_answers(host: HostServer) -> None:
    """The finding: a flood of idle connections made /healthz fail, with nothing logged."""
    before = _metric(host, "idle_shed")
    idle = [_connect(host.rest_port) for _ in range(CAP * 3)]
    try:
        for _ in range(3):  # probes keep being answered however many idle sockets are held
            with _connect(host.rest_port) as probe:
                assert b" 200 " in _request(probe)
    finally:
        for sock in idle:
            sock.close()
    assert _metric(host, "idle_shed") >= CAP * 2
    warnings = [line for line in host.log().splitlines() if "connections open, the cap" in line]
    assert len(warnings) == 1, warnings  # once per interval, not once per connection
    assert "[limits] max_connections = 12" in warnings[0]
    assert before < _metric(host, "idle_shed")


def test_when_every_connection_is_busy_a_new_one_gets_503(host: HostServer) -> None:
    body = b'{"customer_id": "slow-busy"}'
    post = (
        b"POST /v1/customer-sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )

    def slow_call() -> bytes:
        with _connect(host.rest_port) as sock:
            sock.sendall(post)
            sock.settimeout(20)
            return sock.recv(65536)

    with ThreadPoolExecutor(CAP) as pool:
        calls = [pool.submit(slow_call) for _ in range(CAP)]
        time.sleep(1.0)  # every call is now waiting for the slow upstream
        with _connect(host.rest_port) as extra:
            waited, received = _seconds_until_closed(extra, 5)
        answers = [call.result(timeout=30) for call in calls]
    assert received.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in received
    assert waited < 2
    assert all(answer.startswith(b"HTTP/1.1 201 ") for answer in answers)  # none of the busy ones was cut
    assert _metric(host, "over_limit") >= 1


def test_connection_settings_are_documented() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for key in ("idle_timeout", "header_timeout", "max_connections"):
        assert f"`[limits] {key}`" in readme


def test_the_cap_fits_the_descriptor_limit_so_a_flood_cannot_starve_healthz(tmp_path: Path) -> None:
    """The finding as reported: a small ``ulimit -n`` and more idle connections than descriptors."""
    import resource
    import subprocess
    import sys

    from host.testing import host_process_environment, write_host_toml

    config = write_host_toml(tmp_path, f"[consumes.{PLUGIN}]\nmock = true\n")
    limit = 256
    log = tmp_path / "host.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "host", "serve", "--config", str(config)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=host_process_environment([PLUGIN], {}),
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)),
        )
    ports = tomllib.loads(config.read_text())["server"]
    host = HostServer(process, ports["rest_port"], ports["mcp_port"], config, log, (PLUGIN,))
    rest_port = host.rest_port
    idle: list[socket.socket] = []
    try:
        host.wait_until_listening()
        for _ in range(limit + 100):  # more than the process could ever hold
            idle.append(_connect(rest_port))
        for _ in range(3):
            with _connect(rest_port) as probe:
                assert b" 200 " in _request(probe)
    finally:
        for sock in idle:
            sock.close()
        host.stop()
    text = host.log()
    assert "[limits] max_connections = 1024 per port does not fit" in text
    assert "connections open, the cap" in text
    assert "Traceback" not in text
