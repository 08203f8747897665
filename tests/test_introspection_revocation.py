"""Introspection (RFC 7662), revocation (RFC 7009) and UserInfo (OIDC Core §5.3) over HTTP."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from conftest import ISSUER, Browser, Registered, basic, code_for
from frontdesk.config import Lifetimes
from frontdesk.oauth.registration import register

SCOPE = "openid profile offline_access calendar.read"


async def tokens_for(
    http: httpx.AsyncClient, browser: Browser, client: Registered, scope: str = SCOPE, **extra: str
) -> dict[str, Any]:
    """Run the code flow through the real forms and redeem the code (Basic, or client_id for a public client)."""
    code, verifier = await code_for(browser, client, scope=scope, **extra)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": client.redirect_uri,
        "code_verifier": verifier,
    }
    if client.secret is None:
        response = await http.post("/token", data={**data, "client_id": client.client_id})
    else:
        response = await http.post("/token", auth=basic(client), data=data)
    assert response.status_code == 200, response.text
    return response.json()


async def introspect(http: httpx.AsyncClient, client: Registered, token: str) -> dict[str, Any]:
    response = await http.post("/introspect", auth=basic(client), data={"token": token})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()


async def revoke(http: httpx.AsyncClient, client: Registered, token: str, **extra: str) -> httpx.Response:
    return await http.post("/revoke", auth=basic(client), data={"token": token, **extra})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- introspection -------------------------------------------------------------------------------------------------


async def test_introspect_active_access_token(http, browser, confidential):
    """An active access token introspects with active, scope, client_id, sub, exp, iat, iss, aud and token_type."""
    body = await tokens_for(http, browser, confidential)
    info = await introspect(http, confidential, body["access_token"])
    assert info["active"] is True
    assert info["scope"] == SCOPE
    assert info["client_id"] == confidential.client_id
    assert info["sub"]
    assert info["iss"] == ISSUER
    assert info["aud"] == ISSUER
    assert info["token_type"] == "Bearer"
    assert isinstance(info["exp"], int)
    assert isinstance(info["iat"], int)
    assert info["exp"] - info["iat"] == body["expires_in"]


async def test_introspect_active_refresh_token(http, browser, confidential):
    """An active refresh token introspects with token_type refresh_token and the grant's scope and subject."""
    body = await tokens_for(http, browser, confidential)
    info = await introspect(http, confidential, body["refresh_token"])
    access = await introspect(http, confidential, body["access_token"])
    assert info["active"] is True
    assert info["token_type"] == "refresh_token"
    assert info["client_id"] == confidential.client_id
    assert info["scope"] == SCOPE
    assert info["sub"] == access["sub"]
    assert info["iss"] == ISSUER


async def test_introspect_unknown_token(http, confidential):
    """An unknown token introspects as exactly {"active": false}."""
    assert await introspect(http, confidential, "not-a-token") == {"active": False}
    assert await introspect(http, confidential, "fd_rt_" + "A" * 43) == {"active": False}
    assert await introspect(http, confidential, "a.b.c") == {"active": False}


async def test_other_client_sees_access_token_inactive(http, browser, confidential, second):
    """C2 introspecting C's access token is told only active:false."""
    body = await tokens_for(http, browser, confidential)
    assert await introspect(http, second, body["access_token"]) == {"active": False}


async def test_other_client_sees_refresh_token_inactive(http, browser, confidential, second):
    """C2 introspecting C's refresh token is told only active:false."""
    body = await tokens_for(http, browser, confidential)
    assert await introspect(http, second, body["refresh_token"]) == {"active": False}


@pytest.fixture
def server(fd) -> Registered:
    """A resource server: a confidential client registered as serving https://rs1.example."""
    rs, secret = register(
        fd,
        name="Resource server 1",
        client_id="rs1",
        redirect_uris=[],
        grant_types=["client_credentials"],
        scope="calendar.read",
        resources=["https://rs1.example"],
    )
    return Registered(rs.client_id, secret, "")


async def test_resource_server_introspects_tokens_addressed_to_it(
    http, server, browser, confidential, resource_servers
):
    """A client registered for resource https://rs1.example may introspect access tokens addressed to it."""
    body = await tokens_for(http, browser, confidential, resource="https://rs1.example")
    info = await introspect(http, server, body["access_token"])
    assert info["active"] is True
    assert info["aud"] == "https://rs1.example"
    assert info["client_id"] == confidential.client_id


async def test_resource_server_does_not_see_tokens_for_others(http, server, browser, confidential, resource_servers):
    """A client registered for https://rs1.example is told active:false for a token addressed elsewhere."""
    body = await tokens_for(http, browser, confidential, resource="https://rs2.example")
    assert await introspect(http, server, body["access_token"]) == {"active": False}


async def test_public_client_cannot_introspect(http, browser, public):
    """A public client calling the introspection endpoint is refused with 401 invalid_client."""
    body = await tokens_for(http, browser, public)
    response = await http.post("/introspect", data={"client_id": public.client_id, "token": body["access_token"]})
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"


async def test_introspection_without_token_is_invalid_request(http, confidential):
    """An introspection request without a token parameter is refused with invalid_request."""
    response = await http.post("/introspect", auth=basic(confidential), data={})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"


# --- revocation ----------------------------------------------------------------------------------------------------


async def test_revoked_access_token_is_inactive(http, browser, confidential):
    """A revoked access token introspects as inactive."""
    body = await tokens_for(http, browser, confidential)
    response = await revoke(http, confidential, body["access_token"], token_type_hint="access_token")
    assert response.status_code == 200, response.text
    assert await introspect(http, confidential, body["access_token"]) == {"active": False}


async def test_revoked_access_token_is_refused_at_userinfo(http, browser, confidential):
    """UserInfo refuses a revoked access token with 401 invalid_token."""
    body = await tokens_for(http, browser, confidential)
    assert (await http.get("/userinfo", headers=bearer(body["access_token"]))).status_code == 200
    assert (await revoke(http, confidential, body["access_token"])).status_code == 200
    response = await http.get("/userinfo", headers=bearer(body["access_token"]))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_revoking_access_token_keeps_refresh_token(http, browser, confidential):
    """Revoking an access token leaves the refresh token of the same grant usable."""
    body = await tokens_for(http, browser, confidential)
    assert (await revoke(http, confidential, body["access_token"])).status_code == 200
    refreshed = await http.post(
        "/token", auth=basic(confidential), data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text


async def test_revoked_refresh_token_cannot_refresh(http, browser, confidential):
    """A revoked refresh token is refused at the token endpoint with invalid_grant."""
    body = await tokens_for(http, browser, confidential)
    assert (await revoke(http, confidential, body["refresh_token"], token_type_hint="refresh_token")).status_code == 200
    refreshed = await http.post(
        "/token", auth=basic(confidential), data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    )
    assert refreshed.status_code == 400, refreshed.text
    assert refreshed.json()["error"] == "invalid_grant"


async def test_revoking_refresh_token_revokes_the_family(http, browser, confidential):
    """Revoking a refresh token makes the access token of its grant inactive, at introspection and UserInfo."""
    body = await tokens_for(http, browser, confidential)
    assert (await revoke(http, confidential, body["refresh_token"])).status_code == 200
    assert await introspect(http, confidential, body["refresh_token"]) == {"active": False}
    assert await introspect(http, confidential, body["access_token"]) == {"active": False}
    assert (await http.get("/userinfo", headers=bearer(body["access_token"]))).status_code == 401


async def test_revoking_unknown_token_is_200(http, confidential):
    """Revoking a token the server does not know answers 200."""
    for token in ("not-a-token", "fd_rt_" + "A" * 43, "a.b.c"):
        response = await revoke(http, confidential, token)
        assert response.status_code == 200, response.text


async def test_revoking_another_clients_access_token_is_200_and_harmless(http, browser, confidential, second):
    """C2 revoking C's access token gets 200 and the token stays active."""
    body = await tokens_for(http, browser, confidential)
    assert (await revoke(http, second, body["access_token"])).status_code == 200
    assert (await introspect(http, confidential, body["access_token"]))["active"] is True


async def test_revoking_another_clients_refresh_token_is_200_and_harmless(http, browser, confidential, second):
    """C2 revoking C's refresh token gets 200 and the token stays active."""
    body = await tokens_for(http, browser, confidential)
    assert (await revoke(http, second, body["refresh_token"])).status_code == 200
    assert (await introspect(http, confidential, body["refresh_token"]))["active"] is True


async def test_revocation_needs_client_authentication(http, browser, confidential):
    """Revocation with a wrong client secret is refused with 401 invalid_client and the token stays active."""
    body = await tokens_for(http, browser, confidential)
    response = await http.post(
        "/revoke", auth=(confidential.client_id, "fd_cs_" + "x" * 43), data={"token": body["access_token"]}
    )
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert (await introspect(http, confidential, body["access_token"]))["active"] is True


# --- UserInfo ------------------------------------------------------------------------------------------------------


async def test_userinfo_get_with_bearer_header(http, browser, confidential):
    """GET /userinfo with a Bearer header returns the person's claims."""
    body = await tokens_for(http, browser, confidential)
    response = await http.get("/userinfo", headers=bearer(body["access_token"]))
    assert response.status_code == 200, response.text
    assert response.json()["preferred_username"] == "alice"
    assert response.json()["sub"] == (await introspect(http, confidential, body["access_token"]))["sub"]


async def test_userinfo_post_with_bearer_header(http, browser, confidential):
    """POST /userinfo with a Bearer header returns the person's claims."""
    body = await tokens_for(http, browser, confidential)
    response = await http.post("/userinfo", headers=bearer(body["access_token"]))
    assert response.status_code == 200, response.text
    assert response.json()["preferred_username"] == "alice"


async def test_userinfo_bearer_scheme_is_case_insensitive(http, browser, confidential):
    """The Bearer scheme name is matched case-insensitively."""
    body = await tokens_for(http, browser, confidential)
    response = await http.get("/userinfo", headers={"Authorization": f"bearer {body['access_token']}"})
    assert response.status_code == 200, response.text


async def test_userinfo_without_token_is_401_with_challenge(http):
    """UserInfo without a token answers 401 with a bare WWW-Authenticate: Bearer challenge."""
    response = await http.get("/userinfo")
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer")
    assert "error=" not in challenge


async def test_userinfo_token_in_query_string_is_refused(http, browser, confidential):
    """An access token sent only in the query string is not accepted: 401."""
    body = await tokens_for(http, browser, confidential)
    response = await http.get("/userinfo", params={"access_token": body["access_token"]})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_userinfo_token_in_form_body_is_refused(http, browser, confidential):
    """An access token sent only in a form body is not accepted: 401."""
    body = await tokens_for(http, browser, confidential)
    response = await http.post("/userinfo", data={"access_token": body["access_token"]})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_userinfo_profile_scope_releases_names(http, browser, confidential):
    """With profile, UserInfo releases preferred_username and name, and no email without the email scope."""
    body = await tokens_for(http, browser, confidential, scope="openid profile")
    claims = (await http.get("/userinfo", headers=bearer(body["access_token"]))).json()
    assert claims["preferred_username"] == "alice"
    assert claims["name"] == "Alice Example"
    assert "email" not in claims


async def test_userinfo_email_scope_releases_email(http, browser, confidential):
    """With email and without profile, UserInfo releases email and no names."""
    body = await tokens_for(http, browser, confidential, scope="openid email")
    claims = (await http.get("/userinfo", headers=bearer(body["access_token"]))).json()
    assert claims["email"] == "alice@example.com"
    assert "preferred_username" not in claims
    assert "name" not in claims


async def test_userinfo_without_openid_scope_is_403(http, browser, confidential):
    """An access token without the openid scope gets 403 insufficient_scope at UserInfo."""
    body = await tokens_for(http, browser, confidential, scope="calendar.read")
    response = await http.get("/userinfo", headers=bearer(body["access_token"]))
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


async def test_id_token_is_not_an_access_token(http, browser, confidential):
    """An ID token presented as a bearer token is refused at UserInfo and introspects as inactive."""
    body = await tokens_for(http, browser, confidential)
    response = await http.get("/userinfo", headers=bearer(body["id_token"]))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert await introspect(http, confidential, body["id_token"]) == {"active": False}


async def test_tampered_access_token_is_refused(http, browser, confidential):
    """An access token whose payload was altered is refused at UserInfo and introspects as inactive."""
    body = await tokens_for(http, browser, confidential)
    header, payload, signature = body["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] += " email"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    forged = f"{header}.{forged_payload}.{signature}"
    assert (await http.get("/userinfo", headers=bearer(forged))).status_code == 401
    assert await introspect(http, confidential, forged) == {"active": False}


async def test_unsigned_access_token_is_refused(http, browser, confidential):
    """An access token re-sent with alg none and no signature is refused at UserInfo."""
    body = await tokens_for(http, browser, confidential)
    _, payload, _ = body["access_token"].split(".")
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"at+jwt"}').rstrip(b"=").decode()
    response = await http.get("/userinfo", headers=bearer(f"{none_header}.{payload}."))
    assert response.status_code == 401


@pytest.mark.parametrize("lifetimes", [Lifetimes(access_token=1)], ids=["access-token-ttl-1s"])
async def test_expired_access_token_is_inactive(http, browser, confidential, lifetimes, clock):
    """An access token past its exp introspects as inactive and is refused at UserInfo."""
    body = await tokens_for(http, browser, confidential)
    assert body["expires_in"] == 1
    clock.advance(2.1)
    assert await introspect(http, confidential, body["access_token"]) == {"active": False}
    assert (await http.get("/userinfo", headers=bearer(body["access_token"]))).status_code == 401
