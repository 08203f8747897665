"""The token endpoint over HTTP: code exchange, client authentication, request parsing and what tokens carry."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import import_key

from conftest import ISSUER, Browser, Registered, basic, code_for, pkce
from frontdesk.config import Lifetimes
from frontdesk.core import Frontdesk
from frontdesk.oauth.registration import register
from frontdesk.storage.db import now, transaction
from frontdesk.storage.grants import insert_grant, insert_refresh
from frontdesk.web.resource import INTROSPECTION, REVOCATION
from frontdesk.web.token import CLIENT_AUTHENTICATION, TOKEN

URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")


async def redeem(
    http: httpx.AsyncClient,
    client: Registered,
    code: str,
    verifier: str | None,
    *,
    by: Registered | None = None,
    **extra: Any,
):
    """POST an authorization_code exchange of ``client``'s code, with Basic authentication as ``by`` (default: the
    client itself)."""
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": client.redirect_uri}
    if verifier is not None:
        data["code_verifier"] = verifier
    data.update(extra)  # an extra parameter given as None is left out
    return await http.post("/token", auth=basic(by or client), data={k: v for k, v in data.items() if v is not None})


async def tokens_for(http: httpx.AsyncClient, browser: Browser, client: Registered, **extra: str) -> dict[str, Any]:
    """Run the code flow through the real forms and redeem the code."""
    code, verifier = await code_for(browser, client, **extra)
    response = await redeem(http, client, code, verifier)
    assert response.status_code == 200, response.text
    return response.json()


def header_of(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


async def verified_claims(http: httpx.AsyncClient, token: str) -> dict[str, Any]:
    """Verify a JWT against the published JWKS and return its claims."""
    header = header_of(token)
    keys = (await http.get("/jwks")).json()["keys"]
    jwk = next(k for k in keys if k["kid"] == header["kid"])
    return dict(jwt.decode(token, import_key(jwk), algorithms=[header["alg"]]).claims)


def assert_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error, response.text


async def introspect(http: httpx.AsyncClient, client: Registered, token: str) -> dict[str, Any]:
    response = await http.post("/introspect", auth=basic(client), data={"token": token})
    assert response.status_code == 200, response.text
    return response.json()


# --- PKCE at the token endpoint ---------------------------------------------------------------------------------


async def test_missing_code_verifier_is_invalid_grant(http, browser, confidential):
    """A code redeemed without its code_verifier is refused with invalid_grant."""
    code, _ = await code_for(browser, confidential)
    assert_error(await redeem(http, confidential, code, None), 400, "invalid_grant")


async def test_wrong_code_verifier_is_invalid_grant(http, browser, confidential):
    """A code redeemed with a well-formed but wrong code_verifier is refused with invalid_grant."""
    code, _ = await code_for(browser, confidential)
    wrong, _ = pkce()
    assert_error(await redeem(http, confidential, code, wrong), 400, "invalid_grant")


async def test_code_verifier_of_another_flow_is_invalid_grant(http, browser, confidential):
    """The code_verifier of another authorization request does not redeem this code."""
    code, _ = await code_for(browser, confidential)
    _, other_verifier = await code_for(browser, confidential)
    assert_error(await redeem(http, confidential, code, other_verifier), 400, "invalid_grant")


# --- single use and binding of codes ------------------------------------------------------------------------------


async def test_second_redemption_is_invalid_grant(http, browser, confidential):
    """A code redeemed a second time is refused with invalid_grant."""
    code, verifier = await code_for(browser, confidential)
    assert (await redeem(http, confidential, code, verifier)).status_code == 200
    assert_error(await redeem(http, confidential, code, verifier), 400, "invalid_grant")


async def test_second_redemption_revokes_access_token(http, browser, confidential):
    """A valid replay of a code makes the access token issued from it introspect as inactive."""
    code, verifier = await code_for(browser, confidential)
    first = (await redeem(http, confidential, code, verifier)).json()
    assert (await introspect(http, confidential, first["access_token"]))["active"] is True
    assert_error(await redeem(http, confidential, code, verifier), 400, "invalid_grant")
    assert await introspect(http, confidential, first["access_token"]) == {"active": False}


async def test_second_redemption_revokes_userinfo_access(http, browser, confidential):
    """After a valid replay of a code, UserInfo refuses the first access token with 401."""
    code, verifier = await code_for(browser, confidential)
    first = (await redeem(http, confidential, code, verifier)).json()
    bearer = {"Authorization": f"Bearer {first['access_token']}"}
    assert (await http.get("/userinfo", headers=bearer)).status_code == 200
    assert_error(await redeem(http, confidential, code, verifier), 400, "invalid_grant")
    info = await http.get("/userinfo", headers=bearer)
    assert info.status_code == 401
    assert 'error="invalid_token"' in info.headers["www-authenticate"]


async def test_second_redemption_revokes_refresh_token(http, browser, confidential):
    """After a valid replay of a code, the refresh token issued from it is refused with invalid_grant."""
    code, verifier = await code_for(browser, confidential)
    first = (await redeem(http, confidential, code, verifier)).json()
    assert_error(await redeem(http, confidential, code, verifier), 400, "invalid_grant")
    refreshed = await http.post(
        "/token",
        auth=basic(confidential),
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )
    assert_error(refreshed, 400, "invalid_grant")


async def test_replay_with_wrong_verifier_does_not_revoke(http, browser, confidential):
    """A replay that fails PKCE is refused but leaves the tokens of the first redemption active."""
    code, verifier = await code_for(browser, confidential)
    first = (await redeem(http, confidential, code, verifier)).json()
    wrong, _ = pkce()
    assert_error(await redeem(http, confidential, code, wrong), 400, "invalid_grant")
    assert (await introspect(http, confidential, first["access_token"]))["active"] is True
    refreshed = await http.post(
        "/token",
        auth=basic(confidential),
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )
    assert refreshed.status_code == 200, refreshed.text


async def test_code_of_another_client_is_invalid_grant(http, browser, confidential, second):
    """OIDC-04: C's code redeemed by an authenticated C2 is refused with invalid_grant."""
    code, verifier = await code_for(browser, confidential)
    assert_error(await redeem(http, confidential, code, verifier, by=second), 400, "invalid_grant")
    assert (await redeem(http, confidential, code, verifier)).status_code == 200


async def test_code_without_client_authentication_is_invalid_client(http, browser, confidential):
    """A confidential client's code redeemed with only its client_id is refused with 401 invalid_client."""
    code, verifier = await code_for(browser, confidential)
    response = await http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "client_id": confidential.client_id,
            "code": code,
            "redirect_uri": confidential.redirect_uri,
            "code_verifier": verifier,
        },
    )
    assert_error(response, 401, "invalid_client")


@pytest.mark.parametrize("lifetimes", [Lifetimes(code=1)], ids=["code-ttl-1s"])
async def test_expired_code_is_invalid_grant(http, browser, confidential, lifetimes, clock):
    """A code redeemed after its lifetime is refused with invalid_grant."""
    code, verifier = await code_for(browser, confidential)
    clock.advance(2.1)
    assert_error(await redeem(http, confidential, code, verifier), 400, "invalid_grant")


async def test_redirect_uri_mismatch_is_invalid_grant(http, browser, confidential):
    """OIDC-04: a redirect_uri differing from the authorization request's is refused with invalid_grant."""
    code, verifier = await code_for(browser, confidential)
    response = await redeem(http, confidential, code, verifier, redirect_uri="https://app.example/other")
    assert_error(response, 400, "invalid_grant")


async def test_redirect_uri_may_be_omitted(http, browser, confidential):
    """A code redeemed without redirect_uri, by a client with one registered redirect URI, gives tokens."""
    code, verifier = await code_for(browser, confidential)
    response = await http.post(
        "/token",
        auth=basic(confidential),
        data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier},
    )
    assert response.status_code == 200, response.text


async def test_public_clients_code_redeemed_by_another_client_is_invalid_grant(http, browser, public, second):
    """A public client's code redeemed by an authenticated C2 is refused with invalid_grant."""
    code, verifier = await code_for(browser, public)
    assert_error(await redeem(http, public, code, verifier, by=second), 400, "invalid_grant")


# --- grant types and request parsing ------------------------------------------------------------------------------


async def test_password_grant_is_unsupported(http, confidential, person):
    """grant_type=password, even with valid credentials, is refused with unsupported_grant_type."""
    username, password = person
    response = await http.post(
        "/token",
        auth=basic(confidential),
        data={"grant_type": "password", "username": username, "password": password, "scope": "openid"},
    )
    assert_error(response, 400, "unsupported_grant_type")


@pytest.mark.parametrize("grant_type", ["implicit", "token"])
async def test_implicit_grant_is_unsupported(http, confidential, grant_type):
    """grant_type=implicit or token is refused with unsupported_grant_type."""
    response = await http.post("/token", auth=basic(confidential), data={"grant_type": grant_type})
    assert_error(response, 400, "unsupported_grant_type")


async def test_grant_not_registered_is_unauthorized_client(http, confidential):
    """A supported grant the client did not register for is refused with unauthorized_client."""
    response = await http.post(
        "/token",
        auth=basic(confidential),
        data={"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": "fd_dc_whatever"},
    )
    assert_error(response, 400, "unauthorized_client")


async def test_missing_grant_type_is_invalid_request(http, confidential):
    """A token request without grant_type is refused with invalid_request."""
    response = await http.post("/token", auth=basic(confidential), data={"scope": "calendar.read"})
    assert_error(response, 400, "invalid_request")


async def test_json_body_is_invalid_request(http, confidential):
    """A token request with a JSON body instead of a form is refused with 400 invalid_request."""
    response = await http.post("/token", auth=basic(confidential), json={"grant_type": "client_credentials"})
    assert_error(response, 400, "invalid_request")


async def test_duplicated_parameter_is_invalid_request(http, confidential):
    """A parameter sent twice is refused with 400 invalid_request."""
    response = await http.post(
        "/token",
        auth=basic(confidential),
        content=b"grant_type=client_credentials&scope=calendar.read&scope=calendar.read",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_error(response, 400, "invalid_request")


async def test_body_over_64_kib_is_413(http, confidential):
    """A token request body larger than 64 KiB is refused with 413."""
    body = b"grant_type=client_credentials&pad=" + b"a" * (64 * 1024)
    response = await http.post(
        "/token",
        auth=basic(confidential),
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "invalid_request"


async def test_streamed_body_over_64_kib_is_413(http, confidential):
    """A body over 64 KiB sent without Content-Length (chunked) is refused with 413 too."""

    async def chunks():
        yield b"grant_type=client_credentials&pad="
        for _ in range(17):
            yield b"a" * 4096

    response = await http.post(
        "/token",
        auth=basic(confidential),
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413, response.text


# --- client authentication ----------------------------------------------------------------------------------------


async def test_wrong_basic_secret_is_invalid_client_with_challenge(http, confidential):
    """A wrong secret in the Basic header gives 401 invalid_client with a WWW-Authenticate: Basic challenge."""
    response = await http.post(
        "/token", auth=(confidential.client_id, "fd_cs_" + "x" * 43), data={"grant_type": "client_credentials"}
    )
    assert_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].lower().startswith("basic")


async def test_wrong_post_secret_is_invalid_client(http, fd):
    """A wrong client_secret in the body of a client_secret_post client gives 401 invalid_client."""
    client, secret = register(
        fd,
        name="Poster",
        client_id="post-client",
        auth_method="client_secret_post",
        redirect_uris=[],
        grant_types=["client_credentials"],
        scope="calendar.read",
    )
    ok = await http.post(
        "/token", data={"grant_type": "client_credentials", "client_id": client.client_id, "client_secret": secret}
    )
    assert ok.status_code == 200, ok.text
    response = await http.post(
        "/token",
        data={"grant_type": "client_credentials", "client_id": client.client_id, "client_secret": "fd_cs_" + "x" * 43},
    )
    assert_error(response, 401, "invalid_client")


async def test_basic_and_post_together_is_invalid_request(http, confidential):
    """Basic and client_secret_post in one request are refused with 400 invalid_request."""
    response = await http.post(
        "/token",
        auth=basic(confidential),
        data={
            "grant_type": "client_credentials",
            "client_id": confidential.client_id,
            "client_secret": confidential.secret,
        },
    )
    assert_error(response, 400, "invalid_request")


# --- responses and tokens -----------------------------------------------------------------------------------------


async def test_token_responses_are_not_cached(http, browser, confidential):
    """OIDC-04: successful and failed token responses both carry Cache-Control: no-store."""
    code, verifier = await code_for(browser, confidential)
    ok = await redeem(http, confidential, code, verifier)
    failed = await redeem(http, confidential, code, verifier)
    assert ok.status_code == 200
    assert failed.status_code == 400
    for response in (ok, failed):
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["content-type"].startswith("application/json")


async def test_access_token_is_rfc9068_jwt(http, browser, confidential):
    """The access token is a JWT with typ at+jwt, kid, ES256 and the RFC 9068 claims."""
    body = await tokens_for(http, browser, confidential)
    header = header_of(body["access_token"])
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    assert header["kid"]
    claims = await verified_claims(http, body["access_token"])
    assert {"iss", "sub", "aud", "client_id", "scope", "exp", "iat", "jti"} <= set(claims)
    assert claims["iss"] == ISSUER
    assert claims["client_id"] == confidential.client_id
    assert claims["scope"] == "openid profile offline_access"
    assert claims["exp"] - claims["iat"] == body["expires_in"]


async def test_access_token_audience_is_the_issuer_by_default(http, browser, confidential):
    """Without a resource indicator the access token is addressed to the issuer (UserInfo)."""
    body = await tokens_for(http, browser, confidential)
    assert (await verified_claims(http, body["access_token"]))["aud"] == ISSUER


async def test_access_token_audience_is_the_requested_resource(http, browser, confidential, resource_servers):
    """With resource=https://rs1.example at authorize, the access token's aud is that resource."""
    body = await tokens_for(http, browser, confidential, resource="https://rs1.example")
    assert (await verified_claims(http, body["access_token"]))["aud"] == "https://rs1.example"


async def test_token_for_another_resource_is_refused_at_userinfo(http, browser, confidential, resource_servers):
    """UserInfo refuses with 401 invalid_token an access token addressed to another resource."""
    body = await tokens_for(http, browser, confidential, resource="https://rs1.example")
    response = await http.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_id_token_claims(http, browser, confidential):
    """OIDC-02: the ID token is RS256 with nonce, auth_time, a correct at_hash, acr, amr and aud=client_id."""
    body = await tokens_for(http, browser, confidential, nonce="n-0S6_WzA2Mj")
    header = header_of(body["id_token"])
    assert header["alg"] == "RS256"
    claims = await verified_claims(http, body["id_token"])
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["aud"] == confidential.client_id
    assert claims["iss"] == ISSUER
    assert isinstance(claims["auth_time"], int)
    assert claims["auth_time"] <= claims["iat"]
    assert claims["acr"]
    assert claims["amr"] == ["pwd"]
    left = hashlib.sha256(body["access_token"].encode("ascii")).digest()[:16]
    assert claims["at_hash"] == base64.urlsafe_b64encode(left).rstrip(b"=").decode()
    assert claims["sub"] == (await verified_claims(http, body["access_token"]))["sub"]


async def test_no_id_token_without_openid(http, browser, confidential):
    """OIDC-01 (Core §3.1.2.1): without openid in the scope the request is plain OAuth 2.0, and no ID token is
    issued, nor is UserInfo open to its access token."""
    body = await tokens_for(http, browser, confidential, scope="calendar.read")
    assert body["scope"] == "calendar.read"
    assert "id_token" not in body
    refused = await http.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert refused.status_code == 403, refused.text


async def test_userinfo_answers_get_and_post_with_the_id_tokens_sub(http, browser, confidential):
    """OIDC-07 (Core §5.3): UserInfo takes the access token in the Bearer header by GET and by POST, answers JSON
    whose sub is the ID token's, with the profile claims the scope asked for; a bad token is a 401 with a
    challenge (§5.3.3)."""
    body = await tokens_for(http, browser, confidential, scope="openid profile")
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    sub = (await verified_claims(http, body["id_token"]))["sub"]
    for response in (await http.get("/userinfo", headers=bearer), await http.post("/userinfo", headers=bearer)):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        claims = response.json()
        assert claims["sub"] == sub
        assert claims["name"] == "Alice Example"
    bad = await http.get("/userinfo", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401
    assert bad.headers["www-authenticate"].startswith("Bearer")
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]


async def test_no_refresh_token_without_offline_access(http, browser, confidential):
    """An OpenID request without offline_access gets no refresh token."""
    body = await tokens_for(http, browser, confidential, scope="openid profile")
    assert "refresh_token" not in body
    assert "access_token" in body
    assert "id_token" in body


async def test_client_credentials_with_unregistered_scope_is_invalid_scope(http, fd, confidential):
    """client_credentials asking for a known scope the client is not registered for is refused with invalid_scope."""
    fd.create_scope("calendar.write", "Change your calendar")
    response = await http.post(
        "/token", auth=basic(confidential), data={"grant_type": "client_credentials", "scope": "calendar.write"}
    )
    assert_error(response, 400, "invalid_scope")


async def test_client_credentials_with_unknown_scope_is_invalid_scope(http, confidential):
    """client_credentials asking for a scope nobody defined is refused with invalid_scope."""
    response = await http.post(
        "/token", auth=basic(confidential), data={"grant_type": "client_credentials", "scope": "admin"}
    )
    assert_error(response, 400, "invalid_scope")


async def test_client_credentials_with_openid_is_invalid_scope(http, confidential):
    """client_credentials asking for openid is refused with invalid_scope: there is no person."""
    response = await http.post(
        "/token", auth=basic(confidential), data={"grant_type": "client_credentials", "scope": "openid calendar.read"}
    )
    assert_error(response, 400, "invalid_scope")


async def test_client_credentials_issues_access_token_only(http, confidential):
    """client_credentials gives an access token for the client itself, without refresh or ID token."""
    response = await http.post(
        "/token", auth=basic(confidential), data={"grant_type": "client_credentials", "scope": "calendar.read"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "calendar.read"
    assert "refresh_token" not in body
    assert "id_token" not in body
    claims = await verified_claims(http, body["access_token"])
    assert claims["sub"] == confidential.client_id


async def test_generated_client_secret_is_url_safe_and_long(confidential):
    """A generated client secret is URL-safe and at least 43 characters long."""
    assert confidential.secret is not None
    assert URL_SAFE.fullmatch(confidential.secret)
    assert len(confidential.secret) >= 43


async def test_refresh_tokens_are_unique(fd: Frontdesk, confidential):
    """A thousand refresh tokens are distinct, URL-safe and carry at least 256 bits of randomness."""
    at = now()
    with transaction(fd.engine) as conn:
        grant = insert_grant(
            conn,
            client_id=confidential.client_id,
            user_id=None,
            scope=("calendar.read",),
            resource=(),
            auth_time=None,
            amr=(),
            at=at,
            expires_at=at + 3600,
        )
        tokens = [insert_refresh(conn, grant=grant, at=at, idle=3600) for _ in range(1000)]
    assert len(set(tokens)) == 1000
    for token in tokens:
        assert token.startswith("fd_rt_")
        assert URL_SAFE.fullmatch(token)
        assert len(token) - len("fd_rt_") >= 43


def _names(steps) -> list[str]:
    return [step.__name__ for step in steps]


def test_the_token_endpoint_is_a_table_of_named_steps():
    """The token endpoint parses the body, reads the client's credential (and its published keys), checks a DPoP
    proof when one came, then authenticates the client and dispatches the grant in one step, as node-oidc-provider's
    token action reads."""
    assert _names(TOKEN) == [
        "parse_body",
        "present_credentials",
        "fetch_published_keys",
        "check_dpop_proof",
        "issue_tokens",
    ]


def test_every_client_endpoint_starts_with_the_same_client_authentication_steps():
    """Token, introspection and revocation share their first steps: a client is authenticated alike at each."""
    first = _names(CLIENT_AUTHENTICATION)[:3]
    for steps in (TOKEN, INTROSPECTION, REVOCATION):
        assert _names(steps)[:3] == first
    assert _names(REVOCATION) == [*_names(CLIENT_AUTHENTICATION), "require_token"]
