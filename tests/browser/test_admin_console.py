"""The admin console in real headless Chromium (issue 16, item 2), against frontdesk served as its own process with a
real local SMTP server: the walk the issue asks for — an operator signs in (password, then the second step the
console asks for), registers a client, changes its redirect URIs, rotates its secret, finds a person and resets
their password by email (the link followed in the person's own browser), and sees the alert a replayed refresh
token raises; then an auditor who may only look, and an owner who makes an admin API token. A screenshot of each
page for a person to look at."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pyotp
import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from inbox import link_in
from servers import Server

from .conftest import Account, Site

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def frontdesk(mailing_frontdesk: Server) -> Server:
    """frontdesk in its own process, mailing through the module's SMTP server (tests/browser/conftest.py)."""
    return mailing_frontdesk


def person(frontdesk: Server, role: str | None = None, email: str | None = None) -> Account:
    username = "person-" + secrets.token_hex(4)
    password = secrets.token_urlsafe(16)
    extra = ["--email", email] if email else []
    frontdesk.cli(
        "user", "create", "--username", username, "--name", "Pat Example", *extra, "--password-stdin", stdin=password
    )
    if role:
        frontdesk.cli("admin", "role", "grant", username, "--role", role)
    return Account(username, password)


@pytest.fixture
def watched(page: Page, frontdesk: Server) -> list[str]:
    """frontdesk's console errors and warnings in the page (a CSP violation would show here)."""
    messages: list[str] = []

    def keep(message: ConsoleMessage) -> None:
        expected = message.text.startswith("Failed to load resource: the server responded with a status of 4")
        ours = message.location.get("url", "").startswith(frontdesk.issuer)
        if message.type in ("error", "warning") and ours and not expected:
            messages.append(message.text)

    page.on("console", keep)
    page.on("pageerror", lambda error: messages.append(str(error)))
    return messages


def shoot(page: Page, screenshots: Path, name: str) -> None:
    page.screenshot(path=str(screenshots / f"admin-{name}.png"), full_page=True)


def assert_labelled(page: Page) -> None:
    """Every visible form field has a label (or an aria-label) a screen reader can announce."""
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
              .filter((e) => e.offsetParent !== null && !e.labels.length && !e.getAttribute('aria-label'))
              .map((e) => e.name)"""
    )
    assert unlabelled == [], unlabelled


def enter_console(page: Page, frontdesk: Server, account: Account, screenshots: Path | None = None) -> None:
    """/admin: sign in with the password, then set up an authenticator app at the second step the console asks
    for, save the recovery codes, and land on the overview."""
    page.goto(frontdesk.issuer + "/admin")
    page.wait_for_url("**/interaction/*/login")
    page.get_by_label("Username").fill(account.username)
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="A second step is needed")).to_be_visible()
    if screenshots:
        shoot(page, screenshots, "second-step-needed")
    page.get_by_role("link", name="Continue").click()
    secret = page.locator("code.secret").inner_text().replace(" ", "")
    page.get_by_label("Type the 6-digit code the app shows").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on").click()
    page.get_by_role("link", name="I have saved them, continue").click()
    page.wait_for_url(frontdesk.issuer + "/admin")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def replay_a_refresh_token(frontdesk: Server, page: Page, site: Site, client_id: str) -> None:
    """Sign in to the client (the admin's own browser allows it), redeem the code, refresh, then use the first
    refresh token again: a replay (RFC 9700 §4.14.2)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect_uri = f"{site.origin}/cb"
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid offline_access",
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    page.goto(f"{frontdesk.issuer}/authorize?{urlencode(query)}")
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{redirect_uri}?**")
    code = re.search(r"[?&]code=([^&]+)", page.url)
    assert code
    token_url = f"{frontdesk.issuer}/token"
    data = {"grant_type": "authorization_code", "code": code[1], "client_id": client_id, "code_verifier": verifier}
    first: dict[str, Any] = httpx.post(token_url, data=data, timeout=10.0).json()
    refresh = {"grant_type": "refresh_token", "client_id": client_id, "refresh_token": first["refresh_token"]}
    assert httpx.post(token_url, data=refresh, timeout=10.0).status_code == 200
    replayed = httpx.post(token_url, data=refresh, timeout=10.0)
    assert replayed.json()["error"] == "invalid_grant"


def choose_a_new_password(page: Page, frontdesk: Server, someone: Account, link: str) -> None:
    """In the person's own browser: the emailed link, a new password, then signing in with it."""
    assert link.startswith(frontdesk.issuer + "/password/reset?t=")
    browser = page.context.browser
    assert browser is not None
    theirs = browser.new_context()
    try:
        mine = theirs.new_page()
        mine.goto(link)
        new_password = secrets.token_urlsafe(16)
        mine.get_by_label("New password", exact=True).fill(new_password)
        mine.get_by_label("New password again").fill(new_password)
        mine.get_by_role("button", name="Change my password").click()
        expect(mine.get_by_role("heading", name="Password changed")).to_be_visible()
        mine.goto(frontdesk.issuer + "/account")
        mine.get_by_label("Username").fill(someone.username)
        mine.get_by_label("Password").fill(new_password)
        mine.get_by_role("button", name="Sign in", exact=True).click()
        mine.wait_for_url(frontdesk.issuer + "/account")
    finally:
        theirs.close()


def test_an_operator_runs_the_service_from_the_console(page, frontdesk, mailbox, site, screenshots, watched):
    """Register a client, change its redirect URIs, rotate its secret, find a person and reset their password by
    email, and see the alert a replayed refresh token raises — all in the browser."""
    operator = person(frontdesk, "operator")
    address = f"pat-{secrets.token_hex(4)}@example.test"  # the mailbox serves both backends' servers
    someone = person(frontdesk, email=address)
    enter_console(page, frontdesk, operator, screenshots)
    expect(page.get_by_role("navigation", name="Admin").get_by_role("link", name="Overview")).to_have_attribute(
        "aria-current", "page"
    )
    expect(page.get_by_role("status")).to_have_text("No alert is open.")
    shoot(page, screenshots, "overview")

    # Register a client.
    page.get_by_role("link", name="Clients", exact=True).click()
    page.get_by_role("link", name="Register a client").click()
    assert_labelled(page)
    page.get_by_label("Confidential: a server that keeps a secret (sent with HTTP Basic)").check()
    page.get_by_label("Name people see").fill("Billing Portal")
    page.get_by_label("Redirect URIs, one a line").fill("https://billing.example/cb")
    page.get_by_label("Scopes it may ask for, separated by spaces").fill("openid profile")
    shoot(page, screenshots, "client-new")
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("heading", name="Client registered")).to_be_visible()
    first_secret = page.locator("code[data-secret]").inner_text()
    assert first_secret.startswith("fd_")
    shoot(page, screenshots, "client-registered")
    page.get_by_role("link", name="Done").click()

    # Change its redirect URIs: one registration refuses first, in words on the form, then a good one.
    page.get_by_label("Redirect URIs, one a line").fill("http://billing.example/cb")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("alert")).to_be_visible()
    shoot(page, screenshots, "client-refused")
    page.get_by_label("Redirect URIs, one a line").fill("https://billing.example/cb\nhttps://billing.example/cb2")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_have_text("The client's settings are saved.")
    expect(page.locator("main")).to_contain_text("https://billing.example/cb2")
    shoot(page, screenshots, "client")

    # Rotate its secret: the new one shown once, the old one working until the overlap ends.
    page.get_by_label("The old secret keeps working for").select_option(label="1 hour")
    page.get_by_role("button", name="Rotate the secret").click()
    expect(page.get_by_role("heading", name="New secret")).to_be_visible()
    expect(page.locator("main")).to_contain_text("The previous secret keeps working until")
    second_secret = page.locator("code[data-secret]").inner_text()
    assert second_secret not in (first_secret, "")
    shoot(page, screenshots, "client-secret-rotated")
    page.get_by_role("link", name="Clients", exact=True).click()
    expect(page.get_by_role("link", name="Billing Portal")).to_be_visible()
    shoot(page, screenshots, "clients")

    # Find a person and send them a password reset by email.
    page.get_by_role("link", name="People").click()
    page.get_by_label("Username or email contains").fill(address.split("@")[0])
    page.get_by_role("button", name="Find").click()
    shoot(page, screenshots, "people")
    page.get_by_role("link", name=someone.username).click()
    expect(page.get_by_role("heading", name="Pat Example")).to_be_visible()
    shoot(page, screenshots, "person")
    before = len(mailbox.messages)
    page.get_by_role("button", name="Send a password reset email").click()
    expect(page.get_by_role("status")).to_contain_text("A link to choose a new password is on its way")
    [message] = [m for m in mailbox.wait_for(before + 1) if m["To"] == address]
    choose_a_new_password(page, frontdesk, someone, link_in(message))

    # A replayed refresh token raises an alert, shown on the overview and the Alerts page.
    app = frontdesk.cli(
        "client", "create", "--name", "Notes App", "--public", "--redirect-uri", "http://127.0.0.1/cb",
        "--grant-type", "authorization_code", "--grant-type", "refresh_token", "--scope", "openid offline_access",
    )  # fmt: skip
    replay_a_refresh_token(frontdesk, page, site, app["client_id"])
    page.goto(frontdesk.issuer + "/admin/alerts")
    alert = page.locator("section.card", has_text="was used a second time")
    for _ in range(20):  # the rules read the trail about once a second (admin/alert_evaluator.py)
        if alert.count():
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(alert.get_by_role("heading")).to_have_text("Critical A token was used twice")
    expect(alert).to_contain_text(app["client_id"])
    shoot(page, screenshots, "alerts")
    alert.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_role("status")).to_have_text("The alert is marked as being looked at.")
    assert watched == []


def test_an_auditor_reads_and_cannot_change(page, frontdesk, screenshots, watched):
    """An auditor sees the pages without a form to change anything, and can search the audit trail."""
    auditor = person(frontdesk, "auditor")
    enter_console(page, frontdesk, auditor)
    expect(page.locator("header")).to_contain_text("(read only)")
    page.get_by_role("link", name="Clients", exact=True).click()
    expect(page.get_by_role("link", name="Register a client")).to_have_count(0)
    page.get_by_role("link", name="Audit trail").click()
    page.get_by_label("Event").fill("admin.*")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("ol.events")).to_contain_text("admin.role.granted")
    assert_labelled(page)
    shoot(page, screenshots, "audit")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download as JSON lines").click()
    assert download.value.suggested_filename.endswith(".jsonl")
    # On a phone: the menu goes above the page, and nothing is wider than the window.
    page.set_viewport_size({"width": 375, "height": 720})
    for path in ("/admin/audit?event=admin.*", "/admin/clients", "/admin/people"):
        page.goto(frontdesk.issuer + path)
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"), path
    shoot(page, screenshots, "people-narrow")
    assert watched == []


def test_a_person_without_a_role_is_turned_away(page, frontdesk):
    nobody = person(frontdesk)
    page.goto(frontdesk.issuer + "/admin")
    page.get_by_label("Username").fill(nobody.username)
    page.get_by_label("Password").fill(nobody.password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("Your account has no admin role")


def test_an_owner_makes_an_admin_api_token(page, frontdesk, screenshots, watched):
    """The owner's Admin access page: a token made there is shown once and answers the admin API."""
    owner = person(frontdesk, "owner")
    enter_console(page, frontdesk, owner)
    page.get_by_role("link", name="Admin access").click()
    assert_labelled(page)
    page.get_by_label("Who or what uses it").fill("nightly-report")
    page.get_by_role("group", name="Role").last.get_by_label("Auditor: looks at everything, changes nothing").check()
    page.get_by_label("It works for").select_option(label="30 days")
    page.get_by_role("button", name="Make a token").click()
    expect(page.get_by_role("heading", name="New admin token")).to_be_visible()
    value = page.locator("code[data-secret]").inner_text()
    shoot(page, screenshots, "token-issued")
    clients = httpx.get(f"{frontdesk.issuer}/admin/api/v1/clients", headers={"Authorization": f"Bearer {value}"})
    assert clients.status_code == 200
    page.get_by_role("link", name="Done").click()
    expect(page.locator("main")).to_contain_text("nightly-report")
    shoot(page, screenshots, "access")
    assert watched == []


def test_an_operator_rotates_the_signing_keys(page, frontdesk, screenshots, watched):
    """The Signing keys page lists the keys by state; after a rotation the key that was next signs, and the JWKS
    still publishes the retired one."""
    operator = person(frontdesk, "operator")
    enter_console(page, frontdesk, operator)
    page.get_by_role("link", name="Signing keys").click()
    table = page.get_by_role("table", name="Signing keys")
    upcoming = table.get_by_role("row").filter(has_text="Next: published").first.locator("code").inner_text()
    shoot(page, screenshots, "keys")
    page.get_by_role("button", name="Rotate the signing keys").click()
    expect(page.get_by_role("status")).to_contain_text("The keys are rotated")
    active = table.get_by_role("row").filter(has_text="Active: signs tokens now")
    expect(active.filter(has_text=upcoming)).to_have_count(1)
    expect(table.get_by_role("row").filter(has_text="Retired: published for the tokens it signed")).not_to_have_count(0)
    published = {key["kid"] for key in httpx.get(frontdesk.issuer + "/jwks").json()["keys"]}
    assert upcoming in published
    shoot(page, screenshots, "keys-rotated")
    assert watched == []


def test_an_operator_adds_a_scope_and_registers_a_resource(page, frontdesk, screenshots, watched):
    """Scopes and resources: a scope with its words, a resource that brings a new scope, DPoP required for it."""
    operator = person(frontdesk, "operator")
    enter_console(page, frontdesk, operator)
    page.get_by_role("link", name="Scopes and resources").click()
    assert_labelled(page)
    name = f"notes-{secrets.token_hex(3)}.read"  # the module's server is shared by the tests
    page.get_by_label("Scope name").fill(name)
    page.get_by_label("Words on the consent screen").fill("Read your notes")
    page.get_by_role("button", name="Add the scope").click()
    expect(page.get_by_role("status")).to_have_text("The scope is added. Clients may be registered for it now.")
    expect(page.get_by_label(f"Words for {name}", exact=True)).to_have_value("Read your notes")
    uri = f"https://notes-{secrets.token_hex(3)}.example/api"
    page.get_by_label("Resource URI").fill(uri)
    page.get_by_label("Name people see").fill("Notes API")
    page.get_by_label("Its scopes, separated by spaces").fill(f"{name} notes.write")
    page.get_by_label("Mint only DPoP-bound tokens for it").check()
    page.get_by_role("button", name="Register the resource").click()
    expect(page.get_by_role("status")).to_contain_text("The resource is registered")
    row = page.get_by_role("row").filter(has_text=uri)
    expect(row).to_contain_text("Yes")
    expect(page.get_by_role("row").filter(has_text="notes.write").first).to_be_visible()
    shoot(page, screenshots, "catalog")
    row.get_by_role("button", name=f"Stop requiring DPoP for {uri}").click()
    expect(page.get_by_role("row").filter(has_text=uri)).to_contain_text("No")
    assert watched == []


def test_an_operator_adds_a_sign_in_provider(page, frontdesk, screenshots, watched):
    """Sign-in providers: one added by its endpoints shows the redirect URI to register at it, and its button on the
    sign-in page; removed, the button goes."""
    operator = person(frontdesk, "operator")
    enter_console(page, frontdesk, operator)
    page.get_by_role("link", name="Sign-in providers").click()
    assert_labelled(page)
    name = "corp-" + secrets.token_hex(3)
    page.get_by_label("Short name (lowercase, used in its URLs)").fill(name)
    page.get_by_label("Name on its button").fill("Corp Login")
    page.get_by_label("Client ID at the provider").fill("frontdesk")
    page.get_by_label("Client secret at the provider").fill(secrets.token_urlsafe(24))
    page.get_by_label("Authorization endpoint", exact=True).fill("https://idp.corp.example/authorize")
    page.get_by_label("Token endpoint", exact=True).fill("https://idp.corp.example/token")
    page.get_by_label("UserInfo endpoint (who signed in)").fill("https://idp.corp.example/userinfo")
    page.get_by_role("button", name="Add the provider").click()
    expect(page.get_by_role("status")).to_contain_text("The provider is added")
    card = page.locator("section.card", has=page.get_by_role("heading", name="Corp Login"))
    expect(card).to_contain_text(f"{frontdesk.issuer}/upstream/{name}/callback")
    shoot(page, screenshots, "upstreams")
    card.get_by_role("button", name="Remove Corp Login").click()
    expect(page.get_by_role("status")).to_contain_text("The provider is removed")
    expect(page.get_by_role("heading", name="Corp Login")).to_have_count(0)
    assert watched == []
