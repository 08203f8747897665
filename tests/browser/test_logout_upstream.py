"""Signing out and signing in with another provider, in headless Chromium against ``frontdesk serve``: the client's
back-channel logout endpoint (a local HTTP server) receives the logout token; node-oidc-provider stands upstream."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from playwright.sync_api import Page, expect

from peers.oidc_provider import Op, OpAccount, OpClient, running_op
from servers import loopback

from .conftest import Account, Server, Site

pytestmark = pytest.mark.browser

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
DELIVERY_TIMEOUT = 20.0  # seconds for the server's outbox task to deliver (it is woken at once; it polls every 5)
OP_SECRET = "frontdesk-at-the-op-" + secrets.token_urlsafe(24)
UPSTREAM_PERSON = OpAccount("sam", "sam@example.org", "sam's upstream password", name="Sam Upstream")


@dataclass
class Receiver:
    """The client's back-channel logout endpoint: every form POST it gets, as parsed fields."""

    port: int = 0
    posts: list[dict[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/backchannel-logout"

    def wait_for(self, count: int) -> list[dict[str, str]]:
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        while len(self.posts) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.posts


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            state.posts.append({k: v[0] for k, v in parse_qs(body).items()} | {"_path": self.path})
            self.send_response(200)
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with loopback(Handler) as port:
        state.port = port
        yield state


@pytest.fixture(scope="module")
def rp(frontdesk: Server, site: Site, receiver: Receiver, calendar_scope: str) -> dict[str, Any]:
    """A public client registered for RP-Initiated and Back-Channel Logout."""
    site.pages["/bye"] = "<!doctype html><title>Signed out of the app</title><h1>Signed out of the app</h1>"
    return frontdesk.cli(
        "client", "create", "--name", "Calendar Helper", "--public",
        "--redirect-uri", "http://127.0.0.1/cb", "--grant-type", "authorization_code",
        "--scope", f"openid profile {calendar_scope}",
        "--post-logout-redirect-uri", f"{site.origin}/bye",
        "--backchannel-logout-uri", receiver.url, "--backchannel-logout-session-required",
    )  # fmt: skip


@pytest.fixture(scope="module")
def op(frontdesk: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Op]:
    """node-oidc-provider upstream, with frontdesk registered at it and added with ``frontdesk upstream add``."""
    client = OpClient("frontdesk", OP_SECRET, [f"{frontdesk.issuer}/upstream/example/callback"])
    with running_op(tmp_path_factory.mktemp("op"), clients=[client], accounts=[UPSTREAM_PERSON]) as running:
        frontdesk.cli(
            "upstream", "add", "example", "--discovery-url", running.issuer, "--client-id", "frontdesk",
            "--client-secret-stdin", "--display-name", "Example ID", stdin=OP_SECRET + "\n",
        )  # fmt: skip
        yield running


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def authorization_url(frontdesk: Server, client: dict[str, Any], site: Site, challenge: str) -> str:
    query = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": f"{site.origin}/cb",
        "scope": "openid profile calendar.read",
        "state": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return f"{frontdesk.issuer}/authorize?{urlencode(query)}"


def redeem(frontdesk: Server, client: dict[str, Any], site: Site, url: str, verifier: str) -> dict[str, Any]:
    code = parse_qs(urlsplit(url).query)["code"][0]
    response = httpx.post(
        f"{frontdesk.issuer}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": f"{site.origin}/cb",
            "client_id": client["client_id"],
            "code_verifier": verifier,
        },
        timeout=10.0,
    )
    assert response.status_code == 200, response.text
    return response.json()


def sign_in_and_allow(page: Page, frontdesk: Server, client: dict[str, Any], site: Site, account: Account) -> str:
    """Through the sign-in and consent pages; returns the ID token of the code that came back."""
    verifier, challenge = pkce()
    page.goto(authorization_url(frontdesk, client, site, challenge))
    page.get_by_label("Username").fill(account.username)
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{site.origin}/cb?**")
    return str(redeem(frontdesk, client, site, page.url, verifier)["id_token"])


def claims(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return data


def asks_to_sign_in(page: Page, frontdesk: Server, client: dict[str, Any], site: Site) -> bool:
    page.goto(authorization_url(frontdesk, client, site, pkce()[1]))
    page.wait_for_load_state()
    return page.url.endswith("/login")


def test_sign_out_from_the_client_reaches_it_over_the_back_channel(
    page, frontdesk, rp, site, account, receiver, screenshots: Path
):
    """The client sends the browser to end_session_endpoint with its ID token: the browser lands back at the
    registered URI with state, the session is gone, and the client's back-channel endpoint receives a logout token
    for that very session."""
    id_token = sign_in_and_allow(page, frontdesk, rp, site, account)
    before = len(receiver.posts)
    end_session = frontdesk.metadata()["end_session_endpoint"]
    query = {"id_token_hint": id_token, "post_logout_redirect_uri": f"{site.origin}/bye", "state": "see-you"}
    page.goto(f"{end_session}?{urlencode(query)}")
    page.wait_for_url(f"{site.origin}/bye?state=see-you")
    expect(page.get_by_role("heading", name="Signed out of the app")).to_be_visible()
    page.screenshot(path=str(screenshots / "logout-back-at-client.png"), full_page=True)

    posts = receiver.wait_for(before + 1)
    assert len(posts) == before + 1, "no logout token reached the back-channel endpoint"
    post = posts[-1]
    assert post["_path"] == "/backchannel-logout"
    keys = KeySet.import_key_set(httpx.get(f"{frontdesk.issuer}/jwks", timeout=10.0).json())
    token = jwt.decode(post["logout_token"], keys, algorithms=["RS256"])
    assert token.header["typ"] == "logout+jwt"
    id_claims = claims(id_token)
    assert token.claims["sid"] == id_claims["sid"]
    assert token.claims["sub"] == id_claims["sub"]
    assert token.claims["aud"] == rp["client_id"]
    assert token.claims["iss"] == frontdesk.issuer
    assert token.claims["events"] == {BACKCHANNEL_EVENT: {}}
    assert "nonce" not in token.claims
    assert asks_to_sign_in(page, frontdesk, rp, site)


def test_sign_out_without_a_hint_asks_first(page, frontdesk, rp, site, account, receiver, screenshots: Path):
    """A sign-out link without the ID token could come from anyone: the person is asked, and only their click
    signs them out."""
    sign_in_and_allow(page, frontdesk, rp, site, account)
    before = len(receiver.posts)
    query = {"client_id": rp["client_id"], "post_logout_redirect_uri": f"{site.origin}/bye"}
    page.goto(f"{frontdesk.issuer}/logout?{urlencode(query)}")
    expect(page.get_by_role("heading", name="Sign out?")).to_be_visible()
    expect(page.locator("main")).to_contain_text(f"sign out of frontdesk as {account.username}")
    expect(page.locator("main")).to_contain_text("Calendar Helper asked to sign you out.")
    page.screenshot(path=str(screenshots / "logout-confirm.png"), full_page=True)
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{site.origin}/bye")
    assert len(receiver.wait_for(before + 1)) == before + 1
    assert asks_to_sign_in(page, frontdesk, rp, site)


def test_sign_in_with_an_upstream_provider(page, frontdesk, rp, site, op, screenshots: Path):
    """The sign-in page offers "Continue with Example ID"; after signing in there, the person is back at
    frontdesk's consent page, and the client's ID token says amr fed."""
    verifier, challenge = pkce()
    page.goto(authorization_url(frontdesk, rp, site, challenge))
    button = page.get_by_role("button", name="Continue with Example ID")
    expect(button).to_be_visible()
    page.screenshot(path=str(screenshots / "sign-in-with-upstream.png"), full_page=True)
    button.click()
    page.wait_for_url(f"{op.issuer}/**")
    page.get_by_label("Email or account id").fill(UPSTREAM_PERSON.id)
    page.get_by_label("Password").fill(UPSTREAM_PERSON.password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{frontdesk.issuer}/interaction/*/consent")
    expect(page.get_by_role("heading", name="Allow access?")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Signed in as example-sam.")
    page.screenshot(path=str(screenshots / "upstream-consent.png"), full_page=True)
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{site.origin}/cb?**")
    id_token = redeem(frontdesk, rp, site, page.url, verifier)["id_token"]
    assert claims(id_token)["amr"] == ["fed"]
