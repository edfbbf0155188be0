"""docs/naftiko-compatibility.md names every reference test class, each with one known status."""

from __future__ import annotations

import re
from pathlib import Path

from tests.naftiko_reference.conftest import JAVA

DOC = Path(__file__).resolve().parents[2] / "docs" / "naftiko-compatibility.md"
STATUSES = {"passes", "deliberate deviation", "not yet supported", "not yet replayed", "not applicable"}


def test_every_reference_test_class_has_a_row() -> None:
    rows = dict(re.findall(r"^\| `([\w/]+)` \| ([a-z ]+) \|", DOC.read_text(), re.MULTILINE))
    classes = {path.relative_to(JAVA).with_suffix("").as_posix() for path in JAVA.rglob("*.java")}
    assert set(rows) == classes
    assert set(rows.values()) <= STATUSES


def test_every_replayed_class_is_in_the_table() -> None:
    text = DOC.read_text()
    replayed = set()
    for test_file in Path(__file__).parent.glob("test_*.py"):
        replayed |= set(re.findall(r'@replays\(\s*"(\w+)"', test_file.read_text()))
    for name in replayed:
        assert re.search(rf"^\| `[\w/]*/?{name}` \| (passes|deliberate deviation) \|", text, re.MULTILINE), (
            name
        )
