"""The request body of Tratta's Create Customer Session, as JSON Schema (2020-12).

Fields and limits from Tratta's API documentation (see the plugin README).
Unknown fields are refused: the machine-generated descriptions of this API
circulate wrong names (``redirect_url``, ``expires_in``) that Tratta would
silently ignore, leaving a caller with a session other than the one asked for.
"""

from __future__ import annotations

from typing import Any

HTTP_URL = {"type": "string", "pattern": r"^https?://[^\s/?#]+[^\s]*$", "maxLength": 2048}

DESTINATIONS = (
    "accounts_list",
    "account_checkout",
    "account_detail",
    "account_documents",
    "account_disputes_detail",
)

BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Tratta's Create Customer Session body.",
    "required": ["customer_id"],
    "additionalProperties": False,
    "properties": {
        "customer_id": {
            "type": "string",
            "minLength": 1,
            "description": "Tratta customer UUID, or the external_id given when the customer was created.",
        },
        "debt_account_id": {
            "type": "string",
            "minLength": 1,
            "description": "Debt account UUID or external_id: the session opens that account's pages.",
        },
        "debt_account_dispute_id": {
            "type": "string",
            "minLength": 1,
            "description": "Dispute UUID (as shown in the Tratta Console): opens that dispute's page.",
        },
        "valid_until": {
            "type": "integer",
            "minimum": 1,
            "maximum": 2160,
            "description": "Hours the link stays valid, 1 to 2160 (90 days). "
            "Omitted: the session expires 24 hours after it was last used.",
        },
        "return_url": {
            **HTTP_URL,
            "description": "Absolute http(s) URL the customer returns to after paying.",
        },
        "expiration_return_url": {
            **HTTP_URL,
            "description": "Absolute http(s) URL the portal sends the customer to once the session expired.",
        },
        "destination": {
            "type": "string",
            "enum": list(DESTINATIONS),
            "description": "Portal page to open. accounts_list (default; with customer_id); "
            "account_checkout, account_detail, account_documents (need debt_account_id); "
            "account_disputes_detail (needs debt_account_dispute_id).",
        },
        "tags": {
            "type": "array",
            "maxItems": 20,
            "description": "Appended to the portal URL as query parameters, e.g. utm_source and utm_medium.",
            "items": {
                "type": "object",
                "required": ["name", "value"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 100},
                    "value": {"type": "string", "maxLength": 500},
                },
            },
        },
    },
    "allOf": [
        {
            "if": {
                "required": ["destination"],
                "properties": {
                    "destination": {"enum": ["account_checkout", "account_detail", "account_documents"]}
                },
            },
            "then": {"required": ["debt_account_id"]},
        },
        {
            "if": {
                "required": ["destination"],
                "properties": {"destination": {"const": "account_disputes_detail"}},
            },
            "then": {"required": ["debt_account_dispute_id"]},
        },
    ],
}

INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["body"],
    "additionalProperties": False,
    "properties": {"body": BODY_SCHEMA},
}
