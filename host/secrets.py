"""Keep credentials out of logs, errors and reprs.

A credential read from the environment is wrapped in :class:`Secret` at once,
so a stray ``repr()`` or f-string prints ``'***'``. Every secret value is also
registered with :data:`REDACTOR`, a logging filter that scrubs it from any log
record that still manages to carry it (an exception message from a library,
for example). Values such as ``portal_url`` are registered by the code that
sees them via :func:`redact_json_values`'s key list.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable

REDACTED = "***"
REDACTED_BYTES = REDACTED.encode()

# Response keys whose values are bearer-like links or tokens.
SENSITIVE_KEYS = frozenset({"portal_url", "access_token", "refresh_token", "token", "api_key", "password"})


class Secret:
    """A string that never shows itself by accident. Use :meth:`reveal` to get it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        REDACTOR.add(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


_KEYS = "|".join(re.escape(key) for key in sorted(SENSITIVE_KEYS))
_SENSITIVE_JSON = re.compile(rf'("(?:{_KEYS})"\s*:\s*)"(?:[^"\\]|\\.)*"')
_AUTH_HEADER = re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?(?:bearer|basic|digest)?\s*)[^\s'\",}]+")


class Redactor(logging.Filter):
    """Logging filter that replaces known secret values and sensitive JSON fields."""

    def __init__(self) -> None:
        super().__init__()
        self._values: set[str] = set()
        self._encoded: set[bytes] = set()  # the values as they appear in a UTF-8 (or JSON) body

    def add(self, value: str) -> None:
        # Very short values would redact ordinary words; real credentials are longer.
        if len(value) >= 6:
            self._values.add(value)
            self._encoded.add(value.encode(errors="surrogatepass"))
            self._encoded.add(json.dumps(value)[1:-1].encode())  # escaped inside a JSON string

    def redact_values(self, text: str) -> str:
        """``text`` with every registered secret value replaced: for answers passed on to callers.

        Unlike :meth:`scrub`, fields such as ``portal_url`` are kept: they are what callers asked for.
        """
        for value in self._values:
            if value in text:
                text = text.replace(value, REDACTED)
        return text

    def redact_bytes(self, data: bytes) -> bytes:
        """:meth:`redact_values` for a body: an upstream that echoes a credential never hands it on."""
        for value in self._encoded:
            if value in data:
                data = data.replace(value, REDACTED_BYTES)
        return data

    def scrub(self, text: str) -> str:
        text = self.redact_values(text)
        # The patterns only match text with a quote or the word authorization: skip them otherwise
        # (the access log's lines, on every request, have neither).
        if '"' in text:
            text = _SENSITIVE_JSON.sub(rf'\1"{REDACTED}"', text)
        if "authorization" in text.lower():
            text = _AUTH_HEADER.sub(rf"\1{REDACTED}", text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = self.scrub(message)
        if record.exc_info and record.exc_text is None:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


REDACTOR = Redactor()


def install_redaction(handlers: Iterable[logging.Handler]) -> None:
    """Attach the redactor to handlers, so records from every logger pass through it."""
    for handler in handlers:
        if REDACTOR not in handler.filters:
            handler.addFilter(REDACTOR)
