"""The catalogue report's callable measure (issue 11): sample capability files' tools, called end to end
against one fake upstream with arguments made from their own input schemas, all succeed."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT.parent / "shared" / "naftiko-capabilities"
FILES = ["gong-capability.yaml", "openfeature-capability.yaml", "logrocket-capability.yaml"]


def report_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "catalogue_report", ROOT / "scripts" / "catalogue_report.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_example_values_satisfy_simple_schemas() -> None:
    report = report_module()
    schema = {
        "type": "object",
        "required": ["id", "count", "when", "kind", "code", "tags"],
        "properties": {
            "id": {"type": "string", "examples": ["abc-1"]},
            "count": {"type": "integer", "minimum": 10},
            "when": {"type": "string", "format": "date"},
            "kind": {"type": "string", "enum": ["a", "b"]},
            "code": {"type": "string", "pattern": "^[0-9]{4}$"},
            "tags": {"type": "array", "items": {"type": "boolean"}},
            "optional": {"type": "string"},
        },
    }
    assert report.example_value(schema) == {
        "id": "abc-1",
        "count": 10,
        "when": "2024-01-01",
        "kind": "a",
        "code": "1111",
        "tags": [True],
    }


@pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"{SAMPLES} is absent: no sample capability files")
def test_sample_files_tools_are_callable() -> None:
    report = report_module()
    files = [str(SAMPLES / name) for name in FILES]
    checked = subprocess.run(
        [sys.executable, "-m", "host", "check", "--json", *files], capture_output=True, text=True, timeout=120
    )
    results = report.json.loads(checked.stdout)
    assert all(result["status"] != "ERROR" for result in results), results
    outcomes = asyncio.run(report.callable_outcomes(results))
    assert {Path(o.file).name for o in outcomes} == set(FILES)
    assert [o for o in outcomes if not o.callable] == []
