"""``http://localhost[:port]/path`` redirect URIs over HTTP, as MCP clients use them: a native public client
registers one (by dynamic registration or by the operator), then signs the person in on whatever port it listens on
that time (RFC 8252 §7.3). ``localhost`` is matched as ``localhost`` only: never an IP literal in its place, never
a lookalike, and never for a confidential client (RFC 9700 §2.6)."""

from __future__ import annotations

import pytest

from conftest import Browser, Registered, pkce, query, remember
from frontdesk.core import Frontdesk
from frontdesk.oauth.registration import ClientError, register

REGISTERED = "http://localhost:6274/oauth/callback"


@pytest.fixture
def native(fd: Frontdesk) -> Registered:
    """A native public client registered by the operator with a localhost redirect URI (as MCP Inspector's)."""
    client, _ = register(
        fd,
        name="MCP Inspector",
        client_id="mcp-inspector",
        auth_method="none",
        redirect_uris=[REGISTERED],
        grant_types=["authorization_code", "refresh_token"],
        scope="openid profile offline_access",
    )
    return Registered(client.client_id, None, REGISTERED)


def _params(client_id: str, redirect_uri: str, challenge: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid",
        "state": "s1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }


async def _sign_in_and_redeem(http, browser: Browser, client_id: str, redirect_uri: str) -> dict[str, str]:
    """The code flow through the real pages to ``redirect_uri``, then the code redeemed there; the token response."""
    verifier, challenge = pkce()
    response = await browser.authorize(**_params(client_id, redirect_uri, challenge))
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(redirect_uri + "?"), location
    code = query(location)["code"]
    tokens = await http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "client_id": client_id,
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
    )
    assert tokens.status_code == 200, tokens.text
    return dict(tokens.json())


async def test_self_registered_localhost_client_signs_in_on_another_port(http, browser: Browser, secrets_seen):
    """An MCP client registers ``http://localhost:3000/callback`` by RFC 7591, then listens on port 53682 this time:
    the code goes to that port, and redeems there."""
    registered = await http.post(
        "/register",
        json={
            "client_name": "An MCP client",
            "application_type": "native",
            "token_endpoint_auth_method": "none",
            "redirect_uris": ["http://localhost:3000/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
        },
    )
    assert registered.status_code == 201, registered.text
    body = registered.json()
    remember(secrets_seen, body.get("registration_access_token"))
    assert body["redirect_uris"] == ["http://localhost:3000/callback"]
    tokens = await _sign_in_and_redeem(http, browser, body["client_id"], "http://localhost:53682/callback")
    assert tokens["access_token"]


@pytest.mark.parametrize("port", ["", ":6274", ":1", ":53682", ":65535"])
async def test_localhost_port_may_vary(http, browser: Browser, native, port):
    """RFC 8252 §7.3 for localhost: the registered port, another, or none at all; the code goes to the URI asked."""
    tokens = await _sign_in_and_redeem(http, browser, native.client_id, f"http://localhost{port}/oauth/callback")
    assert tokens["access_token"]


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:6274/oauth/callback",
        "http://127.0.0.1:53682/oauth/callback",
        "http://[::1]:53682/oauth/callback",
        "http://LOCALHOST:53682/oauth/callback",
        "http://localhost.:53682/oauth/callback",
        "http://app.localhost:53682/oauth/callback",
        "http://localhost.evil.example:53682/oauth/callback",
        "http://user@localhost:53682/oauth/callback",
        "http://localhost:53682@evil.example/oauth/callback",
        "http://localhost:53682/oauth/callback2",
        "http://localhost:53682/oauth/callback?x=1",
        "https://localhost:53682/oauth/callback",
        "http://localhost:99999/oauth/callback",
    ],
)
async def test_localhost_lookalikes_get_no_redirect(http, browser: Browser, native, redirect_uri):
    """Only the port varies: an IP literal, another spelling of the host, user information, another path or scheme
    is an error page, never a redirect (RFC 9700 §4.1.3); the registered localhost URI on another port works."""
    _, challenge = pkce()
    response = await http.get("/authorize", params=_params(native.client_id, redirect_uri, challenge))
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    tokens = await _sign_in_and_redeem(http, browser, native.client_id, "http://localhost:40000/oauth/callback")
    assert tokens["access_token"]


async def test_localhost_is_for_public_clients_and_native_registrations(http, fd: Frontdesk, secrets_seen):
    """A confidential web client may not register a localhost redirect URI (loopback http is for native apps, RFC 9700
    §2.6), by the operator or by RFC 7591. A native app that registers itself may, even with the secret this server
    issues it (RFC 8252 §8.5: an instance-specific secret; the MCP Python SDK registers so); a public one may."""
    with pytest.raises(ClientError) as refused:
        register(fd, name="Web", redirect_uris=["http://localhost:3000/cb"], grant_types=["authorization_code"])
    assert refused.value.error == "invalid_redirect_uri"
    web = await http.post(
        "/register",
        json={"token_endpoint_auth_method": "client_secret_basic", "redirect_uris": ["http://localhost:3000/cb"]},
    )
    assert web.status_code == 400, web.text
    assert web.json()["error"] == "invalid_redirect_uri"
    native = await http.post(
        "/register",
        json={
            "application_type": "native",
            "token_endpoint_auth_method": "client_secret_basic",
            "redirect_uris": ["http://localhost:3000/cb"],
        },
    )
    assert native.status_code == 201, native.text
    remember(secrets_seen, native.json()["client_secret"], native.json()["registration_access_token"])
    public, _ = register(
        fd,
        name="Native",
        auth_method="none",
        redirect_uris=["http://localhost:3000/cb"],
        grant_types=["authorization_code"],
    )
    assert public.redirect_uris == ("http://localhost:3000/cb",)
