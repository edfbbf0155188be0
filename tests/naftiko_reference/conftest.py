"""The Naftiko reference engine's own behavioural tests, replayed against the host (issue 11).

The reference is the framework repository at tag ``v1.0.0-alpha2`` in ``../shared/naftiko-reference``;
every test here names the Java test class it replays (``@replays(Class, assertions)``) and serves that
class's fixture through the host as it is (``host.testing.serve_in_process``), every consumed namespace
pointed at a :class:`host.testing.FakeUpstream` that answers what the Java test's mock answers.

Counting: ``assertions`` is how many of the Java test's behavioural assertions the test replays. The run
ends with one line: replayed, passed, and the pass rate of those that are not deliberate deviations.
A deviation (the reference is wrong and the host is right) is marked ``deviation=...`` and asserts the
host's behaviour. Behaviours the host does not have yet are listed in ``NOT_YET`` below: they run as
``xfail(strict=True)``, so one that starts passing fails the run until it is taken off the list.
"""

from __future__ import annotations

import contextlib
import re
import textwrap
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytest

from host.testing import FakeUpstream, serve_in_process
from host.testing.inprocess import InProcessHost

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "naftiko-reference"
RESOURCES = REFERENCE / "src" / "test" / "resources"
TUTORIAL = REFERENCE / "src" / "main" / "resources" / "tutorial"
MICROCKS = REFERENCE / ".github" / "microcks"
JAVA = REFERENCE / "src" / "test" / "java" / "io" / "naftiko"
_TEXT_BLOCK = re.compile(r'"""\n(\s*naftiko:.*?)"""\s*\.formatted', re.DOTALL)

collect_ignore_glob = [] if REFERENCE.is_dir() else ["test_*.py"]

F = TypeVar("F", bound=Callable[..., Any])

# Behaviours the host does not have yet: test name -> what the host does instead.
NOT_YET: dict[str, str] = {}


def replays(java_class: str, assertions: int, *, deviation: str | None = None) -> Callable[[F], F]:
    """Name the Java test class a test replays and how many of its behavioural assertions."""
    return pytest.mark.replays(java_class, assertions, deviation=deviation)  # type: ignore[no-any-return]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "replays(java_class, assertions, deviation): a replayed reference test"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        reason = NOT_YET.get(item.originalname if isinstance(item, pytest.Function) else item.name)
        if reason is not None:
            item.add_marker(pytest.mark.xfail(strict=True, reason=reason))


_TALLY: dict[str, list[int]] = {"passed": [], "failed": [], "deviation": []}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("replays")
    if marker is None or (report.when != "call" and not (report.when == "setup" and report.skipped)):
        return
    if report.skipped and not hasattr(report, "wasxfail"):
        return
    assertions = int(marker.args[1])
    if marker.kwargs.get("deviation"):
        _TALLY["deviation"].append(assertions)
    elif report.passed and not hasattr(report, "wasxfail"):
        _TALLY["passed"].append(assertions)
    else:
        _TALLY["failed"].append(assertions)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    passed, failed = sum(_TALLY["passed"]), sum(_TALLY["failed"])
    deviations = sum(_TALLY["deviation"])
    if passed + failed + deviations == 0:
        return
    rate = 100.0 * passed / (passed + failed) if passed + failed else 100.0
    terminalreporter.write_line(
        f"naftiko reference: {passed + failed + deviations} assertions replayed, {passed} of "
        f"{passed + failed} non-deviation assertions pass ({rate:.1f} %), {deviations} deliberate deviations"
    )


def java_capability(java_file: str, index: int, tmp_path: Path, port: int = 0) -> Path:
    """The ``index``-th capability text block of a Java test (under src/test/java/io/naftiko), formatted
    as the test formats it (the schema version; ``%d``, the upstream port), written to a file."""
    blocks = _TEXT_BLOCK.findall((JAVA / java_file).read_text())
    text = textwrap.dedent(blocks[index]).replace('\\"', '"')  # Java escapes inside a text block
    text = re.sub(r'naftiko: "(%s|0\.4)"', 'naftiko: "1.0.0-alpha2"', text).replace("%d", str(port))
    path = tmp_path / f"{Path(java_file).stem}-{index}.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def fake() -> Any:
    with FakeUpstream() as upstream:
        yield upstream


@contextlib.asynccontextmanager
async def serve_capability(
    path: Path,
    upstream: FakeUpstream | None = None,
    *,
    namespaces: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    extra_toml: str = "",
) -> AsyncIterator[InProcessHost]:
    """Serve one reference file in process, each consumed namespace pointed at ``upstream`` (plus the
    path prefix given in ``namespaces``), installed plugins off."""
    lines = ["[plugins]", "load = []", "", "[[capabilities]]", f'path = "{path}"', ""]
    for namespace, prefix in (namespaces or {}).items():
        assert upstream is not None
        lines += [f'[consumes."{namespace}"]', f'base_uri = "{upstream.url}{prefix}"', ""]
    async with serve_in_process("\n".join(lines) + extra_toml, environ, discover=False) as served:
        yield served
