"""What the Rich Authorization Requests tests share (RFC 9396): the payment type of RFC 9396 §A.3 registered as an
operator registers it, a payment of it, and a code obtained through the real pages."""

from __future__ import annotations

import json
from typing import Any

import httpx

from conftest import Browser, Registered, basic, pkce, query
from frontdesk.core import Frontdesk
from frontdesk.oauth.authorization_detail_types import create
from frontdesk.oauth.resources import create as create_resource

__all__ = [
    "DESCRIBE",
    "PAYMENT",
    "PAYMENTS_API",
    "SCHEMA",
    "authorize",
    "code_with",
    "register_payments",
    "tokens_with",
]

PAYMENTS_API = "https://example.com/payments"
DESCRIBE = "Pay {amount} {currency} to {creditorName}"
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "type": {"const": "payment_initiation"},
        "actions": {"type": "array", "items": {"enum": ["initiate", "status", "cancel"]}},
        "locations": {"type": "array"},
        "instructedAmount": {
            "type": "object",
            "properties": {
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "amount": {"type": "string", "pattern": "^[0-9]{1,9}(\\.[0-9]{1,2})?$"},
            },
            "required": ["currency", "amount"],
            "additionalProperties": False,
        },
        "creditorName": {"type": "string", "maxLength": 70},
        "creditorAccount": {"type": "object", "properties": {"iban": {"type": "string"}}, "required": ["iban"]},
        "remittanceInformationUnstructured": {"type": "string"},
    },
    "required": ["type", "instructedAmount", "creditorName"],
}
# RFC 9396 §A.3, the example of a payment initiation.
PAYMENT: dict[str, Any] = {
    "type": "payment_initiation",
    "actions": ["initiate", "status", "cancel"],
    "locations": [PAYMENTS_API],
    "instructedAmount": {"currency": "EUR", "amount": "123.50"},
    "creditorName": "Merchant A",
    "creditorAccount": {"iban": "DE02100100109307118603"},
    "remittanceInformationUnstructured": "Ref Number Merchant",
}


def register_payments(fd: Frontdesk) -> None:
    """The payment type and the payments API (the resource its ``locations`` name)."""
    create(fd, "payment_initiation", json.dumps(SCHEMA), DESCRIBE)
    create_resource(fd, PAYMENTS_API, "Payments API")


def authorize_params(client: Registered, details: Any, **extra: str) -> tuple[str, dict[str, str]]:
    verifier, challenge = pkce()
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": "openid offline_access",
        "state": "xyz",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "authorization_details": details if isinstance(details, str) else json.dumps(details),
        **extra,
    }
    return verifier, params


async def authorize(browser: Browser, client: Registered, details: Any, **extra: str) -> dict[str, str]:
    """The query of the redirect back to the client after sign-in and Allow."""
    _, params = authorize_params(client, details, **extra)
    response = await browser.authorize(**params)
    assert response.status_code == 303, response.text
    return query(response.headers["location"])


async def code_with(browser: Browser, client: Registered, details: Any, **extra: str) -> tuple[str, str]:
    verifier, params = authorize_params(client, details, **extra)
    response = await browser.authorize(**params)
    assert response.status_code == 303, response.text
    answer = query(response.headers["location"])
    assert "code" in answer, answer
    return answer["code"], verifier


async def tokens_with(
    http: httpx.AsyncClient, browser: Browser, client: Registered, details: Any = None, **token_extra: str
) -> httpx.Response:
    """A code for ``details`` (PAYMENT by default) redeemed with ``token_extra``; the token endpoint's answer."""
    code, verifier = await code_with(browser, client, [PAYMENT] if details is None else details)
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier, **token_extra}
    return await http.post("/token", auth=basic(client), data=data)
