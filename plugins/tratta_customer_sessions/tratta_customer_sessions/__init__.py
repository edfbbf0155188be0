"""Tratta Customer Sessions for capability-host.

Contributes one consumed operation (``POST {base}/customer-sessions``), the REST
resource ``POST /v1/customer-sessions`` and the MCP tool
``create-customer-session``. Configuration: ``TRATTA_API_KEY`` (secret),
``TRATTA_ORG_UUID``, ``TRATTA_ENVIRONMENT`` (production or sandbox) and the
host.toml table ``[consumes.tratta-customer-sessions]``.
"""

from __future__ import annotations

from collections.abc import Callable

from host import (
    BearerAuth,
    ConsumedApi,
    ConsumedOperation,
    EnvVar,
    McpTool,
    RestResource,
    ToolHints,
    hookimpl,
)
from tratta_customer_sessions import mock
from tratta_customer_sessions.schema import INPUT_SCHEMA

NAMESPACE = "tratta-customer-sessions"
OPERATION = "createcustomersession"  # the name in the Naftiko capability file

# Tratta's documented hosts; {TRATTA_ORG_UUID} is one DNS label, checked at start-up
# so that a stray character can never steer the request to another host.
BASE_URI = "https://{TRATTA_ORG_UUID}.{TRATTA_ENVIRONMENT}.tratta.io/api/v1"

TOOL_DESCRIPTION = """\
Create a Tratta customer portal session and get a login link for it.

Use it when a debtor (a Tratta customer) needs to see their accounts, pay, read \
documents or follow a dispute in Tratta's payment portal. Pass `body.customer_id` \
(Tratta's customer UUID or your external_id); optionally `debt_account_id` with \
`destination` account_checkout / account_detail / account_documents to open one \
account, `valid_until` in hours (1-2160; default: 24 h after last use), \
`return_url`, and `tags` (e.g. utm_source) to mark the link.

Returns Tratta's JSON: `data.portal_url` is the login link, `data.expiration` when it \
expires. The link logs anyone who holds it into that customer's portal: give it only \
to that customer, never post it publicly. Every call creates a new session."""


@hookimpl
def host_register_consumes(register: Callable[[ConsumedApi], None]) -> None:
    register(
        ConsumedApi(
            namespace=NAMESPACE,
            description="Tratta API: customer portal sessions.",
            base_uri=BASE_URI,
            variables=(
                EnvVar(
                    "TRATTA_ORG_UUID",
                    pattern=r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?",
                    help="the organisation UUID Tratta issued with your API key",
                ),
                EnvVar("TRATTA_ENVIRONMENT", default="production", choices=("production", "sandbox")),
            ),
            auth=BearerAuth(EnvVar("TRATTA_API_KEY", secret=True, help="your Tratta API token")),
            headers={"Accept": "application/json"},
            operations=(
                ConsumedOperation(
                    name=OPERATION,
                    method="POST",
                    # Tratta documents /customer-sessions; the capability file's
                    # /customer_sessions is a generator error.
                    path="/customer-sessions",
                    description="Create Customer Session",
                    input_schema=INPUT_SCHEMA,
                    body="body",
                    mock=mock.create_customer_session,
                ),
            ),
        )
    )


@hookimpl
def host_register_rest_resources(register: Callable[[RestResource], None]) -> None:
    register(
        RestResource(
            method="POST",
            path="/v1/customer-sessions",
            operation=f"{NAMESPACE}.{OPERATION}",
            description="Create a customer portal session; the JSON body is Tratta's request body.",
            body_argument="body",
        )
    )


@hookimpl
def host_register_mcp_tools(register: Callable[[McpTool], None]) -> None:
    register(
        McpTool(
            name="create-customer-session",
            title="Create Tratta customer portal session",
            description=TOOL_DESCRIPTION,
            operation=f"{NAMESPACE}.{OPERATION}",
            hints=ToolHints(read_only=False, destructive=False, idempotent=False, open_world=True),
        )
    )
