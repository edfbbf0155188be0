"""Start-up imports only what the request path needs (issue 13): heavy modules wait for the feature."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# Each is needed only by a feature a default host does not use.
LAZY = {
    "redis": '[state] backend = "redis"',
    "fastavro": "an avro outputRawFormat",
    "google.protobuf": "a protobuf outputRawFormat",
    "proto_schema_parser": "a protobuf outputRawFormat",
    "html.parser": "an html or markdown outputRawFormat",
    "host.openapi.converter": "an OpenAPI document served or imported",
}

BUILD_DEFAULT_HOST = """
import json, sys
from host.app import build
from host.testing import host_config
config = {"consumes": {"tratta-customer-sessions": {"mock": True}}}
host = build(host_config(config, plugins=["tratta-customer-sessions"]), {})
assert host.catalog.rest, "the plugin's REST resource is served"
print(json.dumps(sorted(sys.modules)))
"""


@pytest.fixture(scope="module")
def loaded() -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", BUILD_DEFAULT_HOST], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize("module", sorted(LAZY))
def test_a_default_host_does_not_import(module: str, loaded: set[str]) -> None:
    assert module not in loaded, f"{module} is imported at start-up; it is only needed for {LAZY[module]}"
