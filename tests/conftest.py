"""Shared fixtures: a Tratta look-alike on the `host.testing` fake upstream, and `host serve` pointed at it.

The fake upstream and the host process come from `host.testing`, the kit plugin authors use; this file only
scripts what is particular to these tests (Tratta's scenarios) and keeps the environment hermetic.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from host.testing import (
    FakeResponse,
    FakeUpstream,
    HostServer,
    RecordedRequest,
    start_host_process,
    write_host_toml,
)

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "tk_test_5ecret_DO_NOT_LOG_9f3a1c"
ORG_UUID = "0b6f3e2a-1111-4c4c-8d8d-123456789abc"
TRATTA_PREFIX = "/api/v1"


@pytest.fixture(scope="session", autouse=True)
def _hermetic_environment() -> Iterator[None]:
    """A developer's TRATTA_* / HOST_* variables never change what a test sees, in-process or spawned."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [name for name in os.environ if name.startswith(("TRATTA_", "HOST_"))]:
            patch.delenv(name)
        yield


def customer_of(request: RecordedRequest) -> str | None:
    """The ``customer_id`` of a Tratta request body: it picks the fake's scenario."""
    try:
        return str(request.json().get("customer_id"))
    except (ValueError, AttributeError):
        return None


def calls_for(fake: FakeUpstream, customer_id: str) -> list[RecordedRequest]:
    """The requests the fake received for one customer (one scenario, one test)."""
    return [request for request in fake.requests if customer_of(request) == customer_id]


def tratta_base_uri(fake: FakeUpstream) -> str:
    return fake.url + TRATTA_PREFIX


def tratta_answer(request: RecordedRequest) -> FakeResponse:
    """Tratta's answer to a customer-sessions call; the body's customer_id picks the scenario."""
    if request.headers.get("Authorization") != f"Bearer {API_KEY}":
        return FakeResponse.of_json({"message": "Unauthenticated."}, 401)
    scenario = customer_of(request) or ""
    fixed = _SCENARIOS.get(scenario)
    if fixed is not None:
        return fixed
    if scenario.startswith("status-5"):
        return FakeResponse.of_json({"message": "Server Error"}, int(scenario[7:]))
    session = {
        "id": "sess-1",
        "portal_url": f"https://portal.example/login/{scenario}-SECRETLINK",
        "return_url": None,
        "expiration": "2026-12-01T00:00:00Z",
    }
    delay = {"slow": 5.0, "hang": 60.0}.get(scenario, 0.0)
    return dataclasses.replace(FakeResponse.of_json({"data": session}, 201), delay=delay)


_SCENARIOS = {
    "status-422": FakeResponse.of_json(
        {
            "message": "The selected customer id is invalid.",
            "errors": {"customer_id": ["The selected customer id is invalid."]},
        },
        422,
    ),
    "status-429": FakeResponse.of_json({"message": "Too Many Attempts."}, 429, {"Retry-After": "7"}),
    "status-401": FakeResponse.of_json({"message": "Unauthenticated."}, 401),
    "invalid-json": FakeResponse(201, b'{"data": {"id": '),
    "huge": FakeResponse(201, b" " * (3 * 1024 * 1024)),
    # 128 MiB at most, streamed: the host gives up long before
    "endless": FakeResponse(201, b" " * 65536, repeat=2048),
    "reset": FakeResponse(disconnect=True),
}


@pytest.fixture(scope="session")
def fake_tratta() -> Iterator[FakeUpstream]:
    """Tratta on a real port (its own thread and loop, so host processes of any test can reach it)."""
    with FakeUpstream() as fake:
        fake.route("*", "*", handler=tratta_answer)
        fake.route("GET", "/jwks.json", json={"keys": []})
        yield fake


@pytest.fixture(scope="module")
def tratta_host(fake_tratta: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostServer]:
    """`host serve` with the Tratta plugin pointed at the fake, token in the environment."""
    config = write_host_toml(
        tmp_path_factory.mktemp("tratta-host"),
        f"""
[consumes.tratta-customer-sessions]
base_uri = "{tratta_base_uri(fake_tratta)}"
timeout = 1
""",
        shutdown_grace=10,
    )
    host = start_host_process(config, environment={"TRATTA_API_KEY": API_KEY})
    yield host
    assert host.stop() == 0, host.log()
    assert API_KEY not in host.log(), "the API key leaked into the host's output"
    assert "SECRETLINK" not in host.log(), "a portal URL leaked into the host's output"


def pip_install(
    project: Path,
    *,
    target: Path | None = None,
    python: str = sys.executable,
    env: dict[str, str] | None = None,
) -> None:
    """Install a local distribution offline: no dependencies, no build isolation (the venv has setuptools)."""
    command = [
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--disable-pip-version-check",
    ]
    if target is not None:
        command += ["--target", str(target)]
    subprocess.run([*command, str(project)], check=True, timeout=180, env=env, cwd=project.parent)
