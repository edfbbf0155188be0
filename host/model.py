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
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from host.formats import decode
from host.reporting import CallReport, current_report

JsonSchema = Mapping[str, Any]
Arguments = Mapping[str, Any]

ANY_OBJECT: JsonSchema = MappingProxyType({"type": "object"})

# REST paths the host serves itself (the REST adapter serves them; /skills when a skill is
# served): a capability's resource there cannot be served.
HEALTH_PATHS = ("/healthz", "/readyz")
OPENAPI_PATH = "/openapi.json"
HOST_REST_PATHS = (*HEALTH_PATHS, OPENAPI_PATH, "/metrics")
SKILLS_PATH = "/skills"


def route_shape(path: str) -> str:
    """``/v1/a/{id}`` and ``/v1/a/{name}`` are the same route: compare with parameters blanked."""
    return re.sub(r"\{[^}]*\}", "{}", path)


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
    # Further (name, value) headers sent with it: APIs that want two keys (Datadog's API and app keys).
    extra_headers: tuple[tuple[str, Credential], ...] = ()


@dataclass(frozen=True)
class CallerAuth:
    """What a caller must present to use one exposure (a capability file's ``exposes[].authentication``).

    ``kind`` is ``bearer`` (``Authorization: Bearer <secret>``), ``apikey`` (header ``name: <secret>``) or
    ``basic`` (``username`` and ``secret`` as the password). Credentials are templates over ``variables``
    or environment variables, resolved at start-up; callers never send them in the query string.
    """

    kind: str
    secret: Credential
    name: str = "Authorization"
    username: Credential | None = None
    variables: tuple[EnvVar, ...] = ()


@dataclass(frozen=True)
class UnsupportedAuth:
    """An authentication type the host cannot perform: calls fail, never unauthenticated."""

    type: str


Auth = BearerAuth | BasicAuth | DigestAuth | ApiKeyAuth | UnsupportedAuth


def credentials(auth: Auth | None) -> list[Credential]:
    """Every credential an outbound authentication sends (none for an unsupported one)."""
    if isinstance(auth, BearerAuth):
        return [auth.token]
    if isinstance(auth, BasicAuth | DigestAuth):
        return [auth.username, auth.password]
    if isinstance(auth, ApiKeyAuth):
        return [auth.value, *(value for _, value in auth.extra_headers)]
    return []


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


NOT_DECODED: Any = object()


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
    # The document, when the engine already parsed the body (it checks JSON answers): parsed once.
    decoded: Any = field(default=NOT_DECODED, repr=False, compare=False)

    def json(self) -> Any:
        """The body decoded as JSON; ``None`` for an empty body. Raises ``ValueError``."""
        if not self.body:
            return None
        return json.loads(self.body)

    def document(self) -> Any:
        """The body decoded by its ``format``. Raises ``ValueError`` when it does not parse."""
        if self.decoded is not NOT_DECODED:
            return self.decoded
        return decode(self.body, self.format)


@dataclass(frozen=True)
class MockRequest:
    """What a mock handler sees: the request the host would have sent.

    ``report`` sends progress and log messages to the caller while the mock runs
    (see :mod:`host.reporting`): over MCP they reach the client on the call's
    response stream; elsewhere they are dropped.
    """

    method: str
    path: str
    arguments: Arguments
    json_body: Any
    report: CallReport = field(default_factory=current_report, compare=False, repr=False)


MockHandler = Callable[[MockRequest], UpstreamResponse]

# Calls operation ``ref`` with arguments as the engine does for any exposure (what orchestrations use).
OperationCaller = Callable[[str, Arguments], Awaitable[UpstreamResponse]]
# Runs several operation calls as one (a capability file's ``steps``), answering one response.
Orchestration = Callable[[OperationCaller, Arguments], Awaitable[UpstreamResponse]]


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
    :param run: an orchestration: the call runs it instead of one request; every call it makes
        goes through the engine like any other (validation, auth, timeouts, circuit breaker).
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
    run: Orchestration | None = None


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
    # Variables that must have a value at start-up besides the base URI's and the credentials' (a
    # capability file's `with` names them): unset, every call would fail with a caller error.
    required: tuple[str, ...] = ()


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
    caller_auth: CallerAuth | None = None


@dataclass(frozen=True)
class ToolHints:
    """MCP tool annotations. ``None`` leaves a hint out of ``tools/list``."""

    read_only: bool | None = None
    destructive: bool | None = None
    idempotent: bool | None = None
    open_world: bool | None = None


# --- MCP content: what tool results and prompt messages carry besides plain text ---


@dataclass(frozen=True)
class TextBlock:
    """Text content. In a prompt message, ``{argument}`` placeholders are filled."""

    text: str


@dataclass(frozen=True)
class ImageBlock:
    """An image: raw bytes (sent base64-encoded) and their media type, e.g. ``image/png``."""

    data: bytes
    mime_type: str


@dataclass(frozen=True)
class AudioBlock:
    """Audio: raw bytes (sent base64-encoded) and their media type, e.g. ``audio/wav``."""

    data: bytes
    mime_type: str


@dataclass(frozen=True)
class ResourceBlock:
    """An embedded resource: ``text`` or ``blob`` (bytes, sent base64-encoded), exactly one.

    In a prompt message, ``{argument}`` placeholders in ``uri`` and ``text`` are filled.
    """

    uri: str
    mime_type: str | None = None
    text: str | None = None
    blob: bytes | None = None

    def __post_init__(self) -> None:
        if (self.text is None) == (self.blob is None):
            raise ValueError(f"ResourceBlock {self.uri}: give exactly one of text and blob")


ContentBlock = TextBlock | ImageBlock | AudioBlock | ResourceBlock


@dataclass(frozen=True)
class ToolContent:
    """A tool result made of content blocks, returned by an :class:`McpTool` ``output`` mapping.

    ``structured`` becomes the result's ``structuredContent`` (a JSON object).
    """

    blocks: tuple[ContentBlock, ...]
    structured: Mapping[str, Any] | None = None


# --- Input from the client during a call (MCP 2026-07-28 input requests, SEP-2322) ---

# The client capability each input request method needs.
INPUT_CAPABILITIES: Mapping[str, str] = MappingProxyType(
    {"elicitation/create": "elicitation", "sampling/createMessage": "sampling", "roots/list": "roots"}
)


@dataclass(frozen=True)
class InputRequest:
    """One request the client must fulfil before a call can complete.

    ``params`` are the wire params of the request (camelCase). Use the constructors.
    """

    method: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in INPUT_CAPABILITIES:
            raise ValueError(
                f"input request method {self.method!r} is not one of {', '.join(INPUT_CAPABILITIES)}"
            )

    @property
    def capability(self) -> str:
        """The client capability the request needs: ``elicitation``, ``sampling`` or ``roots``."""
        return INPUT_CAPABILITIES[self.method]

    @classmethod
    def elicit(cls, message: str, schema: JsonSchema) -> InputRequest:
        """Ask the user to fill a form: ``schema`` is a flat object schema of primitive properties."""
        return cls("elicitation/create", {"message": message, "requestedSchema": dict(schema)})

    @classmethod
    def sample(cls, prompt: str, *, max_tokens: int, system_prompt: str | None = None) -> InputRequest:
        """Ask the client's model to complete ``prompt``."""
        params: dict[str, Any] = {
            "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
            "maxTokens": max_tokens,
        }
        if system_prompt is not None:
            params["systemPrompt"] = system_prompt
        return cls("sampling/createMessage", params)

    @classmethod
    def list_roots(cls) -> InputRequest:
        """Ask for the client's roots (directories or files it offers to work on)."""
        return cls("roots/list", {})


@dataclass(frozen=True)
class InputRequired:
    """Returned by a ``request_input`` hook: ask the client for ``requests``, keyed by names of your choosing.

    ``state`` (a JSON object) comes back in the next round's :attr:`InputRound.state`. The host
    encrypts and signs it, binds it to the call (tool or prompt, and arguments) and lets it
    expire, so a client can neither read nor alter it.
    """

    requests: Mapping[str, InputRequest]
    state: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.requests:
            raise ValueError("InputRequired needs at least one request")


@dataclass(frozen=True)
class InputRound:
    """What a ``request_input`` hook sees on each round of a call.

    :param arguments: the call's arguments as the client sent them (not yet validated).
    :param responses: the client's answers, keyed like the requests, as sent on the wire
        (``{"action": "accept", "content": {...}}`` for an elicitation, a sampling result, a
        roots list). Keys the hook did not ask for may appear: ignore them.
    :param state: the ``state`` of the previous round's :class:`InputRequired` (``{}`` on the first).
    :param client_capabilities: what the client declared on this request (``sampling``,
        ``elicitation``, ``roots``, ...); empty on handshake-era requests, which cannot
        carry input requests. Ask only for what the client declared.
    """

    arguments: Arguments
    responses: Mapping[str, Mapping[str, Any]]
    state: Mapping[str, Any]
    client_capabilities: frozenset[str] = frozenset()

    def accepted(self, key: str) -> Mapping[str, Any] | None:
        """The form content of elicitation response ``key`` when the user accepted; else ``None``."""
        response = self.responses.get(key)
        if not isinstance(response, Mapping) or response.get("action") != "accept":
            return None
        content = response.get("content")
        return content if isinstance(content, Mapping) else {}

    def sampled_text(self, key: str) -> str | None:
        """The text of sampling response ``key``; ``None`` when absent or not text."""
        response = self.responses.get(key)
        content = response.get("content") if isinstance(response, Mapping) else None
        if isinstance(content, list):
            content = next((c for c in content if isinstance(c, Mapping) and c.get("type") == "text"), None)
        if isinstance(content, Mapping) and isinstance(content.get("text"), str):
            return str(content["text"])
        return None

    def roots(self, key: str) -> list[Mapping[str, Any]] | None:
        """The roots of roots/list response ``key``; ``None`` when absent."""
        response = self.responses.get(key)
        roots = response.get("roots") if isinstance(response, Mapping) else None
        return [r for r in roots if isinstance(r, Mapping)] if isinstance(roots, list) else None


# A tool's or prompt's input hook: ask the client (InputRequired), or return the arguments to
# continue with (for a tool, what its operation is called with; for a prompt, what its messages
# are rendered with).
InputHook = Callable[[InputRound], InputRequired | Mapping[str, Any]]


@dataclass(frozen=True)
class McpTool:
    """An MCP tool calling ``operation`` with the tool's arguments.

    ``input_schema=None`` advertises (and enforces) the operation's schema.
    ``output`` may return a :class:`ToolContent` to answer with content blocks.
    ``requires_client`` names client capabilities (``sampling``, ``elicitation``, ``roots``)
    the tool needs: a 2026-07-28 request that does not declare one is refused with
    error -32021 before anything runs. ``request_input`` is called before the operation,
    on every round of the call (see :class:`InputRound`).
    """

    name: str
    description: str
    operation: str
    title: str | None = None
    input_schema: JsonSchema | None = None
    hints: ToolHints = ToolHints()
    output: OutputMapping | None = None
    map_arguments: ArgumentMapping | None = None
    requires_client: tuple[str, ...] = ()
    request_input: InputHook | None = None
    caller_auth: CallerAuth | None = None


@dataclass(frozen=True)
class McpResource:
    """An MCP resource: fixed ``text``, or the result of calling ``operation``.

    ``uri`` may be a template (``docs://{id}``); its variables become arguments.
    An operation's answer is sent as text, or as a base64 blob when its format is
    ``binary`` or its media type is not textual; an ``output`` mapping returning
    ``bytes`` gives a blob too.
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
    caller_auth: CallerAuth | None = None  # its capability's own inbound credential, as for tools


@dataclass(frozen=True)
class PromptArgument:
    """A prompt argument. ``choices`` are offered by ``completion/complete`` (prefix-filtered)."""

    name: str
    description: str = ""
    required: bool = False
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class McpPrompt:
    """An MCP prompt: messages whose ``{argument}`` placeholders are filled on ``prompts/get``.

    A message is ``(role, content)``: a text template, or a content block (text and
    resource blocks are filled from the arguments too). ``request_input`` may ask the
    client for input first and returns the arguments to render with.
    """

    name: str
    description: str = ""
    title: str | None = None
    arguments: tuple[PromptArgument, ...] = ()
    messages: tuple[tuple[str, str | ContentBlock], ...] = ()
    request_input: InputHook | None = None
    caller_auth: CallerAuth | None = None  # its capability's own inbound credential, as for tools
