"""Errors that cross module boundaries.

Two families:

* :class:`StartupError` stops ``host serve`` before it binds a port. Its message
  names the file, the key and the fix.
* :class:`CallError` ends one call. Each adapter renders it in its own way
  (REST: ``application/problem+json``; MCP: an ``isError`` tool result), so the
  core never needs to know which adapter called it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class StartupError(Exception):
    """Configuration, plugin or capability problem found before serving."""


class CallError(Exception):
    """One call failed. ``status`` is the HTTP status the REST adapter answers with."""

    status: int = 500
    title: str = "Internal Server Error"
    slug: str = "internal"

    def __init__(
        self, detail: str, *, extra: Mapping[str, Any] | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra: dict[str, Any] = dict(extra or {})
        # Seconds a client should wait before trying again (sent as Retry-After).
        self.retry_after = retry_after


class BadRequest(CallError):
    status, title, slug = 400, "Bad Request", "bad-request"


class PayloadTooLarge(CallError):
    status, title, slug = 413, "Content Too Large", "payload-too-large"


class InvalidArguments(CallError):
    """Arguments failed the operation's declared input schema.

    ``errors`` maps a dotted argument path (``body.customer_id``) to messages,
    the same ``{field: [message, ...]}`` shape Laravel-style APIs answer with.
    """

    status, title, slug = 422, "Unprocessable Content", "invalid-arguments"

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        self.errors = {key: list(messages) for key, messages in errors.items()}
        first = "; ".join(f"{key}: {messages[0]}" for key, messages in self.errors.items())
        super().__init__(f"invalid arguments: {first}", extra={"errors": self.errors})


class MissingArgument(InvalidArguments):
    """A required request parameter (path, query, header) has no value: the request cannot be built."""

    status, title, slug = 400, "Bad Request", "missing-argument"


class UpstreamUnreachable(CallError):
    status, title, slug = 502, "Bad Gateway", "upstream-unreachable"


class UpstreamBadStatus(CallError):
    """The upstream answered 5xx (or something we cannot pass through)."""

    status, title, slug = 502, "Bad Gateway", "upstream-error"


class UpstreamTimeout(CallError):
    status, title, slug = 504, "Gateway Timeout", "upstream-timeout"


class NotConfigured(CallError):
    """The operation cannot be called as configured (for example an unsupported auth type)."""

    status, title, slug = 501, "Not Implemented", "not-configured"


class Unauthorized(CallError):
    status, title, slug = 401, "Unauthorized", "unauthorized"


class Forbidden(CallError):
    status, title, slug = 403, "Forbidden", "forbidden"


class TooManyRequests(CallError):
    """A configured limit: per-client concurrency, or an upstream's client-side rate limit."""

    status, title, slug = 429, "Too Many Requests", "rate-limited"


class Unavailable(CallError):
    """The host is at capacity, draining, or an upstream's circuit is open."""

    status, title, slug = 503, "Service Unavailable", "unavailable"


class HostBusy(Unavailable):
    """Every pooled connection to an upstream stayed busy for ``pool_timeout``: the host, not the upstream."""

    slug = "host-busy"


class RequestTimeout(CallError):
    status, title, slug = 504, "Gateway Timeout", "request-timeout"


class BodyTimeout(CallError):
    """The request body did not arrive within ``[limits] body_timeout`` (a slow or stalled sender)."""

    status, title, slug = 408, "Request Timeout", "body-timeout"


class MisdirectedRequest(CallError):
    """A ``Host`` header this host does not serve (DNS-rebinding guard)."""

    status, title, slug = 421, "Misdirected Request", "host-not-allowed"


class UnsupportedMediaType(CallError):
    status, title, slug = 415, "Unsupported Media Type", "unsupported-media-type"


class HeaderFieldsTooLarge(CallError):
    status, title, slug = 431, "Request Header Fields Too Large", "headers-too-large"
