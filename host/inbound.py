"""Inbound protection shared by both adapters: authentication and concurrency limits.

Authentication runs before any other work on a request. Static API keys
(``[[auth.keys]]``, read from the environment, compared in constant time) are
accepted as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. On the MCP
port the host can also be an OAuth 2.1 resource server (``[auth.oauth]``):
JWT access tokens are checked against the issuer's JWKS for issuer, audience,
expiry and scopes. Tokens are only read from headers, never from the query
string, and never forwarded upstream (the engine builds upstream headers from
configuration alone).
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

from host import fastjson, templates
from host.config import AuthConfig, LimitsConfig, OAuthConfig
from host.errors import BadRequest, Forbidden, StartupError, TooManyRequests, Unauthorized, Unavailable
from host.model import CallerAuth, Credential, EnvVar
from host.secrets import Secret

log = logging.getLogger("host.inbound")

Adapter = Literal["rest", "mcp"]


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key's name, a token's subject, or anonymous."""

    name: str
    scopes: frozenset[str] = frozenset()


ANONYMOUS = Principal("anonymous")


class Authenticator:
    """Checks one adapter's requests against the configured keys and, on MCP, OAuth tokens."""

    def __init__(self, config: AuthConfig, environ: Mapping[str, str], adapter: Adapter) -> None:
        self.keys: list[tuple[str, Secret]] = []
        for key in config.keys:
            if adapter not in key.adapters:
                continue
            value = environ.get(key.env, "")
            if len(value.strip()) < 16:  # blanks are not key material
                problem = "is not set" if not value else "is shorter than 16 characters"
                raise StartupError(
                    f"[[auth.keys]] {key.name!r}: environment variable {key.env} {problem}; "
                    f"export a long random key (e.g. `openssl rand -hex 32`)"
                )
            self.keys.append((key.name, Secret(value)))
        self.oauth = JwtVerifier(config.oauth) if config.oauth is not None and adapter == "mcp" else None

    @property
    def enabled(self) -> bool:
        return bool(self.keys or self.oauth)

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        if not self.enabled:
            return ANONYMOUS
        token = _presented(headers)
        if token is None:
            raise Unauthorized(
                "this host requires authentication: send Authorization: Bearer <key>"
                + (" or an OAuth access token" if self.oauth else " or X-API-Key: <key>")
            )
        matched = None
        for name, key in self.keys:  # compare against every key: timing says nothing about which matched
            if hmac.compare_digest(token.encode(), key.reveal().encode()):
                matched = name
        if matched is not None:
            return Principal(f"key:{matched}")
        if self.oauth is not None:
            return await self.oauth.verify(token)
        raise Unauthorized("the key presented is not valid")

    def challenge(self, resource_metadata_url: str | None) -> str:
        """The ``WWW-Authenticate`` value for a 401."""
        if self.oauth is not None and resource_metadata_url:
            scope = (
                f', scope="{" ".join(self.oauth.config.required_scopes)}"'
                if self.oauth.config.required_scopes
                else ""
            )
            return f'Bearer resource_metadata="{resource_metadata_url}"{scope}'
        return 'Bearer realm="capability-host"'


def _presented(headers: Mapping[str, str]) -> str | None:
    authorization = headers.get("Authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    api_key = headers.get("X-API-Key", "").strip()
    return api_key or None


@dataclass
class JwtVerifier:
    config: OAuthConfig
    keys: dict[str, Any] = field(default_factory=dict)
    fetched_at: float = 0.0
    refresh_every: float = 30.0

    async def verify(self, token: str) -> Principal:
        import jwt  # here: PyJWT and cryptography cost ~9 MiB per worker, needed only with OAuth on

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("the access token is not a valid JWT") from None
        key = await self._key(str(header.get("kid", "")))
        if key is None:
            raise Unauthorized("the access token is signed with an unknown key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(self.config.algorithms),
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=30,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the access token has expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("the access token is not meant for this server (audience)") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("the access token was issued by another issuer") from None
        except (jwt.PyJWTError, TypeError, ValueError, AttributeError) as exc:
            # TypeError and friends: the kid names a key of another type than the token's algorithm.
            raise Unauthorized(f"the access token is not valid: {type(exc).__name__}") from None
        scopes = _scopes(claims.get("scope", claims.get("scp", "")))
        missing = [s for s in self.config.required_scopes if s not in scopes]
        if missing:
            raise Forbidden(
                f"insufficient_scope: the token lacks {' '.join(missing)}",
                extra={"required_scopes": list(self.config.required_scopes)},
            )
        return Principal(f"sub:{claims.get('sub', '?')}", scopes)

    async def _key(self, kid: str) -> Any:
        """The JWKS key named ``kid`` (the only one when the token names none), fetched when unknown."""
        if kid not in self.keys and time.monotonic() - self.fetched_at > self.refresh_every:
            await self._fetch()
        if not kid and len(self.keys) == 1:
            return next(iter(self.keys.values()))
        return self.keys.get(kid)

    async def _fetch(self) -> None:
        import jwt

        self.fetched_at = time.monotonic()
        try:
            timeout = aiohttp.ClientTimeout(total=5)
            async with (
                aiohttp.ClientSession(timeout=timeout, trust_env=False) as session,
                session.get(self.config.jwks_url) as resp,
            ):
                document = json.loads(await resp.read())
            jwks = jwt.PyJWKSet.from_dict(document)
        except (aiohttp.ClientError, TimeoutError, ValueError, jwt.PyJWTError) as exc:
            log.error("cannot fetch the JWKS from %s: %s", self.config.jwks_url, type(exc).__name__)
            return
        self.keys = {str(k.key_id or ""): k.key for k in jwks.keys}

    def metadata(self) -> dict[str, Any]:
        """The RFC 9728 protected-resource metadata document."""
        return {
            "resource": self.config.resource or self.config.audience,
            "authorization_servers": list(self.config.authorization_servers or (self.config.issuer,)),
            "scopes_supported": list(self.config.required_scopes),
            "bearer_methods_supported": ["header"],
        }


def _scopes(claim: Any) -> frozenset[str]:
    """``scope`` is a space-separated string (RFC 8693); some issuers send ``scp`` as a list of strings."""
    if isinstance(claim, str):
        return frozenset(claim.split())
    if isinstance(claim, list) and all(isinstance(scope, str) for scope in claim):
        return frozenset(claim)
    raise Unauthorized("the access token's scope claim is neither a string nor a list of strings")


class ConcurrencyLimiter:
    """In-flight requests, in total (503 above it) and per client (429 above it)."""

    def __init__(self, limits: LimitsConfig) -> None:
        self.total_limit = limits.max_concurrent
        self.client_limit = limits.max_concurrent_per_client
        self.total = 0
        self.per_client: dict[str, int] = {}

    def acquire(self, client: str) -> None:
        if self.total >= self.total_limit:
            raise Unavailable(
                f"the host is at capacity ({self.total_limit} requests in flight)", retry_after=1
            )
        count = self.per_client.get(client, 0)
        if count >= self.client_limit:
            raise TooManyRequests(
                f"too many requests in flight from this client (limit {self.client_limit})", retry_after=1
            )
        self.total += 1
        self.per_client[client] = count + 1

    def release(self, client: str) -> None:
        self.total -= 1
        count = self.per_client[client] - 1
        if count:
            self.per_client[client] = count
        else:
            del self.per_client[client]


def load_json(raw: bytes, max_depth: int) -> Any:
    """A request body as JSON, refused with a :class:`BadRequest` that says what is wrong with it."""
    try:
        document = fastjson.loads(raw)
    except UnicodeDecodeError:
        raise BadRequest("request body is not valid UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise BadRequest(f"request body is not valid JSON: nested deeper than {max_depth} levels") from None
    except ValueError:  # Python refuses to convert an integer literal this long (CVE-2020-10735)
        raise BadRequest(
            f"request body has a number with more than {sys.get_int_max_str_digits()} digits"
        ) from None
    check_depth(document, max_depth)
    return document


def check_depth(document: Any, limit: int) -> None:
    """Refuse JSON nested deeper than ``limit`` (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise BadRequest(f"JSON is nested deeper than {limit} levels")
        if isinstance(node, dict):
            stack.extend((value, depth + 1) for value in node.values() if isinstance(value, (dict, list)))
        elif isinstance(node, list):
            stack.extend((value, depth + 1) for value in node if isinstance(value, (dict, list)))


class CallerCheck:
    """One exposure's own credential (``CallerAuth``), resolved once, compared in constant time."""

    def __init__(self, auth: CallerAuth, environ: Mapping[str, str], origin: str) -> None:
        values = {var.key: environ[var.name] for var in auth.variables if environ.get(var.name)}

        def resolve(credential: Credential, what: str) -> str:
            if isinstance(credential, EnvVar):
                value = environ.get(credential.name, "")
            else:
                value = templates.render(credential, values, single_brace=False)
            if not value:
                raise StartupError(
                    f"{origin}: the caller {what} has no value; export the environment variable "
                    f"behind {credential!r}"
                )
            return value

        self.kind = auth.kind
        self.name = auth.name
        secret = resolve(auth.secret, "credential")
        if auth.kind == "basic":
            user = resolve(auth.username or "", "username")
            secret = "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
        elif auth.kind == "bearer":
            secret = "Bearer " + secret
        self.expected = Secret(secret)

    def check(self, headers: Mapping[str, str]) -> None:
        header = self.name if self.kind == "apikey" else "Authorization"
        presented = headers.get(header, "").strip()
        if not hmac.compare_digest(presented.encode(), self.expected.reveal().encode()):
            raise Unauthorized(f"this operation requires its own credential ({self.kind}, header {header})")
