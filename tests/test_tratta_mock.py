"""The Tratta plugin's mock validates like the real API (Laravel 422 shape)."""

from __future__ import annotations

import json

from tratta_customer_sessions.mock import create_customer_session

from host import MockRequest


def call(body: object) -> tuple[int, dict[str, object]]:
    response = create_customer_session(MockRequest("POST", "/customer-sessions", {"body": body}, body))
    return response.status, json.loads(response.body)


def test_missing_customer_id_is_422_with_message_and_errors() -> None:
    status, document = call({})
    assert status == 422
    assert document == {
        "message": "The customer id field is required.",
        "errors": {"customer_id": ["The customer id field is required."]},
    }


def test_several_errors_are_counted_in_the_message() -> None:
    status, document = call({"valid_until": 5000, "return_url": "ftp://x"})
    assert status == 422
    assert document["message"] == "The customer id field is required. (and 2 more errors)"
    assert set(document["errors"]) == {"customer_id", "valid_until", "return_url"}  # type: ignore[arg-type]


def test_success_is_a_session_document() -> None:
    status, document = call({"customer_id": "c1", "return_url": "https://example.com/paid"})
    assert status == 201
    data = document["data"]
    assert isinstance(data, dict)
    assert data["return_url"] == "https://example.com/paid"
    assert str(data["portal_url"]).endswith(str(data["id"]))
