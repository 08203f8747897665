"""OAuth 2.1 (draft-ietf-oauth-v2-1-15): one test per change from RFC 6749 that binds an authorization server,
named after its checklist ID (/work/shared/reference/security-checklist.md §2) and OAuth 2.1 section, with the
checklist's black-box test as its body. Rules RFC 9700 already states are tested in test_rfc9700.py; here they are
tested again from the OAuth 2.1 side where the draft adds to them.

Left out because frontdesk has no such feature: dynamic registration (O21-02 and O21-16 are checked through admin
registration instead) and a page where people or admins list and revoke grants (O21-16, editor's copy -16)."""

from __future__ import annotations

import base64

import pytest

from conftest import ISSUER, Registered, basic, code_for, pkce, remember
from frontdesk.oauth.registration import ClientError, register
from test_authorize import (
    assert_code_redirect,
    assert_error_redirect,
    assert_no_redirect,
    consent_page,
    params_for,
    sign_in,
)
from test_introspection_revocation import bearer, revoke, tokens_for
from test_token import assert_error, redeem

from .test_rfc9700 import SCOPE, metadata_paths, public_client, redeem_public, refresh_as

# --- O21-01 PKCE for the code grant -----------------------------------------------------------------------------


async def test_O21_01_pkce_required_for_code_grant_4_1_1(http, browser, public, confidential):
    """S256 is supported, a request without a challenge is refused, and a code needs its verifier."""
    for path in metadata_paths():
        assert (await http.get(path)).json()["code_challenge_methods_supported"] == ["S256"]
    for client in (public, confidential):
        response = await browser.authorize(**params_for(client, code_challenge=None, code_challenge_method=None))
        assert_error_redirect(response, client.redirect_uri, "invalid_request")
    code, verifier = await code_for(browser, public)
    response = await http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "client_id": public.client_id,
            "code": code,
            "redirect_uri": public.redirect_uri,
        },
    )
    assert_error(response, 400, "invalid_grant")
    assert (await redeem_public(http, public, code, verifier)).status_code == 200


# --- O21-02 redirect URI registration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "public_client_", "accepted"),
    [
        ("myapp:/cb", True, False),
        ("com.example.app:/cb", True, True),
        ("https://app.example/cb#frag", False, False),
        ("https://app.example/cb#", False, False),
        ("/cb", False, False),
        ("https://user@app.example/cb", False, False),
        ("javascript://app.example/%0aalert(1)", False, False),
        ("http://app.example/cb", False, False),
        ("http://127.0.0.1/cb", True, True),
        ("https://app.example/cb", False, True),
    ],
)
def test_O21_02_redirect_uri_registration_rules_2_3_1(fd, uri, public_client_, accepted):
    """Registration takes complete absolute URIs only: no fragment, no relative URI, no dot-less private scheme."""
    kwargs = {"auth_method": "none"} if public_client_ else {}
    if accepted:
        client, _ = register(fd, name="App", redirect_uris=[uri], grant_types=["authorization_code"], **kwargs)
        assert client.redirect_uris == (uri,)
        return
    with pytest.raises(ClientError) as refused:
        register(fd, name="App", redirect_uris=[uri], grant_types=["authorization_code"], **kwargs)
    assert refused.value.error == "invalid_redirect_uri"


async def test_O21_02_registered_uri_is_not_a_pattern_2_3_1(http, fd):
    """A registered URI that looks like a pattern is compared as a plain string: it matches nothing else."""
    client, secret = register(
        fd,
        name="Patterned",
        client_id="patterned",
        redirect_uris=["https://app.example/*"],
        grant_types=["authorization_code"],
        scope="openid",
    )
    registered = Registered(client.client_id, secret, "https://app.example/*")
    for attempt in ("https://app.example/anything", "https://app.example/", "https://app.example/x/*"):
        assert_no_redirect(await http.get("/authorize", params=params_for(registered, redirect_uri=attempt)))


# --- O21-03 implicit and password removed ----------------------------------------------------------------------


async def test_O21_03_implicit_and_password_grants_removed_10(http, browser, confidential, person):
    """response_type=token is unsupported_response_type; password and implicit grants are unsupported_grant_type."""
    response = await browser.authorize(**params_for(confidential, response_type="token"))
    assert_error_redirect(response, confidential.redirect_uri, "unsupported_response_type")
    username, password = person
    for data in (
        {"grant_type": "password", "username": username, "password": password},
        {"grant_type": "implicit"},
        {"grant_type": "token"},
    ):
        assert_error(await http.post("/token", auth=basic(confidential), data=data), 400, "unsupported_grant_type")
    for path in metadata_paths():
        metadata = (await http.get(path)).json()
        assert not {"password", "implicit"} & set(metadata["grant_types_supported"])
        assert "token" not in " ".join(metadata["response_types_supported"]).split()


# --- O21-04 redirect_uri at the token endpoint -----------------------------------------------------------------


async def test_O21_04_redirect_uri_optional_but_enforced_10_2(http, browser, confidential):
    """A code redeems without redirect_uri, with the exact one, but never with a different one."""
    code, verifier = await code_for(browser, confidential)
    without = await redeem(http, confidential, code, verifier, redirect_uri=None)
    assert without.status_code == 200, without.text
    code, verifier = await code_for(browser, confidential)
    assert (await redeem(http, confidential, code, verifier)).status_code == 200
    code, verifier = await code_for(browser, confidential)
    different = await redeem(http, confidential, code, verifier, redirect_uri="https://app.example/cb/")
    assert_error(different, 400, "invalid_grant")


async def test_O21_04_oauth21_client_with_several_uris_omits_redirect_uri_10_2(http, browser, public):
    """A public client with several registered redirect URIs redeems its code without sending redirect_uri."""
    verifier, challenge = pkce()
    loopback = "http://127.0.0.1:51004/cb"
    response = await browser.authorize(**params_for(public, redirect_uri=loopback, code_challenge=challenge))
    code = assert_code_redirect(response, loopback)["code"]
    redeemed = await redeem_public(http, public, code, verifier, with_redirect_uri=False)
    assert redeemed.status_code == 200, redeemed.text


async def test_O21_04_loopback_port_code_redeems_without_redirect_uri_10_2(http, fd, browser):
    """A native client with one loopback URI, answered on an ephemeral port, redeems without sending redirect_uri."""
    native = public_client(fd, "native-app")
    verifier, challenge = pkce()
    loopback = "http://127.0.0.1:49152/cb"
    response = await browser.authorize(**params_for(native, redirect_uri=loopback, code_challenge=challenge))
    code = assert_code_redirect(response, loopback)["code"]
    redeemed = await redeem_public(http, native, code, verifier, with_redirect_uri=False)
    assert redeemed.status_code == 200, redeemed.text


# --- O21-05 parameters -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["client_id", "redirect_uri", "response_type", "state", "scope", "code_challenge"])
async def test_O21_05_repeated_authorization_parameter_3_1(browser, confidential, name):
    """A parameter repeated at /authorize, even with the same value, is an error page and no redirect."""
    await sign_in(browser, confidential)
    params = list(params_for(confidential).items())
    params.append((name, dict(params)[name]))
    assert_no_redirect(await browser.http.get("/authorize", params=params))


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/token", "grant_type=authorization_code&code=a&code=a"),
        ("/token", "grant_type=client_credentials&grant_type=client_credentials"),
        ("/introspect", "token=a&token=a"),
        ("/revoke", "token=a&token=a"),
    ],
)
async def test_O21_05_repeated_token_parameter_3_2(http, confidential, path, body):
    """A parameter repeated at the token, introspection or revocation endpoint is 400 invalid_request."""
    response = await http.post(
        path,
        auth=basic(confidential),
        content=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_error(response, 400, "invalid_request")


async def test_O21_05_empty_parameter_counts_as_omitted_3_1(browser, public):
    """An empty code_challenge from a public client is treated as missing: an invalid_request error redirect."""
    response = await browser.authorize(**params_for(public, code_challenge=""))
    assert_error_redirect(response, public.redirect_uri, "invalid_request")


async def test_O21_05_unknown_parameter_ignored_3_1(http, browser, confidential):
    """Unknown parameters at /authorize and /token are ignored and the flow succeeds."""
    response = await browser.authorize(**params_for(confidential, extra="foobar"))
    code = assert_code_redirect(response, confidential.redirect_uri)["code"]
    assert code
    code, verifier = await code_for(browser, confidential)
    assert (await redeem(http, confidential, code, verifier, extra="foobar")).status_code == 200


# --- O21-06 GET and POST at /authorize -------------------------------------------------------------------------


async def test_O21_06_authorization_endpoint_get_and_post_3_1(http, browser, confidential):
    """Both a GET and a form POST to /authorize complete the flow and yield a redeemable code."""
    code, verifier = await code_for(browser, confidential)  # GET, through sign-in and consent
    assert (await redeem(http, confidential, code, verifier)).status_code == 200
    verifier, challenge = pkce()
    posted = await http.post("/authorize", data=params_for(confidential, code_challenge=challenge))
    code = assert_code_redirect(posted, confidential.redirect_uri)["code"]
    assert (await redeem(http, confidential, code, verifier)).status_code == 200


# --- O21-07, O21-08 client authentication ----------------------------------------------------------------------


async def test_O21_07_client_secret_basic_and_post_accepted_2_4_1(http, fd, confidential, secrets_seen):
    """The server takes client credentials in the Basic header and, for clients registered for it, in the body."""
    metadata = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert {"client_secret_basic", "client_secret_post"} <= set(metadata["token_endpoint_auth_methods_supported"])
    via_header = await http.post("/token", auth=basic(confidential), data={"grant_type": "client_credentials"})
    assert via_header.status_code == 200, via_header.text
    poster, secret = register(
        fd,
        name="Poster",
        client_id="post-client",
        auth_method="client_secret_post",
        redirect_uris=[],
        grant_types=["client_credentials"],
        scope="calendar.read",
    )
    remember(secrets_seen, secret)
    via_body = await http.post(
        "/token", data={"grant_type": "client_credentials", "client_id": poster.client_id, "client_secret": secret}
    )
    assert via_body.status_code == 200, via_body.text


@pytest.mark.parametrize(
    "authorization",
    [
        "wrong-secret",
        "unknown-client",
        "malformed",
        "other-scheme",
    ],
)
async def test_O21_08_basic_failure_is_401_with_challenge_3_2_4(http, confidential, authorization):
    """A failed client authentication through the Authorization header is 401 invalid_client with WWW-Authenticate."""
    header = {
        "wrong-secret": "Basic " + base64.b64encode(f"{confidential.client_id}:fd_cs_{'x' * 43}".encode()).decode(),
        "unknown-client": "Basic " + base64.b64encode(b"nobody:fd_cs_" + b"x" * 43).decode(),
        "malformed": "Basic !!!not-base64!!!",
        "other-scheme": "Digest username=conf-client",
    }[authorization]
    response = await http.post("/token", headers={"Authorization": header}, data={"grant_type": "client_credentials"})
    assert_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].lower().startswith("basic")
    assert "access_token" not in response.json()


async def test_O21_08_body_credentials_failure_is_invalid_client_3_2_4(http, fd, confidential, secrets_seen):
    """A wrong secret in the body, or none at all for a confidential client, is 401 invalid_client as JSON."""
    poster, secret = register(
        fd,
        name="Poster",
        client_id="post-client",
        auth_method="client_secret_post",
        redirect_uris=[],
        grant_types=["client_credentials"],
        scope="calendar.read",
    )
    remember(secrets_seen, secret)
    for data in (
        {"client_id": poster.client_id, "client_secret": "fd_cs_" + "x" * 43},
        {"client_id": confidential.client_id},
    ):
        response = await http.post("/token", data={"grant_type": "client_credentials", **data})
        assert_error(response, 401, "invalid_client")
        assert response.headers["content-type"].startswith("application/json")


# --- O21-09 token response -------------------------------------------------------------------------------------


async def test_O21_09_token_response_members_3_2_3(http, browser, confidential):
    """The token response has access_token, token_type, expires_in and scope, is JSON and is not cached."""
    code, verifier = await code_for(browser, confidential, scope=SCOPE)
    response = await redeem(http, confidential, code, verifier)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["access_token"]
    assert body["token_type"] == "Bearer"
    assert isinstance(body["expires_in"], int)
    assert body["expires_in"] > 0
    assert body["scope"] == SCOPE
    narrowed = await refresh_as(http, confidential, body["refresh_token"], scope="calendar.read")
    assert narrowed.json()["scope"] == "calendar.read"  # REQUIRED when it differs from the request's


# --- O21-10 response_type --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("response_type", "error"), [(None, "invalid_request"), ("foo", "unsupported_response_type")])
async def test_O21_10_missing_or_unknown_response_type_4_1_1(browser, confidential, response_type, error):
    """A missing response_type is invalid_request; an unknown one is unsupported_response_type."""
    response = await browser.authorize(**params_for(confidential, response_type=response_type))
    assert_error_redirect(response, confidential.redirect_uri, error)


# --- O21-11 client_credentials ---------------------------------------------------------------------------------


async def test_O21_11_client_credentials_only_for_confidential_clients_4_2(http, fd, public):
    """A public client asking for client_credentials is unauthorized_client, and cannot even register for it."""
    response = await http.post("/token", data={"grant_type": "client_credentials", "client_id": public.client_id})
    assert_error(response, 400, "unauthorized_client")
    assert "access_token" not in response.json()
    with pytest.raises(ClientError):
        register(fd, name="Public", auth_method="none", redirect_uris=[], grant_types=["client_credentials"])


# --- O21-12 refresh rules --------------------------------------------------------------------------------------


async def test_O21_12_refresh_needs_an_active_grant_4_3_1(http, browser, confidential):
    """Once the grant is revoked (RFC 7009), its refresh token is invalid_grant."""
    body = await tokens_for(http, browser, confidential)
    assert (await revoke(http, confidential, body["refresh_token"])).status_code == 200
    assert_error(await refresh_as(http, confidential, body["refresh_token"]), 400, "invalid_grant")


async def test_O21_12_refresh_cannot_widen_scope_4_3_1(http, browser, confidential):
    """A refresh asking for more than the grant's scope is invalid_scope."""
    body = await tokens_for(http, browser, confidential, scope="openid offline_access")
    assert_error(await refresh_as(http, confidential, body["refresh_token"], scope=SCOPE), 400, "invalid_scope")


# --- O21-13 limited exposure for public clients ----------------------------------------------------------------


async def test_O21_13_public_client_tokens_are_no_longer_lived_2_4(http, browser, public, confidential):
    """A public client's access and refresh tokens live no longer than a confidential client's, and rotate."""
    mine = await tokens_for(http, browser, public)
    theirs = await tokens_for(http, browser, confidential)
    assert mine["expires_in"] <= theirs["expires_in"]
    rotated = await refresh_as(http, public, mine["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["refresh_token"] != mine["refresh_token"]
    assert_error(await refresh_as(http, public, mine["refresh_token"]), 400, "invalid_grant")


# --- O21-14 bearer usage at a resource (UserInfo) --------------------------------------------------------------


async def test_O21_14_bearer_header_rules_5_1_1(http, browser, confidential):
    """Bearer is case-insensitive; no token is a bare challenge; a bad token is 401; too little scope is 403."""
    body = await tokens_for(http, browser, confidential)
    for scheme in ("Bearer", "bearer", "BEARER"):
        ok = await http.get("/userinfo", headers={"Authorization": f"{scheme} {body['access_token']}"})
        assert ok.status_code == 200, scheme
    missing = await http.get("/userinfo")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert "error=" not in missing.headers["www-authenticate"]
    invalid = await http.get("/userinfo", headers=bearer("not.a.token"))
    assert invalid.status_code == 401
    assert 'error="invalid_token"' in invalid.headers["www-authenticate"]
    narrow = await tokens_for(http, browser, confidential, scope="calendar.read")
    insufficient = await http.get("/userinfo", headers=bearer(narrow["access_token"]))
    assert insufficient.status_code == 403
    assert 'error="insufficient_scope"' in insufficient.headers["www-authenticate"]


async def test_O21_14_no_token_in_query_string_5_1(http, browser, confidential):
    """The query-string method is gone: a token only in ?access_token= is a bare 401."""
    body = await tokens_for(http, browser, confidential)
    response = await http.get("/userinfo", params={"access_token": body["access_token"]})
    assert response.status_code == 401
    assert "error=" not in response.headers["www-authenticate"]


# --- O21-15 https everywhere -----------------------------------------------------------------------------------


async def test_O21_15_https_urls_except_loopback_1_5(http, fd):
    """Every advertised URL is https under the issuer; only a native client's loopback redirect may be http."""
    for path in metadata_paths():
        for name, value in (await http.get(path)).json().items():
            if isinstance(value, str) and "://" in value:
                assert value.startswith(ISSUER), (name, value)
    native = public_client(fd, "native-app", redirect_uri="http://[::1]/cb")
    assert native.redirect_uri.startswith("http://")
    with pytest.raises(ClientError):
        register(fd, name="Plain", redirect_uris=["http://app.example/cb"], grant_types=["authorization_code"])


# --- O21-16 consent phishing (editor's copy -16, §7.9) ---------------------------------------------------------


async def test_O21_16_client_limited_to_registered_scopes_7_9(browser, fd, second):
    """A client asking for a scope it is not registered for is invalid_scope, however the person would answer."""
    fd.create_scope("calendar.admin", "Manage everyone's calendars")
    response = await browser.authorize(**params_for(second, scope="openid calendar.admin"))
    assert_error_redirect(response, second.redirect_uri, "invalid_scope")


async def test_O21_16_consent_names_client_and_scopes_7_9(browser, confidential):
    """The consent page names the client and describes each scope asked for in plain words."""
    page = await consent_page(browser, confidential, scope="openid calendar.read")
    assert "<strong>Calendar Helper</strong>" in page.text
    assert "See your calendar events — not change or delete them" in page.text
