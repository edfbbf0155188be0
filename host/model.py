"""The capability model: what plugins contribute, as plain frozen data.

A *consumed API* (:class:`ConsumedApi`) is one upstream: a base URI, its
authentication and its operations (:class:`ConsumedOperation`). The host
exposes operations again as REST resources (:class:`RestResource`) and MCP tools
(:class:`McpTool`). Exposures name the operation they call as
``"<namespace>.<operation>"``.

Everything here is data; the behaviour lives in :mod:`host.engine` (calling an
operation) and in the adapters (:mod:`host.adapters.rest`, :mod:`host.adapters.mcp`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from host.formats import decode

JsonSchema = Mapping[str, Any]
Arguments = Mapping[str, Any]

ANY_OBJECT: JsonSchema = MappingProxyType({"type": "object"})


@dataclass(frozen=True)
class EnvVar:
    """A value the operator supplies through an environment variable.

    ``pattern`` (a full-match regex) and ``choices`` are checked at start-up, so a
    typo fails before the first call instead of as a DNS error on it.
    ``placeholder`` is the name templates use for it (``{{VAR}}``), when that
    differs from the variable's own name.
    """

    name: str
    default: str | None = None
    pattern: str | None = None
    choices: tuple[str, ...] = ()
    secret: bool = False
    help: str = ""
    placeholder: str | None = None

    @property
    def key(self) -> str:
        return self.placeholder or self.name


# A credential is read from the environment, or is a template over the API's
# variables (``"{{TOKEN}}"``, ``"{{env.TOKEN}}"``), rendered once at start-up.
Credential = EnvVar | str


@dataclass(frozen=True)
class BearerAuth:
    """``Authorization: Bearer <token>``."""

    token: Credential


@dataclass(frozen=True)
class BasicAuth:
    """``Authorization: Basic base64(username:password)``."""

    username: Credential
    password: Credential


@dataclass(frozen=True)
class DigestAuth:
    """HTTP Digest (RFC 7616): the host answers the upstream's challenge once per call."""

    username: Credential
    password: Credential


@dataclass(frozen=True)
class ApiKeyAuth:
    """An API key sent as a header (default) or a query parameter."""

    name: str
    value: Credential
    placement: str = "header"


@dataclass(frozen=True)
class UnsupportedAuth:
    """An authentication type the host cannot perform: calls fail, never unauthenticated."""

    type: str


Auth = BearerAuth | BasicAuth | DigestAuth | ApiKeyAuth | UnsupportedAuth


@dataclass(frozen=True)
class OutboundRequest:
    """A request ready to send, relative to the API's base URL."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    content_type: str | None = None


class RequestBuilder(Protocol):
    """Builds the upstream request from arguments and the API's resolved variables.

    Raises :class:`host.errors.InvalidArguments` for a missing or bad argument.
    """

    def __call__(self, arguments: Mapping[str, Any], variables: Mapping[str, str]) -> OutboundRequest: ...


@dataclass(frozen=True)
class UpstreamResponse:
    """What an upstream (or its mock) answered. The body stays bytes until asked."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    mocked: bool = False
    # How to decode the body: json, xml, yaml, csv, tsv, psv, text or binary.
    format: str = "json"

    def json(self) -> Any:
        """The body decoded as JSON; ``None`` for an empty body. Raises ``ValueError``."""
        if not self.body:
            return None
        return json.loads(self.body)

    def document(self) -> Any:
        """The body decoded by its ``format``. Raises ``ValueError`` when it does not parse."""
        return decode(self.body, self.format)


@dataclass(frozen=True)
class MockRequest:
    """What a mock handler sees: the request the host would have sent."""

    method: str
    path: str
    arguments: Arguments
    json_body: Any


MockHandler = Callable[[MockRequest], UpstreamResponse]


@dataclass(frozen=True)
class ConsumedOperation:
    """One upstream HTTP call.

    :param path: appended to the API's base URI; ``{name}`` placeholders are
        filled from arguments, percent-encoded as one path segment.
    :param input_schema: JSON Schema (2020-12) of the operation's arguments,
        enforced before any upstream call.
    :param body: name of the argument sent as the JSON request body.
    :param query: names of arguments sent as query parameters when present.
    :param mock: answers the call in mock mode, with no network.
    :param request: builds the request itself, replacing ``path``, ``body``,
        ``query`` and ``headers`` (capability files use this).
    :param static: always answered by ``mock``; there is no upstream call.
    :param output_format: how the upstream body is decoded for mapping.
    """

    name: str
    method: str
    path: str
    description: str = ""
    input_schema: JsonSchema = field(default_factory=lambda: dict(ANY_OBJECT))
    body: str | None = None
    query: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    mock: MockHandler | None = None
    request: RequestBuilder | None = None
    static: bool = False
    output_format: str = "json"


@dataclass(frozen=True)
class ConsumedApi:
    """An upstream API: where it is, how to authenticate, what it offers.

    :param base_uri: may hold ``{VAR}`` placeholders, each filled at start-up
        from the environment variable of the same name declared in ``variables``.
        ``[consumes.<namespace>] base_uri`` in host.toml replaces it whole.
    """

    namespace: str
    base_uri: str
    operations: tuple[ConsumedOperation, ...]
    variables: tuple[EnvVar, ...] = ()
    auth: Auth | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: {"Accept": "application/json"})
    description: str = ""


# Turns the decoded upstream document into the value an exposure returns.
OutputMapping = Callable[[Any], Any]

# Turns an exposure's arguments into the operation's (a capability file's ``with``).
ArgumentMapping = Callable[[Mapping[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class RestResource:
    """``method path`` on the REST port, calling ``operation``.

    Arguments are gathered from the request: path parameters by name, the
    declared ``query`` parameters, and the parsed JSON body as ``body_argument``.
    ``output=None`` returns the upstream body unchanged (mapping ``$.``).
    """

    method: str
    path: str
    operation: str
    description: str = ""
    body_argument: str | None = "body"
    query: tuple[str, ...] = ()
    output: OutputMapping | None = None
    # Declared request headers passed as arguments of the same name.
    headers: tuple[str, ...] = ()
    # Also pass every query parameter and top-level body field by name.
    pass_undeclared: bool = False
    input_schema: JsonSchema | None = None
    map_arguments: ArgumentMapping | None = None


@dataclass(frozen=True)
class ToolHints:
    """MCP tool annotations. ``None`` leaves a hint out of ``tools/list``."""

    read_only: bool | None = None
    destructive: bool | None = None
    idempotent: bool | None = None
    open_world: bool | None = None


@dataclass(frozen=True)
class McpTool:
    """An MCP tool calling ``operation`` with the tool's arguments.

    ``input_schema=None`` advertises (and enforces) the operation's schema.
    """

    name: str
    description: str
    operation: str
    title: str | None = None
    input_schema: JsonSchema | None = None
    hints: ToolHints = ToolHints()
    output: OutputMapping | None = None
    map_arguments: ArgumentMapping | None = None


@dataclass(frozen=True)
class McpResource:
    """An MCP resource: fixed ``text``, or the result of calling ``operation``.

    ``uri`` may be a template (``docs://{id}``); its variables become arguments.
    """

    uri: str
    name: str
    description: str = ""
    title: str | None = None
    mime_type: str = "application/json"
    text: str | None = None
    operation: str | None = None
    map_arguments: ArgumentMapping | None = None
    output: OutputMapping | None = None


@dataclass(frozen=True)
class PromptArgument:
    name: str
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class McpPrompt:
    """An MCP prompt: messages whose ``{argument}`` placeholders are filled on ``prompts/get``."""

    name: str
    description: str = ""
    title: str | None = None
    arguments: tuple[PromptArgument, ...] = ()
    messages: tuple[tuple[str, str], ...] = ()  # (role, template)
