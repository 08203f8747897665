"""frontdesk's pages in real headless Chromium: sign-in, consent, the answer to the client, framing, devices."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from .conftest import CALENDAR_READ, DEVICE_CODE, Account, Server, Site

pytestmark = pytest.mark.browser

PROFILE = "See your name and username"  # OIDC_SCOPES["profile"]


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def params_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


class Request:
    """One authorization request (PKCE S256) to the web client, returning to the local site on its own port."""

    def __init__(self, frontdesk: Server, client: dict[str, Any], site: Site) -> None:
        self.verifier, challenge = pkce()
        self.state = secrets.token_urlsafe(12)
        self.redirect_uri = f"{site.origin}/cb"
        self.client_id = client["client_id"]
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid profile calendar.read",
            "state": self.state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        self.url = f"{frontdesk.issuer}/authorize?{urlencode(query)}"


def sign_in(page: Page, account: Account, password: str | None = None) -> None:
    page.get_by_label("Username").fill(account.username)
    page.get_by_label("Password").fill(account.password if password is None else password)
    page.get_by_role("button", name="Sign in").click()


def to_consent(page: Page, request: Request, account: Account) -> None:
    page.goto(request.url)
    sign_in(page, account)
    page.wait_for_url("**/interaction/*/consent")


def session_cookies(page: Page, frontdesk: Server) -> list[str]:
    return [c["name"] for c in page.context.cookies(frontdesk.issuer) if "fd_session" in c["name"]]


def test_authorization_url_shows_sign_in_page(page, frontdesk, web_client, site, screenshots: Path):
    """Opening an authorization URL shows a sign-in page for the client, with labelled fields and a Sign in button."""
    page.goto(Request(frontdesk, web_client, site).url)
    page.wait_for_url(f"{frontdesk.issuer}/interaction/*/login")
    expect(page).to_have_title("Sign in · frontdesk")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_text("to continue to Calendar Helper")).to_be_visible()
    expect(page.get_by_label("Username")).to_be_editable()
    expect(page.get_by_label("Password")).to_have_attribute("type", "password")
    expect(page.get_by_role("button", name="Sign in")).to_be_enabled()
    page.screenshot(path=str(screenshots / "sign-in.png"), full_page=True)


def test_consent_page_names_client_redirect_host_and_scopes(page, frontdesk, web_client, site, account, screenshots):
    """After signing in, the consent page names the client and its redirect host and lists each scope in plain words."""
    to_consent(page, Request(frontdesk, web_client, site), account)
    expect(page.get_by_role("heading", name="Allow access?")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Calendar Helper is asking to:")
    expect(page.get_by_role("listitem")).to_have_text([PROFILE, CALENDAR_READ])
    expect(page.locator("main")).to_contain_text(f"you will be sent to 127.0.0.1:{site.port}")
    expect(page.locator("main")).to_contain_text(f"Signed in as {account.username}.")
    expect(page.locator("main")).not_to_contain_text("calendar.read")
    expect(page.get_by_role("button", name="Allow")).to_be_visible()
    expect(page.get_by_role("button", name="Deny")).to_be_visible()
    page.screenshot(path=str(screenshots / "consent.png"), full_page=True)


def test_allow_lands_on_redirect_uri_with_code_state_and_iss(page, frontdesk, web_client, site, account):
    """Clicking Allow lands on the client's redirect URI with a code, the request's state and the issuer."""
    request = Request(frontdesk, web_client, site)
    to_consent(page, request, account)
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{request.redirect_uri}?**")
    expect(page.get_by_role("heading", name="Back at the app")).to_be_visible()
    answer = params_of(page.url)
    assert set(answer) == {"code", "state", "iss"}, answer
    assert answer["code"]
    assert answer["state"] == request.state
    assert answer["iss"] == frontdesk.issuer
    assert any(hit.startswith("/cb?") and answer["code"] in hit for hit in site.hits)


def test_code_from_browser_redeems_for_tokens(page, frontdesk, web_client, site, account):
    """The code the browser carried back redeems at /token with its PKCE verifier for access and ID tokens."""
    request = Request(frontdesk, web_client, site)
    to_consent(page, request, account)
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{request.redirect_uri}?**")
    response = httpx.post(
        f"{frontdesk.issuer}/token",
        data={
            "grant_type": "authorization_code",
            "code": params_of(page.url)["code"],
            "redirect_uri": request.redirect_uri,
            "client_id": request.client_id,
            "code_verifier": request.verifier,
        },
        timeout=10.0,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["access_token"]
    assert body["id_token"]


def test_deny_lands_with_access_denied_and_iss(page, frontdesk, web_client, site, account):
    """Clicking Deny lands on the redirect URI with error=access_denied, the state and the issuer, and no code."""
    request = Request(frontdesk, web_client, site)
    to_consent(page, request, account)
    page.get_by_role("button", name="Deny").click()
    page.wait_for_url(f"{request.redirect_uri}?**")
    answer = params_of(page.url)
    assert answer["error"] == "access_denied"
    assert answer["iss"] == frontdesk.issuer
    assert answer["state"] == request.state
    assert "code" not in answer


def test_wrong_password_shows_error_and_no_session(page, frontdesk, web_client, site, account, screenshots):
    """A wrong password keeps the person on the sign-in page with "Wrong username or password" and no session."""
    request = Request(frontdesk, web_client, site)
    page.goto(request.url)
    sign_in(page, account, password="not-" + account.password)
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    assert "/interaction/" in page.url
    assert page.url.endswith("/login")
    expect(page.get_by_label("Username")).to_have_value(account.username)
    expect(page.get_by_label("Password")).to_have_value("")
    assert session_cookies(page, frontdesk) == []
    page.screenshot(path=str(screenshots / "sign-in-wrong-password.png"), full_page=True)
    page.goto(request.url)  # still signed out: asked to sign in again
    page.wait_for_url("**/interaction/*/login")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_authorize_page_cannot_be_framed_by_another_origin(page, frontdesk, web_client, site):
    """A page of another origin that frames /authorize gets a blocked frame, never the sign-in form."""
    request = Request(frontdesk, web_client, site)
    site.pages["/framer.html"] = (
        "<!doctype html><title>Framer</title><h1>Another site</h1>"
        f'<iframe id="victim" src="{request.url.replace("&", "&amp;")}" width="600" height="400"></iframe>'
    )
    console: list[str] = []

    def remember(message: ConsoleMessage) -> None:
        console.append(message.text)

    page.on("console", remember)
    with page.expect_response(lambda r: "/interaction/" in r.url and r.url.endswith("/login")) as framed:
        page.goto(f"{site.origin}/framer.html")
    headers = framed.value.all_headers()
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    page.wait_for_load_state("load")
    deadline = time.monotonic() + 5
    while not any("frame-ancestors" in text for text in console) and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert any("frame-ancestors 'none'" in text and "blocked" in text for text in console), console
    frame = page.frame_locator("#victim")
    expect(frame.get_by_label("Password")).to_have_count(0)
    expect(frame.get_by_role("button", name="Sign in")).to_have_count(0)
    child = next(f for f in page.frames if f != page.main_frame)
    assert not child.url.startswith(frontdesk.issuer), child.url


def token_poll(frontdesk: Server, client_id: str, device_code: str) -> httpx.Response:
    return httpx.post(
        f"{frontdesk.issuer}/token",
        data={"grant_type": DEVICE_CODE, "device_code": device_code, "client_id": client_id},
        timeout=10.0,
    )


def test_device_flow_approved_in_browser_yields_tokens(page, frontdesk, device_client, account, screenshots):
    """A device's user code, approved in the browser after sign-in, lets the device's /token polling return tokens."""
    client_id = device_client["client_id"]
    started = httpx.post(
        f"{frontdesk.issuer}/device_authorization",
        data={"client_id": client_id, "scope": "openid profile calendar.read"},
        timeout=10.0,
    )
    assert started.status_code == 200, started.text
    grant = started.json()
    interval = int(grant["interval"])
    first = token_poll(frontdesk, client_id, grant["device_code"])
    last_poll = time.monotonic()
    assert first.status_code == 400, first.text
    assert first.json()["error"] == "authorization_pending"

    page.goto(grant["verification_uri_complete"])
    page.wait_for_url("**/interaction/*/login")
    sign_in(page, account)
    page.wait_for_url(f"{frontdesk.issuer}/device?user_code=*")
    expect(page.get_by_role("heading", name="Connect a device")).to_be_visible()
    expect(page.get_by_label("Code")).to_have_value(grant["user_code"])
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Allow access?")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Living Room TV is asking to:")
    expect(page.get_by_role("listitem")).to_have_text([PROFILE, CALENDAR_READ])
    expect(page.locator("main")).to_contain_text(f"Signed in as {account.username}.")
    page.screenshot(path=str(screenshots / "device-consent.png"), full_page=True)
    page.get_by_role("button", name="Allow").click()
    expect(page.get_by_role("heading", name="Done")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Your device is connected.")

    deadline = time.monotonic() + 30
    while True:
        time.sleep(max(0.0, last_poll + interval - time.monotonic()))  # RFC 8628 §3.5: keep to the interval
        response = token_poll(frontdesk, client_id, grant["device_code"])
        last_poll = time.monotonic()
        if response.status_code == 200 or time.monotonic() > deadline:
            break
        error = response.json().get("error")
        assert error in ("authorization_pending", "slow_down"), response.text
        interval += 5 if error == "slow_down" else 0
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["access_token"]
    assert body["id_token"]
