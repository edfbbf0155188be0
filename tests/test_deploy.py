"""The container and Kubernetes files stay consistent with the host (docker build runs where Docker is)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from host.config import load_config
from tests.conftest import ROOT
from tests.test_serve_process import run_cli


def test_container_config_is_valid_and_refuses_to_start_without_its_key() -> None:
    config = load_config(ROOT / "deploy" / "host.toml")
    assert config.server.host == "0.0.0.0" and config.auth.keys
    result = run_cli("check", "--config", str(ROOT / "deploy" / "host.toml"))
    assert result.returncode == 1 and "HOST_API_KEY" in result.stdout
    result = run_cli("check", "--config", str(ROOT / "deploy" / "host.toml"), env={"HOST_API_KEY": "k" * 32})
    assert result.returncode == 0, result.stdout


def test_kubernetes_manifest_matches_the_host() -> None:
    documents = list(yaml.safe_load_all((ROOT / "deploy" / "kubernetes.yaml").read_text()))
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {p["containerPort"] for p in container["ports"]} == {8080, 9090}
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    config = load_config(ROOT / "deploy" / "host.toml")
    assert config.server.shutdown_grace + config.server.drain_delay <= grace


def _docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


@pytest.mark.skipif(not _docker_available(), reason="no Docker engine on this machine")
def test_docker_build() -> None:
    result = subprocess.run(
        ["docker", "build", "-q", "-t", "capability-host:test", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
