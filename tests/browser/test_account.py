"""The account pages in real headless Chromium (issue 5, item 8), against frontdesk served at http://localhost:PORT
(Chromium refuses WebAuthn on an IP origin): revoking an app, passkeys with Chromium's virtual authenticator, the
authenticator app (codes computed with pyotp from the key on the page), signing out everywhere; a screenshot of each
page for a person to look at."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pyotp
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from conftest import _backends
from servers import Server, serving

from .conftest import CALENDAR_READ, Account, Site

pytestmark = pytest.mark.browser

MFA_ACR = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"


@pytest.fixture(scope="module", params=_backends())
def frontdesk(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """frontdesk at http://localhost:PORT: WebAuthn needs a host name, and localhost is a secure context."""
    with serving(request.param, tmp_path_factory.mktemp("frontdesk"), issuer_host="localhost") as server:
        yield server


@pytest.fixture(scope="module")
def app_client(frontdesk: Server, calendar_scope: str) -> dict[str, Any]:
    """A public PKCE client that may refresh: what a person connects and later revokes."""
    return frontdesk.cli(
        "client",
        "create",
        "--name",
        "Calendar Helper",
        "--public",
        "--redirect-uri",
        "http://127.0.0.1/cb",
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
        "--scope",
        f"openid profile offline_access {calendar_scope}",
    )


@pytest.fixture
def watched(page: Page, frontdesk: Server) -> list[str]:
    """frontdesk's console errors and warnings in the page: a CSP violation or a script error would show here
    (the stand-in client site's are not frontdesk's, nor the pages answered with a 4xx on purpose)."""
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
    page.screenshot(path=str(screenshots / f"account-{name}.png"), full_page=True)


def params_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


class Authorization:
    """One authorization request of the app client (PKCE S256), returning to the local site."""

    def __init__(self, frontdesk: Server, client: dict[str, Any], site: Site, scope: str, **extra: str) -> None:
        self.verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(self.verifier.encode()).digest()).rstrip(b"=").decode()
        self.redirect_uri = f"{site.origin}/cb"
        self.client_id = client["client_id"]
        self.token_url = f"{frontdesk.issuer}/token"
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": scope,
            "state": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **extra,
        }
        self.url = f"{frontdesk.issuer}/authorize?{urlencode(query)}"

    def redeem(self, page: Page) -> dict[str, Any]:
        """The tokens for the code the browser carried back to the client."""
        page.wait_for_url(f"{self.redirect_uri}?**")
        data = {
            "grant_type": "authorization_code",
            "code": params_of(page.url)["code"],
            "client_id": self.client_id,
            "code_verifier": self.verifier,
        }
        response = httpx.post(self.token_url, data=data, timeout=10.0)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def sign_in(page: Page, account: Account) -> None:
    page.get_by_label("Username").fill(account.username)
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def open_account(page: Page, frontdesk: Server, account: Account, path: str = "/account") -> None:
    """Open an account page; not signed in, that is the sign-in page first, then back."""
    page.goto(frontdesk.issuer + path)
    page.wait_for_url("**/interaction/*/login")
    sign_in(page, account)
    page.wait_for_url(frontdesk.issuer + path)


def allow(page: Page) -> None:
    page.get_by_role("button", name="Allow").click()


def assert_labelled(page: Page) -> None:
    """Every visible form field has a label (or an aria-label) a screen reader can announce."""
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
              .filter((e) => e.offsetParent !== null && !e.labels.length && !e.getAttribute('aria-label'))
              .map((e) => e.name)"""
    )
    assert unlabelled == [], unlabelled


def assert_fits(page: Page) -> None:
    """Nothing on the page is wider than the window (no sideways scrolling)."""
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


# --- connected apps ---------------------------------------------------------------------------------------------


def test_revoking_an_app_on_the_account_page_ends_its_refresh(
    page, frontdesk, app_client, site, account, screenshots, watched
):
    """Sign in, allow the app, then revoke it on the account page: the app's next refresh is invalid_grant."""
    request = Authorization(frontdesk, app_client, site, "openid profile offline_access calendar.read")
    page.goto(request.url)
    sign_in(page, account)
    page.wait_for_url("**/interaction/*/consent")
    allow(page)
    tokens = request.redeem(page)
    assert tokens["refresh_token"]

    page.goto(f"{frontdesk.issuer}/account")
    expect(page.get_by_role("heading", name="Profile")).to_be_visible()
    expect(page.get_by_role("navigation", name="Account").get_by_role("link", name="Profile")).to_have_attribute(
        "aria-current", "page"
    )
    expect(page.locator("main")).to_contain_text("Pat Example")
    assert_labelled(page)
    shoot(page, screenshots, "profile")

    page.get_by_role("link", name="Connected apps").click()
    card = page.locator("section.card", has_text="Calendar Helper")
    expect(card.get_by_role("heading", name="Calendar Helper")).to_be_visible()
    expect(card).to_contain_text("Sends you back to 127.0.0.1")
    expect(card.get_by_role("listitem")).to_have_text(
        ["See your name and username", "Keep access when you are not using it", CALENDAR_READ]
    )
    expect(card).to_contain_text("Last used just now")
    shoot(page, screenshots, "apps")

    card.get_by_role("button", name="Revoke access of Calendar Helper").click()
    expect(page.get_by_role("status")).to_have_text("Calendar Helper can no longer use your account.")
    expect(page.locator("main")).to_contain_text("You have not allowed any app to use your account.")
    shoot(page, screenshots, "apps-revoked")

    data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": request.client_id}
    refreshed = httpx.post(request.token_url, data=data, timeout=10.0)
    assert refreshed.status_code == 400, refreshed.text
    assert refreshed.json()["error"] == "invalid_grant"

    page.get_by_role("link", name="Activity").click()
    expect(page.locator("main")).to_contain_text("You revoked the access of Calendar Helper")
    expect(page.locator("main")).to_contain_text("You allowed Calendar Helper to use your account")
    shoot(page, screenshots, "activity")
    assert watched == []


# --- passkeys ---------------------------------------------------------------------------------------------------


def virtual_authenticator(page: Page) -> Any:
    """Chromium's virtual authenticator (CDP WebAuthn domain): a platform passkey that verifies the person."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    options = {
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": True,
        "hasUserVerification": True,
        "isUserVerified": True,
        "automaticPresenceSimulation": True,
    }
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})
    return cdp


def test_passkey_added_on_the_account_page_signs_in_without_a_password(
    page, frontdesk, app_client, site, account, screenshots, watched
):
    """A passkey added on the Security page signs in on the sign-in page with no username or password; the ID token
    says hwk and mfa, with the multi-factor acr."""
    virtual_authenticator(page)
    open_account(page, frontdesk, account, "/account/security")
    expect(page.get_by_role("heading", name="Passkeys")).to_be_visible()
    expect(page.get_by_text("Adding a passkey needs a browser")).to_be_hidden()
    page.get_by_label("Name for the new passkey (optional)").fill("Test laptop")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_role("status")).to_have_text(
        "Your passkey is added. Next time you sign in, choose “Use a passkey”."
    )
    expect(page.locator(".items")).to_contain_text("Test laptop")
    assert_labelled(page)
    shoot(page, screenshots, "security-passkey-added")

    page.get_by_label("Rename “Test laptop”").fill("Work laptop")
    page.get_by_role("button", name="Save name").click()
    expect(page.get_by_role("status")).to_have_text("The passkey is renamed.")
    expect(page.locator(".items")).to_contain_text("Work laptop")

    page.context.clear_cookies()
    request = Authorization(frontdesk, app_client, site, "openid profile")
    page.goto(request.url)
    page.wait_for_url("**/interaction/*/login")
    shoot(page, screenshots, "sign-in-with-passkey-option")
    page.get_by_role("button", name="Use a passkey").click()
    page.wait_for_url("**/interaction/*/consent")
    allow(page)
    claims = claims_of(request.redeem(page)["id_token"])
    assert claims["amr"] == ["hwk", "mfa"]
    assert claims["acr"] == MFA_ACR
    assert watched == []


def test_the_password_form_works_without_javascript(chromium: Browser, frontdesk, web_client, site, account):
    """With JavaScript off the passkey button stays hidden and the password signs in as before."""
    context = chromium.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(Authorization(frontdesk, web_client, site, "openid profile").url)
        expect(page.get_by_role("button", name="Use a passkey")).to_be_hidden()
        sign_in(page, account)
        page.wait_for_url("**/interaction/*/consent")
    finally:
        context.close()


# --- the authenticator app --------------------------------------------------------------------------------------


def test_authenticator_app_enrolment_then_sign_in_with_a_code(
    page, frontdesk, web_client, site, account, screenshots, watched
):
    """Turn on the second step (QR code, key, first code, recovery codes), then sign in: password, then a code."""
    open_account(page, frontdesk, account, "/account/security")
    page.get_by_role("link", name="Set up an authenticator app").click()
    expect(page.get_by_role("heading", name="Set up an authenticator app")).to_be_visible()
    expect(page.locator("svg.qr title")).to_have_text("QR code for your authenticator app")
    secret = page.locator("code.secret").inner_text().replace(" ", "")
    assert len(secret) == 32
    assert_labelled(page)
    shoot(page, screenshots, "enrol-authenticator-app")

    page.get_by_label("Type the 6-digit code the app shows").fill("000000")
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("alert")).to_contain_text("That code is not right.")
    shoot(page, screenshots, "enrol-wrong-code")

    page.get_by_label("Type the 6-digit code the app shows").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("heading", name="Save your recovery codes")).to_be_visible()
    codes = page.locator("ul.codes code").all_inner_texts()
    assert len(codes) == 10
    shoot(page, screenshots, "recovery-codes")
    page.get_by_role("link", name="I have saved them, continue").click()
    expect(page.locator("main")).to_contain_text("10 recovery codes left.")
    shoot(page, screenshots, "security-second-step-on")

    page.context.clear_cookies()
    request = Authorization(frontdesk, web_client, site, "openid profile")
    page.goto(request.url)
    sign_in(page, account)
    page.wait_for_url("**/interaction/*/second-factor")
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    expect(page.get_by_label("Code", exact=True)).to_be_focused()
    assert_labelled(page)
    shoot(page, screenshots, "sign-in-code")
    # The code of the next step: the one that confirmed the enrolment is used up (RFC 6238 §5.2).
    page.get_by_label("Code", exact=True).fill(pyotp.TOTP(secret).at(int(time.time()) + 30))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/interaction/*/consent")
    allow(page)
    claims = claims_of(request.redeem(page)["id_token"])
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert watched == []


def test_a_recovery_code_is_offered_behind_a_disclosure(page, frontdesk, account, screenshots):
    """The code step keeps the recovery code form behind "Lost your phone?", reachable by keyboard."""
    open_account(page, frontdesk, account, "/account/second-factor")
    secret = page.locator("code.secret").inner_text().replace(" ", "")
    page.get_by_label("Type the 6-digit code the app shows").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on").click()
    codes = page.locator("ul.codes code").all_inner_texts()
    page.context.clear_cookies()
    page.goto(f"{frontdesk.issuer}/account/activity")
    sign_in(page, account)
    page.wait_for_url("**/second-factor")
    expect(page.get_by_label("Recovery code")).to_be_hidden()
    page.get_by_text("Lost your phone? Use a recovery code").focus()
    page.keyboard.press("Enter")
    page.get_by_label("Recovery code").fill(codes[0])
    shoot(page, screenshots, "sign-in-recovery-code")
    page.get_by_label("Recovery code").press("Enter")
    page.wait_for_url(f"{frontdesk.issuer}/account/activity")
    expect(page.locator("main")).to_contain_text("A recovery code was used to sign in")
    expect(page.locator("main")).to_contain_text("Signed in with your password and a one-time code")


# --- sessions ---------------------------------------------------------------------------------------------------


def test_sign_out_everywhere(chromium: Browser, page, frontdesk, account, screenshots, watched):
    """Two browsers signed in; signing out everywhere from one leaves both asked to sign in again."""
    other = chromium.new_context(viewport={"width": 800, "height": 640})
    try:
        second = other.new_page()
        open_account(second, frontdesk, account)
        open_account(page, frontdesk, account, "/account/sessions")
        expect(page.locator("section.card")).to_have_count(3)  # two browsers, and "sign out everywhere"
        expect(page.locator("main")).to_contain_text("This browser")
        expect(page.locator("main")).to_contain_text("Chrome (headless)")
        shoot(page, screenshots, "sessions")
        page.get_by_role("button", name="Sign out everywhere").click()
        expect(page.get_by_role("heading", name="Signed out")).to_be_visible()
        expect(page.locator("main")).to_contain_text("You are signed out of every browser, this one too.")
        shoot(page, screenshots, "signed-out")
        for each in (page, second):
            each.goto(f"{frontdesk.issuer}/account")
            each.wait_for_url("**/interaction/*/login")
    finally:
        other.close()
    assert watched == []


def test_account_pages_on_a_phone(page, frontdesk, account, screenshots):
    """On a phone-sized window the account pages stack the menu above the content and never scroll sideways."""
    page.set_viewport_size({"width": 390, "height": 844})
    open_account(page, frontdesk, account, "/account/security")
    for path, name in (("/account", "profile"), ("/account/sessions", "sessions"), ("/account/security", "security")):
        page.goto(frontdesk.issuer + path)
        assert_fits(page)
        shoot(page, screenshots, f"phone-{name}")


def test_password_change_errors_are_plain_words(page, frontdesk, account, screenshots):
    """A wrong current password is explained on the page, next to the form."""
    open_account(page, frontdesk, account, "/account/security")
    page.get_by_label("Current password").fill("not the password")
    page.get_by_label("New password", exact=True).fill("a fresh long passphrase")
    page.get_by_label("New password again").fill("a fresh long passphrase")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("alert")).to_have_text("Your current password is not right.")
    shoot(page, screenshots, "security-wrong-password")
