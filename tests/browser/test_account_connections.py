"""Connected accounts on the account page in headless Chromium (issue 14 item 2): a person whose account at
node-oidc-provider is connected for them sees it, with the provider's words for what it reaches, and disconnects
it; the provider confirms the revocation. frontdesk runs as its own process, set up through its CLI."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from peers.oidc_provider import Op, OpAccount, OpClient, running_op, sign_in_and_consent
from servers import Server

from .conftest import Account

pytestmark = pytest.mark.browser

AT_OP = OpAccount("pat-op", "pat@op.example", "pat at the provider " + secrets.token_urlsafe(8))
OP_SECRET = "op-client-secret-" + secrets.token_urlsafe(24)


@pytest.fixture(scope="module")
def op(frontdesk: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Op]:
    client = OpClient("frontdesk-vault", OP_SECRET, [f"{frontdesk.issuer}/vault/callback"])
    with running_op(tmp_path_factory.mktemp("op"), clients=[client], accounts=[AT_OP]) as up:
        yield up


@pytest.fixture(scope="module")
def api_key(frontdesk: Server, op: Op) -> str:
    frontdesk.cli(
        "vault", "integration", "add", "calendar", "--provider", "oidc", "--client-id", "frontdesk-vault",
        "--client-secret-stdin", "--param", f"discovery_url={op.url('/.well-known/openid-configuration')}",
        "--param", f"api_base_url={op.url('/api')}",
        stdin=OP_SECRET + "\n",
    )  # fmt: skip
    key: str = frontdesk.cli("apikey", "create", "--name", "chat backend")["api_key"]
    return key


def connected_for(frontdesk: Server, api_key: str, person_id: str) -> str:
    """The platform connects the person's provider account for their frontdesk id (the link, the provider's pages,
    the callback: one browser, plain HTTP); the connection id."""
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=frontdesk.issuer, timeout=30.0) as http:
        made = http.post(
            "/vault/connect-sessions", json={"user": person_id, "integration": "calendar"}, headers=headers
        )
        assert made.status_code == 201, made.text
        shown = http.get(made.json()["connect_url"])
        csrf = shown.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        opened = http.post(made.json()["connect_url"], data={"csrf": csrf})
        assert opened.status_code == 303, opened.text
        back = sign_in_and_consent(opened.headers["location"], AT_OP.id, AT_OP.password)
        assert http.get(back).status_code == 200
        listed = http.get("/vault/connections", params={"user": person_id}, headers=headers)
        [connection] = listed.json()["connections"]
        return str(connection["id"])


def test_a_person_sees_and_disconnects_a_connected_account(
    page: Page, frontdesk: Server, api_key: str, op: Op, screenshots: Path
) -> None:
    person = Account("person-" + secrets.token_hex(4), secrets.token_urlsafe(16))
    made: dict[str, Any] = frontdesk.cli(
        "user", "create", "--username", person.username, "--password-stdin", stdin=person.password
    )
    connection = connected_for(frontdesk, api_key, made["id"])

    page.goto(frontdesk.issuer + "/account/connections")
    page.wait_for_url("**/interaction/*/login")
    page.get_by_label("Username").fill(person.username)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(frontdesk.issuer + "/account/connections")
    expect(page.get_by_role("heading", name="OpenID Connect")).to_be_visible()
    expect(page.get_by_text("staying connected while you are away")).to_be_visible()
    expect(page.get_by_role("link", name="Connected accounts")).to_have_attribute("aria-current", "page")
    page.screenshot(path=str(screenshots / "account-connections.png"), full_page=True)

    revoked_before = op.counts().get("revocation", {}).get("succeeded", 0)
    page.get_by_role("button", name="Disconnect OpenID Connect").click()
    page.wait_for_url("**/account/connections?disconnected=revoked")
    expect(page.get_by_role("status")).to_contain_text("The provider confirmed")
    expect(page.get_by_text("No account at another service is connected for you.")).to_be_visible()
    assert connection not in page.content()
    assert op.counts()["revocation"]["succeeded"] == revoked_before + 1
