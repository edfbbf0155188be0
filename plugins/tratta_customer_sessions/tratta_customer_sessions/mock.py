"""Mock mode: Tratta's answers without Tratta.

Validates like the real API (Laravel-style ``422 {message, errors}``) and
answers a realistic session document. Nothing here touches the network.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any

from host import MockRequest, UpstreamResponse
from tratta_customer_sessions.schema import DESTINATIONS

EXAMPLE: dict[str, Any] = json.loads(files(__package__).joinpath("data/example-session.json").read_text())


def create_customer_session(request: MockRequest) -> UpstreamResponse:
    body = request.json_body if isinstance(request.json_body, dict) else {}
    errors = validate(body)
    if errors:
        first = next(iter(errors.values()))[0]
        more = sum(len(messages) for messages in errors.values()) - 1
        message = first + (f" (and {more} more error{'s' if more > 1 else ''})" if more else "")
        return _json(422, {"message": message, "errors": errors})
    session_id = str(uuid.uuid4())
    hours = body.get("valid_until", 24)
    session = dict(EXAMPLE["data"])
    session.update(
        id=session_id,
        portal_url=f"{session['portal_url']}{session_id}",
        return_url=body.get("return_url"),
        expiration=(datetime.now(UTC) + timedelta(hours=hours)).isoformat(timespec="seconds"),
    )
    return _json(201, {"data": session})


def validate(body: dict[str, Any]) -> dict[str, list[str]]:
    """Laravel's validation messages for the documented rules."""
    errors: dict[str, list[str]] = {}

    def fail(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message.format(field=field.replace("_", " ")))

    if not body.get("customer_id"):
        fail("customer_id", "The {field} field is required.")
    for field in ("customer_id", "debt_account_id", "debt_account_dispute_id"):
        if field in body and not isinstance(body[field], str):
            fail(field, "The {field} field must be a string.")
    if "valid_until" in body:
        value = body["valid_until"]
        if not isinstance(value, int) or isinstance(value, bool):
            fail("valid_until", "The {field} field must be an integer.")
        elif not 1 <= value <= 2160:
            fail("valid_until", "The {field} field must be between 1 and 2160.")
    for field in ("return_url", "expiration_return_url"):
        value = body.get(field)
        if field in body and not (isinstance(value, str) and value.startswith(("http://", "https://"))):
            fail(field, "The {field} field must be a valid URL.")
    if "destination" in body and body["destination"] not in DESTINATIONS:
        fail("destination", "The selected {field} is invalid.")
    if "tags" in body and not isinstance(body["tags"], list):
        fail("tags", "The {field} field must be an array.")
    return errors


def _json(status: int, document: Any) -> UpstreamResponse:
    return UpstreamResponse(status, json.dumps(document).encode(), "application/json")
