"""The developers' guide's size and complexity limits, kept true by the test suite (and so by CI).

- No module under host/ or plugins/ is over 600 lines.
- No function, method or class is graded D or worse by radon's cyclomatic complexity (the same as
  ``radon cc -s -n D host plugins`` printing nothing).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from radon.complexity import cc_rank, cc_visit
from radon.visitors import Class, Function

from tests.conftest import ROOT

MAX_LINES = 600
WORST_GRADE = "C"  # D (complexity 21 and above) or worse fails
ROOTS = (ROOT / "host", ROOT / "plugins")


def modules() -> list[Path]:
    return sorted(
        path
        for root in ROOTS
        for path in root.rglob("*.py")
        if not {"build", ".venv", "node_modules"} & set(path.relative_to(root).parts)
    )


def blocks(items: list[Function | Class]) -> Iterator[Function | Class]:
    """What ``cc_visit`` lists (functions, classes, methods), plus the closures inside functions."""
    for item in items:
        yield item
        if isinstance(item, Function):
            yield from blocks(list(item.closures))


def graded_worse_than(limit: str, source: str) -> list[str]:
    return [
        f"{block.lineno}: {block.fullname} {cc_rank(block.complexity)} ({block.complexity})"
        for block in blocks(cc_visit(source))
        if cc_rank(block.complexity) > limit
    ]


def test_no_module_is_over_600_lines() -> None:
    found = modules()
    assert len(found) > 20  # the walk found the code
    too_long = {
        str(path.relative_to(ROOT)): count
        for path in found
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert too_long == {}


def test_no_function_is_graded_d_or_worse() -> None:
    worse = {
        str(path.relative_to(ROOT)): problems
        for path in modules()
        if (problems := graded_worse_than(WORST_GRADE, path.read_text(encoding="utf-8")))
    }
    assert worse == {}


def test_the_grading_sees_a_complex_function() -> None:
    branches = "".join(f"            if x == {n}:\n                return {n}\n" for n in range(21))
    source = f"class Box:\n    def pick(self, x):\n        def inner(x):\n{branches}            return -1\n"
    source += "        return inner(x)\n"
    assert graded_worse_than(WORST_GRADE, source) == ["3: inner D (22)"]
    simple = "def pick(x):\n    return 1 if x else 2\n"
    assert graded_worse_than(WORST_GRADE, simple) == []
