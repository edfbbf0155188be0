"""The upstream call in isolation, with aioresponses standing in for Tratta."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
import tratta_customer_sessions
from aioresponses import CallbackResult, aioresponses

from host.config import ConsumeConfig, HostConfig
from host.engine import Engine
from host.errors import (
    InvalidArguments,
    StartupError,
    UpstreamBadStatus,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from host.plugins import load_catalog
from host.secrets import REDACTOR, Secret

TOKEN = "tok_unit_0123456789abcdef"
ORG = "acme-org"
URL = f"https://{ORG}.production.tratta.io/api/v1/customer-sessions"
OP = "tratta-customer-sessions.createcustomersession"


def make_engine(environ: dict[str, str] | None = None, **consume: object) -> Engine:
    catalog = load_catalog(extra_plugins=[("tratta", tratta_customer_sessions)], discover=False, environ={})
    config = HostConfig(consumes={"tratta-customer-sessions": ConsumeConfig(**consume)})  # type: ignore[arg-type]
    env = {"TRATTA_API_KEY": TOKEN, "TRATTA_ORG_UUID": ORG} if environ is None else environ
    return Engine.from_catalog(catalog, config, env)


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    engine = make_engine()
    await engine.start()
    yield engine
    await engine.close()


async def test_posts_json_with_bearer_token(engine: Engine) -> None:
    with aioresponses() as mocked:
        mocked.post(URL, status=201, payload={"data": {"id": "s1"}})
        response = await engine.call(OP, {"body": {"customer_id": "c1", "valid_until": 2}})
        assert response.status == 201 and response.json() == {"data": {"id": "s1"}}
        [(key, [call])] = list(mocked.requests.items())
        assert str(key[1]) == URL
        assert call.kwargs["headers"]["Authorization"] == f"Bearer {TOKEN}"
        assert call.kwargs["headers"]["Accept"] == "application/json"
        assert call.kwargs["headers"]["Content-Type"] == "application/json"
        assert json.loads(call.kwargs["data"]) == {"customer_id": "c1", "valid_until": 2}


async def test_sandbox_environment_picks_the_sandbox_host() -> None:
    engine = make_engine({"TRATTA_API_KEY": TOKEN, "TRATTA_ORG_UUID": ORG, "TRATTA_ENVIRONMENT": "sandbox"})
    assert engine.apis["tratta-customer-sessions"].base_url == f"https://{ORG}.sandbox.tratta.io/api/v1"


async def test_invalid_arguments_never_reach_upstream(engine: Engine) -> None:
    with aioresponses() as mocked:
        with pytest.raises(InvalidArguments) as info:
            await engine.call(OP, {"body": {"valid_until": 0}})
        assert info.value.errors == {
            "body.customer_id": ["is required"],
            "body.valid_until": ["must be at least 1"],
        }
        assert not mocked.requests


async def test_4xx_comes_back_and_5xx_raises(engine: Engine) -> None:
    with aioresponses() as mocked:
        mocked.post(URL, status=422, payload={"message": "bad", "errors": {"customer_id": ["bad"]}})
        response = await engine.call(OP, {"body": {"customer_id": "c1"}})
        assert response.status == 422 and response.json()["message"] == "bad"
        mocked.post(URL, status=503, body="down")
        with pytest.raises(UpstreamBadStatus, match="answered 503"):
            await engine.call(OP, {"body": {"customer_id": "c1"}})


async def test_timeout_and_connection_errors(engine: Engine) -> None:
    with aioresponses() as mocked:
        mocked.post(URL, exception=TimeoutError())
        with pytest.raises(UpstreamTimeout):
            await engine.call(OP, {"body": {"customer_id": "c1"}})
        mocked.post(URL, exception=aiohttp.ServerDisconnectedError())
        with pytest.raises(UpstreamUnreachable):
            await engine.call(OP, {"body": {"customer_id": "c1"}})


async def test_errors_and_logs_never_carry_the_token(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.handler.addFilter(REDACTOR)

    def explode(url: object, **kwargs: object) -> CallbackResult:
        raise aiohttp.ClientPayloadError(f"failure with {kwargs['headers']}")

    with aioresponses() as mocked, caplog.at_level(logging.DEBUG):
        mocked.post(URL, callback=explode)
        with pytest.raises(UpstreamUnreachable) as info:
            await engine.call(OP, {"body": {"customer_id": "c1"}})
        logging.getLogger("test").error("leak attempt: %s", f"Authorization: Bearer {TOKEN}")
    assert TOKEN not in str(info.value)
    assert TOKEN not in caplog.text


def test_missing_variables_are_named() -> None:
    with pytest.raises(StartupError, match="TRATTA_API_KEY"):
        make_engine({"TRATTA_ORG_UUID": ORG})
    with pytest.raises(StartupError, match="TRATTA_ORG_UUID"):
        make_engine({"TRATTA_API_KEY": TOKEN})
    # mock mode needs neither; a base_uri override does not need the org
    assert make_engine({}, mock=True).apis["tratta-customer-sessions"].mock
    assert (
        make_engine({"TRATTA_API_KEY": TOKEN}, base_uri="http://127.0.0.1:1/api")
        .apis["tratta-customer-sessions"]
        .base_url
        == "http://127.0.0.1:1/api"
    )


async def test_mock_mode_answers_without_network() -> None:
    engine = make_engine({}, mock=True)
    await engine.start()
    try:
        with aioresponses() as mocked:
            ok = await engine.call(OP, {"body": {"customer_id": "c1", "valid_until": 3}})
            assert ok.mocked and ok.status == 201
            assert set(ok.json()["data"]) == {"id", "portal_url", "return_url", "expiration"}
            assert not mocked.requests
    finally:
        await engine.close()


def test_secret_hides_itself() -> None:
    secret = Secret("abcdefghijkl")
    assert "abcdefghijkl" not in repr(secret) and "abcdefghijkl" not in f"{secret}"
    assert secret.reveal() == "abcdefghijkl"
    assert REDACTOR.scrub('{"portal_url": "https://p/x?sig=1"} abcdefghijkl') == '{"portal_url": "***"} ***'
