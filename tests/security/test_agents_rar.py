"""Rich Authorization Requests (RFC 9396): one black-box test per item of the agents checklist's RAR section
(/work/shared/reference/agents-checklist.md, AG-RAR-01…05), named after its ID, against the production app (the
``http`` fixture) on both databases, with the payment type of RFC 9396 §A.3 registered as an operator registers it."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from conftest import basic, pkce
from frontdesk.core import Frontdesk
from rar import PAYMENT, PAYMENTS_API, authorize, code_with, register_payments
from test_token import introspect, verified_claims


@pytest.fixture(autouse=True)
def payments(fd: Frontdesk) -> None:
    register_payments(fd)


async def test_AG_RAR_01_a_common_field_that_is_not_an_array_is_rejected(browser, confidential):
    """§2.2: ``actions`` is an array of strings; ``"actions":"read"`` is invalid_authorization_details."""
    answer = await authorize(browser, confidential, [{**PAYMENT, "actions": "read"}])
    assert answer["error"] == "invalid_authorization_details"
    assert "actions must be an array" in answer["error_description"]


def _missing_amount(detail: dict[str, Any]) -> None:
    detail["instructedAmount"].pop("amount")


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda d: d.update(type="wire_transfer"), "unknown type"),
        (lambda d: d.update(debtorAccount={"iban": "x"}), "debtorAccount is not a field"),
        (lambda d: d.update(creditorName=["Merchant A"]), "creditorName must be of type string"),
        (lambda d: d["instructedAmount"].update(currency="euro"), "instructedAmount.currency"),
        (_missing_amount, "missing the field amount"),
    ],
    ids=["unknown-type", "unknown-field", "wrong-type", "bad-value", "missing-field"],
)
async def test_AG_RAR_02_each_nonconforming_detail_is_rejected(browser, confidential, change, says):
    """§5: unknown type or field, wrong type, bad value, missing field → invalid_authorization_details."""
    detail = copy.deepcopy(PAYMENT)
    change(detail)
    answer = await authorize(browser, confidential, [detail])
    assert answer["error"] == "invalid_authorization_details"
    assert says in answer["error_description"]
    assert "code" not in answer


async def test_AG_RAR_03_consent_lists_both_scope_and_details(browser, confidential):
    """§3.1: with ``scope``, both are processed; the consent page lists the scopes and the details in words."""
    _, challenge = pkce()
    response = await browser.follow(
        await browser.http.get(
            "/authorize",
            params={
                "response_type": "code",
                "client_id": confidential.client_id,
                "redirect_uri": confidential.redirect_uri,
                "scope": "calendar.read",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "authorization_details": json.dumps([PAYMENT]),
            },
        )
    )
    page = await browser.follow(await browser.sign_in(response))
    assert "See your calendar events" in page.text
    assert "Pay 123.50 EUR to Merchant A" in page.text


async def test_AG_RAR_04_wider_actions_at_the_token_endpoint_are_rejected(http, browser, confidential):
    """§6, §6.1: a token request may narrow the details; one with an action not granted is refused."""
    granted = {**PAYMENT, "actions": ["initiate"]}
    code, verifier = await code_with(browser, confidential, [granted])
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "authorization_details": json.dumps([{**granted, "actions": ["initiate", "cancel"]}]),
    }
    response = await http.post("/token", auth=basic(confidential), data=data)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_authorization_details"


async def test_AG_RAR_05_granted_details_reach_the_token_response_the_jwt_and_introspection(
    http, browser, confidential
):
    """§7, §9, §10: the token response, the JWT (top-level claim, for its audience) and introspection carry the
    details; discovery advertises the type."""
    metadata = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert metadata["authorization_details_types_supported"] == ["payment_initiation"]
    code, verifier = await code_with(browser, confidential, [PAYMENT], resource=PAYMENTS_API)
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    body = (await http.post("/token", auth=basic(confidential), data=data)).json()
    assert body["authorization_details"] == [PAYMENT]
    assert (await verified_claims(http, body["access_token"]))["authorization_details"] == [PAYMENT]
    assert (await introspect(http, confidential, body["access_token"]))["authorization_details"] == [PAYMENT]
