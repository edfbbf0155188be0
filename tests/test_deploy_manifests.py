"""Issue 14, item 4: the Kubernetes files in deploy/ are valid Kubernetes and agree with the host.

Every document is validated offline by kubernetes-validate (its bundled JSON schemas, strict: an unknown
field is an error) against the oldest and the newest Kubernetes it knows of. Then the arithmetic: the
kill timeout covers drain_delay + shutdown_grace + exit, readiness fails within the drain delay, the
fallback share of the rate limit matches the autoscaler's ceiling, HOST_STATE_URL names the Redis Service.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from host.adapters.mcp import request_state_security
from host.config import HostConfig, load_config
from host.shutdown import SHUTDOWN_MARGIN, budget, manifest_warnings
from tests.conftest import ROOT
from tests.test_serve_process import run_cli

DEPLOY = ROOT / "deploy"
MANIFESTS = sorted(DEPLOY.glob("*.yaml"))
# The oldest Kubernetes the manifests claim to fit (autoscaling/v2 and policy/v1 are GA since 1.23/1.21),
# and the newest the library knows.
VERSIONS = ["1.27.0", kubernetes_validate.latest_version()]


def documents() -> list[dict[str, Any]]:
    return [doc for file in MANIFESTS for doc in yaml.safe_load_all(file.read_text()) if doc]


def one(kind: str, name: str) -> dict[str, Any]:
    (found,) = [doc for doc in documents() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    return found


def cluster_config(tmp_path: Path) -> HostConfig:
    """The host.toml the pods run: the ConfigMap's, mounted over the image's."""
    path = tmp_path / "host.toml"
    path.write_text(one("ConfigMap", "capability-host-config")["data"]["host.toml"])
    return load_config(path)


def host_pod() -> dict[str, Any]:
    spec: dict[str, Any] = one("Deployment", "capability-host")["spec"]["template"]["spec"]
    return spec


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("file", MANIFESTS, ids=lambda path: path.name)
def test_every_manifest_is_valid_kubernetes(file: Path, version: str) -> None:
    for document in yaml.safe_load_all(file.read_text()):
        kubernetes_validate.validate(document, version, strict=True)


def test_the_validator_refuses_a_broken_manifest() -> None:
    hpa = one("HorizontalPodAutoscaler", "capability-host")
    broken = {**hpa, "spec": {**hpa["spec"], "minReplicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)
    misspelt = {**hpa, "spec": {**hpa["spec"], "maxReplica": 3}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, VERSIONS[-1], strict=True)


def test_the_cluster_config_is_the_image_config_plus_shared_state(tmp_path: Path) -> None:
    image = tomllib.loads((DEPLOY / "host.toml").read_text())
    cluster = tomllib.loads(one("ConfigMap", "capability-host-config")["data"]["host.toml"])
    state = cluster.pop("state")
    assert cluster == image
    assert state == {"backend": "redis", "share_circuits": True, "processes": state["processes"]}
    cluster_config(tmp_path)  # and it loads


@pytest.mark.parametrize("source", ["image", "cluster"])
def test_the_kill_timeout_covers_drain_delay_plus_shutdown_grace(source: str, tmp_path: Path) -> None:
    config = load_config(DEPLOY / "host.toml") if source == "image" else cluster_config(tmp_path)
    server = config.server
    grace = host_pod()["terminationGracePeriodSeconds"]
    needed = server.drain_delay + server.shutdown_grace + SHUTDOWN_MARGIN
    assert needed == budget(config)
    assert needed <= grace <= needed + 10, (needed, grace)  # enough, and not a pod stuck for minutes


def test_readiness_fails_within_the_drain_delay(tmp_path: Path) -> None:
    (container,) = host_pod()["containers"]
    probe = container["readinessProbe"]
    assert probe["httpGet"] == {"path": "/readyz", "port": "rest"}
    # /readyz turns 503 when SIGTERM arrives; the probe must notice before the listeners close.
    noticed_within = probe["periodSeconds"] * probe.get("failureThreshold", 3)
    assert noticed_within <= cluster_config(tmp_path).server.drain_delay
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_the_fallback_share_matches_the_autoscaler_ceiling(tmp_path: Path) -> None:
    config = cluster_config(tmp_path)
    hpa = one("HorizontalPodAutoscaler", "capability-host")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "capability-host",
    }
    assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    # While Redis is down each process allows rate_limit / processes: at the ceiling the fleet stays in quota.
    assert config.state.processes == hpa["spec"]["maxReplicas"] * config.server.workers
    assert "replicas" not in one("Deployment", "capability-host")["spec"]  # the HPA owns the count


def test_the_disruption_budget_keeps_a_pod_serving() -> None:
    pdb = one("PodDisruptionBudget", "capability-host")["spec"]
    labels = one("Deployment", "capability-host")["spec"]["template"]["metadata"]["labels"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()
    min_replicas = one("HorizontalPodAutoscaler", "capability-host")["spec"]["minReplicas"]
    assert pdb["maxUnavailable"] < min_replicas


def test_host_state_url_comes_from_a_secret_and_names_the_redis_service() -> None:
    (container,) = host_pod()["containers"]
    (state_url,) = [env for env in container["env"] if env["name"] == "HOST_STATE_URL"]
    reference = state_url["valueFrom"]["secretKeyRef"]
    secret = one("Secret", reference["name"])["stringData"]
    url = urlsplit(secret[reference["key"]])
    service = one("Service", "capability-host-redis")
    assert url.scheme == "redis" and url.hostname == service["metadata"]["name"]
    assert url.port == service["spec"]["ports"][0]["port"] and url.password == secret["REDIS_PASSWORD"]
    redis = one("Deployment", "capability-host-redis")["spec"]["template"]
    assert service["spec"]["selector"].items() <= redis["metadata"]["labels"].items()
    (server,) = redis["spec"]["containers"]
    assert "--requirepass" in server["args"] and "$(REDIS_PASSWORD)" in server["args"]


def test_the_request_state_key_is_shared_by_every_replica() -> None:
    secret = one("Secret", "capability-host")["stringData"]
    (container,) = host_pod()["containers"]
    assert {"secretRef": {"name": "capability-host"}} in container["envFrom"]
    request_state_security(secret)  # long enough: the host would start with it


def test_host_check_accepts_the_cluster_config_without_warnings(tmp_path: Path) -> None:
    folder = tmp_path / "cluster"
    folder.mkdir()
    config = cluster_config(folder)
    for manifest in MANIFESTS:  # beside it, as host check looks for them
        (folder / manifest.name).write_text(manifest.read_text())
    assert manifest_warnings(load_config(config.path)) == []  # the Redis pod's grace is not the host's
    environment = {
        "HOST_API_KEY": "k" * 32,
        "HOST_STATE_URL": "redis://:pw@capability-host-redis:6379/0",
        "HOST_LOAD_PLUGINS": "tratta-customer-sessions",
    }
    result = run_cli("check", "--config", str(config.path), env=environment)
    assert result.returncode == 0 and "warning" not in result.stdout, result.stdout + result.stderr
