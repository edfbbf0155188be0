"""Binding: a plugin's :class:`~host.model.ConsumedApi`, plus host.toml and the environment.

:func:`bind` turns the declared API into a :class:`BoundApi` (a concrete base URL, a resolved
credential, a timeout, mock on or off). Every problem found here is a start-up error naming the
variable or key to fix.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp

from host import templates
from host.config import ConsumeConfig, parse_rate
from host.errors import StartupError
from host.model import (
    ApiKeyAuth,
    Auth,
    BasicAuth,
    BearerAuth,
    ConsumedApi,
    Credential,
    DigestAuth,
    EnvVar,
    credentials,
)
from host.resilience import Circuit, CircuitBreaker, RateLimit, TokenBucket
from host.secrets import REDACTOR, Secret


@dataclass(frozen=True)
class BoundAuth:
    """Credentials resolved for this process; secret values stay wrapped."""

    kind: str  # bearer, basic, digest, apikey, unsupported
    header: tuple[str, Secret] | None = None
    query: tuple[str, Secret] | None = None
    username: Secret | None = None
    password: Secret | None = None
    unsupported: str | None = None
    extra_headers: tuple[tuple[str, Secret], ...] = ()  # sent with ``header`` (an apikey of several)


@dataclass(frozen=True)
class BoundApi:
    """A consumed API made concrete for this process."""

    api: ConsumedApi
    base_url: str
    auth: BoundAuth | None
    timeout: aiohttp.ClientTimeout
    mock: bool
    variables: Mapping[str, str]
    settings: ConsumeConfig = field(default_factory=ConsumeConfig)
    breaker: Circuit = field(default_factory=lambda: CircuitBreaker(5, 30.0))  # or host.state's shared one
    bucket: RateLimit | None = None  # a TokenBucket, or host.state's shared limit

    @classmethod
    def make(
        cls,
        api: ConsumedApi,
        base_url: str,
        auth: BoundAuth | None,
        settings: ConsumeConfig,
        *,
        mock: bool,
        variables: Mapping[str, str],
    ) -> BoundApi:
        timeout = aiohttp.ClientTimeout(
            total=settings.timeout, sock_connect=min(settings.connect_timeout, settings.timeout)
        )
        bucket = TokenBucket(*parse_rate(settings.rate_limit)) if settings.rate_limit else None
        return cls(
            api,
            base_url,
            auth,
            timeout,
            mock,
            variables,
            settings,
            CircuitBreaker(settings.circuit_failures, settings.circuit_reset),
            bucket,
        )


def bind(api: ConsumedApi, settings: ConsumeConfig, environ: Mapping[str, str], origin: str) -> BoundApi:
    """Resolve ``api`` against its ``[consumes.<namespace>]`` settings and the environment.

    In mock mode nothing is read from the environment: the quickstart needs no secrets.
    """
    where = f"[consumes.{api.namespace}] (from {origin})"
    if settings.mock:
        return BoundApi.make(
            api, settings.base_uri or "mock://" + api.namespace, None, settings, mock=True, variables={}
        )
    values, candidates = _read_variables(api, settings, environ, where)
    # The override replaces the whole base URI, so variables only it needed may be absent.
    needed = set() if settings.base_uri else set(templates.names(api.base_uri))
    needed |= _bound_path_names(api, candidates) | set(api.required)
    _require(needed | _credential_names(api.auth), values, candidates, api.namespace, where)
    if api.operations and all(operation.static for operation in api.operations):
        return BoundApi.make(api, "static://", None, settings, mock=False, variables=values)

    def missing(name: str) -> str:
        raise StartupError(
            f"{where}: {{{name}}} in the base URI has no value; export the environment variable that "
            f"fills it, map it under variables, or set base_uri"
        )

    base_url = settings.base_uri or templates.render(api.base_uri, values, on_missing=missing).rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        raise StartupError(f"{where}: base URI {base_url!r} is not an http(s) URL; set base_uri in host.toml")
    auth = _bind_auth(api.auth, values, environ, where)
    return BoundApi.make(api, base_url, auth, settings, mock=False, variables=values)


def _read_variables(
    api: ConsumedApi, settings: ConsumeConfig, environ: Mapping[str, str], where: str
) -> tuple[dict[str, str], dict[str, list[EnvVar]]]:
    """The variables' values (host.toml's mapping first), and every variable that could fill each key."""
    mapped = [EnvVar(env_name, placeholder=key) for key, env_name in settings.variables.items()]
    values: dict[str, str] = {}
    candidates: dict[str, list[EnvVar]] = {}
    for var in [*mapped, *api.variables]:
        candidates.setdefault(var.key, []).append(var)
        if var.key in values:
            continue
        value = _read_env(var, environ, where, required=False)
        if value is not None:
            values[var.key] = value
            if var.secret:
                REDACTOR.add(value)
    return values, candidates


def _require(
    needed: set[str],
    values: Mapping[str, str],
    candidates: Mapping[str, list[EnvVar]],
    namespace: str,
    where: str,
) -> None:
    """Stop start-up, naming the variable to export, when a name the API needs has no value."""
    for name in sorted(needed):
        short = name.split(".", 1)[-1]
        if name in values or short in values:
            continue
        options = candidates.get(name) or candidates.get(short) or []
        if options:
            hint = "".join(f" ({var.help})" for var in options if var.help)
            raise StartupError(
                f"{where}: environment variable {' or '.join(v.name for v in options)} is not set{hint}; "
                f"export it, or set mock = true under [consumes.{namespace}] to run without the upstream"
            )
        raise StartupError(
            f"{where}: {{{name}}} has no value; map it to an environment variable under "
            f"[consumes.{namespace}] variables, or set base_uri"
        )


def _bound_path_names(api: ConsumedApi, candidates: Mapping[str, list[EnvVar]]) -> set[str]:
    """Placeholders in the operations' paths that a variable fills: the operator's values, so a missing
    one stops start-up (as for the base URI) instead of failing every call with a caller error."""
    return {
        name
        for operation in api.operations
        for name in templates.names(operation.path)
        if name in candidates or name.split(".", 1)[-1] in candidates
    }


def _credential_names(auth: Auth | None) -> set[str]:
    found: set[str] = set()
    for credential in credentials(auth):
        if isinstance(credential, str):
            found.update(templates.names(credential, single_brace=False))
    return found


def _bind_auth(
    auth: Auth | None, values: Mapping[str, str], environ: Mapping[str, str], where: str
) -> BoundAuth | None:
    def resolve(credential: Credential, what: str) -> Secret:
        if isinstance(credential, EnvVar):
            value = _read_env(credential, environ, where, required=True) or ""
        else:
            value = templates.render(credential, values, single_brace=False)
        if not value:
            raise StartupError(
                f"{where}: the {what} is empty; never sending a request without it "
                f"(check the environment variable behind {credential!r})"
            )
        return Secret(value)

    if auth is None:
        return None
    if isinstance(auth, BearerAuth):
        token = resolve(auth.token, "bearer token")
        return BoundAuth("bearer", header=("Authorization", Secret("Bearer " + token.reveal())))
    if isinstance(auth, BasicAuth):
        # A password written empty in the file is meant: the API key as the username, an empty password
        # (StackOne's and Shift4's convention). One that renders empty from the environment is refused.
        password = Secret("") if auth.password == "" else resolve(auth.password, "password")
        user = resolve(auth.username, "username")
        encoded = base64.b64encode(f"{user.reveal()}:{password.reveal()}".encode()).decode()
        return BoundAuth("basic", header=("Authorization", Secret("Basic " + encoded)))
    if isinstance(auth, DigestAuth):
        return BoundAuth(
            "digest", username=resolve(auth.username, "username"), password=resolve(auth.password, "password")
        )
    if isinstance(auth, ApiKeyAuth):
        value = resolve(auth.value, f"API key {auth.name}")
        if auth.placement == "query":
            return BoundAuth("apikey", query=(auth.name, value))
        extra = tuple((name, resolve(key, f"API key {name}")) for name, key in auth.extra_headers)
        return BoundAuth("apikey", header=(auth.name, value), extra_headers=extra)
    return BoundAuth("unsupported", unsupported=auth.type)


def _read_env(var: EnvVar, environ: Mapping[str, str], where: str, *, required: bool) -> str | None:
    value = environ.get(var.name, var.default)
    hint = f" ({var.help})" if var.help else ""
    if value is None or value == "":
        if not required:
            return None
        raise StartupError(
            f"{where}: environment variable {var.name} is not set{hint}; "
            f"export it, or set mock = true under {where.split(' ')[0]} to run without the upstream"
        )
    if var.choices and value not in var.choices:
        shown = "***" if var.secret else repr(value)
        raise StartupError(f"{where}: {var.name}={shown} must be one of {', '.join(var.choices)}")
    if var.pattern and not re.fullmatch(var.pattern, value):
        shown = "***" if var.secret else repr(value)
        raise StartupError(f"{where}: {var.name}={shown} does not match {var.pattern}")
    return value
