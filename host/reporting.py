"""Reports on a call in progress: progress and log messages for whoever is waiting on it.

A mock handler reports through :attr:`host.model.MockRequest.report`; the adapter
that started the call decides where reports go. Over MCP they become
``notifications/progress`` (only when the caller sent a ``progressToken``) and
``notifications/message`` (only at levels the caller accepts) on the call's own
response stream, which then switches to Server-Sent Events; the REST adapter
drops them. Reporting never blocks and never fails the call.

The report in force is carried by a context variable, so no signature between
the adapter and the mock has to thread it through.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

# The syslog severities MCP uses (RFC 5424), least severe first.
LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")


class CallReport(Protocol):
    """Where a running call sends progress and log messages. Both methods return at once."""

    def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        """``progress`` out of ``total`` (when known); values must increase from one report to the next."""

    def log(self, level: str, data: Any, logger: str | None = None) -> None:
        """A log message for the caller; ``level`` is one of :data:`LOG_LEVELS`, ``data`` any JSON value."""


def check_level(level: str) -> None:
    """Raise ``ValueError`` for a level outside :data:`LOG_LEVELS` (a plugin bug, reported at once)."""
    if level not in LOG_LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LOG_LEVELS)}")


class _Silent:
    """The report outside any adapter call (tests, REST): everything is dropped."""

    def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        return None

    def log(self, level: str, data: Any, logger: str | None = None) -> None:
        check_level(level)


SILENT: CallReport = _Silent()

_current: ContextVar[CallReport] = ContextVar("host_call_report", default=SILENT)


def current_report() -> CallReport:
    """The report of the call running in this task; :data:`SILENT` outside one."""
    return _current.get()


@contextmanager
def reporting(report: CallReport) -> Iterator[None]:
    """Make ``report`` the :func:`current_report` for the calls started inside the block."""
    token = _current.set(report)
    try:
        yield
    finally:
        _current.reset(token)
