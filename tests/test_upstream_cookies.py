"""An upstream's cookies belong to the call that received them, never to the next caller's call.

The pooled session is shared by every caller of one upstream: a cookie jar on it would replay one
caller's ``Set-Cookie`` (a session, a CSRF token) on calls made for everyone else.
"""

from __future__ import annotations

from host.testing import FakeUpstream, serve_in_process


async def test_a_cookie_the_upstream_sets_is_not_sent_on_later_calls() -> None:
    with FakeUpstream() as fake:
        fake.route(
            "POST",
            "/api/v1/customer-sessions",
            status=201,
            json={"data": {"id": "s"}},
            headers={"Set-Cookie": "session=caller-a-secret; Path=/"},
        )
        # By name, as real upstreams are reached: aiohttp's jar ignores cookies from a bare IP address.
        by_name = fake.url.replace("127.0.0.1", "localhost")
        config = {
            "consumes": {"tratta-customer-sessions": {"base_uri": by_name + "/api/v1"}},
            "plugins": {"load": ["tratta-customer-sessions"]},
        }
        async with serve_in_process(config, {"TRATTA_API_KEY": "k" * 20}) as host:
            for customer in ("caller-a", "caller-b"):
                response = await host.rest.post("/v1/customer-sessions", json={"customer_id": customer})
                assert response.status == 201
                assert "Set-Cookie" not in response.headers  # the upstream's cookie stays upstream
        second = fake.requests[-1]
    assert "caller-b" in second.text
    assert "Cookie" not in second.headers
