"""An ``offline_access`` the client is not registered for is dropped, not an error (OpenID Connect Core §11 lets the
server ignore it; MCP clients send it whether or not they registered it): no refresh token, no line on the consent
page, and every other unregistered scope still ``invalid_scope``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import Browser, Registered, pkce, query
from frontdesk.core import Frontdesk
from frontdesk.oauth.authorization import dropped_offline_access
from frontdesk.oauth.registration import register
from frontdesk.protocol.scope import OIDC_SCOPES

REDIRECT = "https://tools.example/cb"
KEEP_ACCESS = OIDC_SCOPES["offline_access"]  # the consent page's words for it


@pytest.fixture
def online_only(fd: Frontdesk) -> Registered:
    """A public client with the refresh grant but not registered for offline_access (as an MCP client may be)."""
    client, _ = register(
        fd,
        name="Online Only",
        client_id="online-only",
        auth_method="none",
        redirect_uris=[REDIRECT],
        grant_types=["authorization_code", "refresh_token"],
        scope="openid profile",
    )
    return Registered(client.client_id, None, REDIRECT)


def _params(client: Registered, scope: str, challenge: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": scope,
        "state": "s1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }


async def _redeem(http: httpx.AsyncClient, client: Registered, code: str, verifier: str) -> dict[str, Any]:
    response = await http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "client_id": client.client_id,
            "code": code,
            "redirect_uri": client.redirect_uri,
            "code_verifier": verifier,
        },
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_unregistered_offline_access_is_dropped_end_to_end(http, browser: Browser, online_only):
    """``openid offline_access`` from a client without offline_access: a code, then tokens with no refresh token
    and a granted scope without offline_access."""
    verifier, challenge = pkce()
    response = await browser.authorize(**_params(online_only, "openid offline_access", challenge))
    assert response.status_code == 303, response.text
    answer = query(response.headers["location"])
    assert response.headers["location"].startswith(REDIRECT + "?")
    assert "error" not in answer, answer
    body = await _redeem(http, online_only, answer["code"], verifier)
    assert "refresh_token" not in body
    assert body["scope"] == "openid"
    assert "id_token" in body
    assert "access_token" in body


async def test_unregistered_offline_access_is_not_on_the_consent_page(browser: Browser, online_only):
    """The person is asked only for what the client can get: the consent page does not list offline access."""
    _, challenge = pkce()
    page = await browser.authorize(consent=None, **_params(online_only, "openid profile offline_access", challenge))
    assert page.status_code == 200, page.text
    assert 'value="allow"' in page.text
    assert OIDC_SCOPES["profile"] in page.text
    assert KEEP_ACCESS not in page.text


async def test_unregistered_offline_access_needs_no_new_consent(browser: Browser, online_only):
    """A person who already allowed ``openid`` is not asked again when the client adds an offline_access it cannot
    have: the code comes at once."""
    _, challenge = pkce()
    first = await browser.authorize(**_params(online_only, "openid", challenge))
    assert "code" in query(first.headers["location"])
    again = await browser.follow(
        await browser.http.get("/authorize", params=_params(online_only, "openid offline_access", challenge))
    )
    assert again.status_code == 303, again.text
    assert "code" in query(again.headers["location"])


async def test_other_unregistered_scope_is_still_invalid_scope(browser: Browser, online_only):
    """Only offline_access is forgiven: another scope the client is not registered for is an invalid_scope error
    redirect naming that scope."""
    _, challenge = pkce()
    response = await browser.authorize(**_params(online_only, "openid offline_access calendar.read", challenge))
    assert response.status_code == 303, response.text
    answer = query(response.headers["location"])
    assert answer["error"] == "invalid_scope"
    assert answer["state"] == "s1"
    assert "calendar.read" in answer["error_description"]
    assert "offline_access" not in answer["error_description"]


def test_dropped_offline_access_keeps_a_registered_one(fd: Frontdesk, confidential: Registered, online_only):
    """The rule as a function: dropped only for a client not registered for it, the other scopes kept in order."""
    registered = fd.clients.get(confidential.client_id)
    unregistered = fd.clients.get(online_only.client_id)
    assert registered is not None
    assert unregistered is not None
    asked = ("openid", "offline_access", "profile")
    assert dropped_offline_access(registered, asked) == asked
    assert dropped_offline_access(unregistered, asked) == ("openid", "profile")
    assert dropped_offline_access(unregistered, ("openid", "profile")) == ("openid", "profile")
