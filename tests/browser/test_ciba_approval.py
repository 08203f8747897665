"""A CIBA request carrying a payment (RFC 9396 ``authorization_details``) approved by a person in real headless
Chromium (issue 14 item 7): the agent asks at /bc-authorize, the person signs in, reads the payment in the words the
operator registered on the approvals page, approves, and the token the agent then polls for carries the payment."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from rar import DESCRIBE, PAYMENT, PAYMENTS_API, SCHEMA
from servers import Server

from .conftest import Account

pytestmark = pytest.mark.browser

CIBA = "urn:openid:params:grant-type:ciba"


@pytest.fixture(scope="module")
def payment_agent(frontdesk: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The payment type and the payments API as an operator registers them, and an agent allowed CIBA (poll)."""
    schema = tmp_path_factory.mktemp("types") / "payment.json"
    schema.write_text(json.dumps(SCHEMA))
    frontdesk.cli("authz-type", "create", "payment_initiation", "--schema", str(schema), "--describe", DESCRIBE)
    frontdesk.cli("resource", "create", PAYMENTS_API, "--name", "Payments API")
    return frontdesk.cli(
        "client",
        "create",
        "--name",
        "Shopping Agent",
        "--grant-type",
        CIBA,
        "--backchannel-token-delivery-mode",
        "poll",
        "--scope",
        "openid",
    )


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def test_a_person_approves_a_payment_in_the_browser_and_the_token_carries_it(
    frontdesk: Server, payment_agent: dict[str, Any], account: Account, page: Page, screenshots: Path
) -> None:
    auth = (payment_agent["client_id"], payment_agent["client_secret"])
    asked = httpx.post(
        f"{frontdesk.issuer}/bc-authorize",
        auth=auth,
        data={
            "scope": "openid",
            "login_hint": account.username,
            "binding_message": "Order 7Q2X",
            "authorization_details": json.dumps([PAYMENT]),
            "resource": PAYMENTS_API,
        },
        timeout=10.0,
    )
    assert asked.status_code == 200, asked.text
    auth_req_id = asked.json()["auth_req_id"]
    poll = {"grant_type": CIBA, "auth_req_id": auth_req_id}
    assert httpx.post(f"{frontdesk.issuer}/token", auth=auth, data=poll).json()["error"] == "authorization_pending"

    page.goto(f"{frontdesk.issuer}/account/approvals")
    page.get_by_label("Username").fill(account.username)
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Approvals", exact=True)).to_be_visible()
    card = page.locator("section.approval")
    expect(card.get_by_role("heading")).to_have_text("Shopping Agent asks for your approval")
    expect(card).to_contain_text("Order 7Q2X")
    expect(card).to_contain_text("Pay 123.50 EUR to Merchant A")
    page.screenshot(path=str(screenshots / "ciba-approval.png"), full_page=True)
    card.get_by_role("button", name="Approve the request of Shopping Agent").click()
    expect(page.get_by_role("status")).to_have_text("You approved the request. The app can now go ahead.")
    expect(page.locator("main")).to_contain_text("No app is waiting for your approval.")

    answer = httpx.post(f"{frontdesk.issuer}/token", auth=auth, data=poll, timeout=10.0)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["authorization_details"] == [PAYMENT]
    assert claims_of(body["access_token"])["authorization_details"] == [PAYMENT]
    again = httpx.post(f"{frontdesk.issuer}/token", auth=auth, data=poll, timeout=10.0)
    assert again.json()["error"] == "invalid_grant"
