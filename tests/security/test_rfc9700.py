"""RFC 9700 (OAuth 2.0 Security Best Current Practice): one test per MUST and SHOULD that binds an authorization
server, named after its checklist ID (/work/shared/reference/security-checklist.md §1) and RFC 9700 section, with
the checklist's black-box test as its body.

Left out because frontdesk does not offer what they govern (no skipped tests): BCP-05 (MAY: a fragment appended to
the success redirect), BCP-11 (detecting a reused code_challenge or nonce), BCP-27 and the DPoP half of BCP-19
(sender-constrained tokens), BCP-47 (response_mode=web_message). Parts about dynamic client registration, PAR,
form_post or logout are likewise absent; the tests below check the rest of each item."""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from starlette.routing import Mount, Route

from conftest import ISSUER, Browser, Registered, basic, code_for, csrf_of, pkce, query, remember
from frontdesk.config import ConfigError, Lifetimes, Settings
from frontdesk.core import Frontdesk
from frontdesk.oauth.registration import ClientError, register
from frontdesk.protocol.rfc7523 import ASSERTION_TYPE
from frontdesk.storage.db import now, transaction
from frontdesk.storage.grants import insert_code, insert_grant
from frontdesk.web import create_app
from test_authorize import (
    assert_code_redirect,
    assert_error_redirect,
    assert_interaction,
    assert_no_redirect,
    consent_page,
    form_action,
    login_page,
    params_for,
    sign_in,
)
from test_device import device_page, started
from test_introspection_revocation import bearer, introspect, tokens_for
from test_token import assert_error, redeem, verified_claims

SCOPE = "openid profile offline_access calendar.read"  # what tokens_for consents to
EVIL = "https://evil.example"


# --- shared helpers -------------------------------------------------------------------------------------------------


def metadata_paths() -> tuple[str, str]:
    return ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")


async def refresh_as(http: httpx.AsyncClient, client: Registered, token: str, **extra: str) -> httpx.Response:
    """A refresh_token grant as ``client``: Basic for a confidential client, client_id alone for a public one."""
    data = {"grant_type": "refresh_token", "refresh_token": token, **extra}
    if client.secret is None:
        return await http.post("/token", data={**data, "client_id": client.client_id})
    return await http.post("/token", auth=basic(client), data=data)


async def redeem_public(
    http: httpx.AsyncClient, client: Registered, code: str, verifier: str, *, with_redirect_uri: bool = True
) -> httpx.Response:
    """A public client's code exchange: client_id in the body, no authentication; redirect_uri sent unless told not."""
    data = {"grant_type": "authorization_code", "client_id": client.client_id, "code": code, "code_verifier": verifier}
    if with_redirect_uri:
        data["redirect_uri"] = client.redirect_uri
    return await http.post("/token", data=data)


def payload_of(token: str) -> dict[str, Any]:
    """The claims of a JWT without verifying it (tests that need verification use verified_claims)."""
    segment = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return claims


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def user_id(fd: Frontdesk, username: str) -> str:
    return next(u.id for u in fd.users.list() if u.username == username)


def public_client(fd: Frontdesk, client_id: str, redirect_uri: str = "http://127.0.0.1/cb") -> Registered:
    client, _ = register(
        fd,
        name="Another Desktop App",
        client_id=client_id,
        auth_method="none",
        redirect_uris=[redirect_uri],
        grant_types=["authorization_code", "refresh_token"],
        scope=SCOPE,
    )
    return Registered(client.client_id, None, redirect_uri)


@pytest.fixture
async def other_jar(http: httpx.AsyncClient) -> Any:
    """A second browser: same server and database, its own empty cookie jar."""
    async with httpx.AsyncClient(transport=http._transport, base_url=ISSUER, follow_redirects=False) as client:
        yield client


def from_address(fd: Frontdesk, address: str) -> httpx.AsyncClient:
    """An HTTP client reaching the same server from another network address."""
    transport = httpx.ASGITransport(app=create_app(fd), client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=ISSUER, follow_redirects=False)


def assert_no_redirect_to(response: httpx.Response, host: str) -> None:
    """Neither a 3xx towards ``host`` nor a page that sends the browser there (link, form or meta refresh)."""
    location = response.headers.get("location", "")
    target = urlsplit(urljoin(ISSUER + "/", location))
    assert target.hostname != host, (response.request.url, location)
    assert host not in target.netloc + target.path, (response.request.url, location)
    if response.headers.get("content-type", "").startswith("text/html"):
        linked = re.search(rf'(?:href|src|action|content)="[^"]*{re.escape(host)}', response.text)
        assert linked is None, (response.request.url, linked)


# --- 1.1 Redirect URIs ----------------------------------------------------------------------------------------------

# Each near miss of the registered https://app.example/cb, labelled by the bypass it tries.
REDIRECT_URI_BYPASSES = {
    "path-traversal": "https://app.example/cb/../evil",
    "path-traversal-encoded": "https://app.example/cb%2F..%2Fevil",
    "trailing-slash": "https://app.example/cb/",
    "double-slash": "https://app.example//cb",
    "path-case": "https://app.example/CB",
    "host-case": "https://APP.example/cb",
    "scheme-case": "HTTPS://app.example/cb",
    "extra-query": "https://app.example/cb?x=1",
    "empty-query": "https://app.example/cb?",
    "fragment": "https://app.example/cb#f",
    "default-port": "https://app.example:443/cb",
    "other-port": "https://app.example:8443/cb",
    "percent-encoded-path": "https://app.example/%63b",
    "percent-encoded-host": "https://app%2Eexample/cb",
    "suffix-lookalike": "https://app.example.evil.com/cb",
    "trailing-dot-host": "https://app.example./cb",
    "hyphen-lookalike": "https://app-example.com/cb",
    "homograph-host": "https://аpp.example/cb",  # Cyrillic а
    "userinfo-to-evil": "https://app.example@evil.com/cb",
    "userinfo-from-evil": "https://evil.com@app.example/cb",
    "backslash": "https://app.example\\@evil.com/cb",
    "scheme-downgrade": "http://app.example/cb",
    "scheme-relative": "//app.example/cb",
}


async def test_BCP_01_registered_redirect_uri_gets_code_4_1_3(browser, confidential):
    """Control for BCP-01: the registered redirect URI, byte for byte, receives a code."""
    response = await browser.authorize(**params_for(confidential))
    assert_code_redirect(response, "https://app.example/cb")


@pytest.mark.parametrize("redirect_uri", REDIRECT_URI_BYPASSES.values(), ids=REDIRECT_URI_BYPASSES.keys())
async def test_BCP_01_exact_redirect_uri_match_4_1_3(http, confidential, redirect_uri):
    """A redirect URI that is not the registered one by exact string comparison gets an error page, no redirect."""
    response = await http.get("/authorize", params=params_for(confidential, redirect_uri=redirect_uri))
    assert_no_redirect(response)


@pytest.mark.parametrize("redirect_uri", ["http://127.0.0.1:51004/cb", "http://[::1]:51004/cb", "http://127.0.0.1/cb"])
async def test_BCP_02_loopback_port_may_vary_4_1_3(browser, public, redirect_uri):
    """The port of a native client's loopback redirect URI may vary, and the code goes to that very port."""
    response = await browser.authorize(**params_for(public, redirect_uri=redirect_uri))
    assert_code_redirect(response, redirect_uri)


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:51004/cb2",
        "http://127.0.0.1.evil.com:80/cb",
        "http://127.0.0.1.evil.com/cb",
        "http://[::1]:51004/cb2",
        "http://[::1].evil.com/cb",
        "https://app.example:8443/cb",
        "http://localhost:51004/cb",
        "http://localhost/cb",
        "http://127.0.0.2:51004/cb",
        "https://127.0.0.1:51004/cb",
        "http://127.0.0.1:²/cb",
    ],
)
async def test_BCP_02_only_loopback_port_varies_4_1_3(http, public, redirect_uri):
    """Only the port varies: another path, a lookalike host, localhost or a non-loopback port change is refused."""
    response = await http.get("/authorize", params=params_for(public, redirect_uri=redirect_uri))
    assert_no_redirect(response)


async def test_BCP_03_no_plain_http_redirect_uri_2_6(http, fd, confidential):
    """Registering a plain-http non-loopback redirect URI is invalid_redirect_uri, and using one gets no redirect."""
    with pytest.raises(ClientError) as refused:
        register(fd, name="Plain", redirect_uris=["http://app.example/cb"], grant_types=["authorization_code"])
    assert refused.value.error == "invalid_redirect_uri"
    with pytest.raises(ClientError) as loopback:
        # A loopback http redirect is for native (public) clients only.
        register(fd, name="Web", redirect_uris=["http://127.0.0.1/cb"], grant_types=["authorization_code"])
    assert loopback.value.error == "invalid_redirect_uri"
    response = await http.get("/authorize", params=params_for(confidential, redirect_uri="http://app.example/cb"))
    assert_no_redirect(response)


@pytest.mark.parametrize("case", ["unknown-client", "missing-client", "two-uris-none-named", "unknown-uri"])
async def test_BCP_04_no_redirect_without_trusted_client_and_uri_4_11_2(browser, fd, confidential, case):
    """A missing, unknown or mismatched client_id or redirect_uri gets an error page, even for a signed-in person."""
    two, _ = register(
        fd,
        name="Two Doors",
        client_id="two-uris",
        redirect_uris=["https://app.example/cb", "https://app.example/cb2"],
        grant_types=["authorization_code"],
        scope="openid profile offline_access",
    )
    await sign_in(browser, confidential)
    params = {
        "unknown-client": params_for(confidential, client_id="no-such-client"),
        "missing-client": params_for(confidential, client_id=None),
        "two-uris-none-named": params_for(Registered(two.client_id, None, ""), redirect_uri=None),
        "unknown-uri": params_for(confidential, redirect_uri="https://app.example/elsewhere"),
    }[case]
    assert_no_redirect(await browser.http.get("/authorize", params=params))


# --- 1.2 PKCE -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", metadata_paths())
async def test_BCP_06_pkce_s256_advertised_2_1_1(http, path):
    """The metadata advertises PKCE with S256, and not plain."""
    methods = (await http.get(path)).json()["code_challenge_methods_supported"]
    assert "S256" in methods
    assert "plain" not in methods


async def test_BCP_07_code_verifier_enforced_2_1_1(http, browser, confidential):
    """A code bound to a challenge is refused without a verifier, with a wrong one or another flow's, then works."""
    code, verifier = await code_for(browser, confidential)
    _, other_verifier = await code_for(browser, confidential)
    wrong, _ = pkce()
    assert_error(await redeem(http, confidential, code, None), 400, "invalid_grant")
    assert_error(await redeem(http, confidential, code, wrong), 400, "invalid_grant")
    assert_error(await redeem(http, confidential, code, other_verifier), 400, "invalid_grant")
    assert (await redeem(http, confidential, code, verifier)).status_code == 200


async def test_BCP_08_authorization_without_challenge_refused_4_8_2(browser, confidential):
    """Downgrade, first half: an authorization request without code_challenge issues no code (invalid_request)."""
    response = await browser.authorize(**params_for(confidential, code_challenge=None, code_challenge_method=None))
    assert_error_redirect(response, confidential.redirect_uri, "invalid_request")


async def test_BCP_08_code_verifier_without_challenge_refused_4_8_2(http, fd, person, confidential, secrets_seen):
    """Downgrade, second half: a code bound to no challenge is refused with a code_verifier, and without one."""
    at = now()
    # The endpoint never issues such a code (first half), so it is written straight to the store.
    with transaction(fd.engine) as conn:
        grant = insert_grant(
            conn,
            client_id=confidential.client_id,
            user_id=user_id(fd, person[0]),
            scope=("openid",),
            resource=(),
            auth_time=at,
            amr=("pwd",),
            at=at,
            expires_at=at + 3600,
        )
        codes = [
            insert_code(
                conn,
                grant_id=grant.id,
                client_id=confidential.client_id,
                redirect_uri=confidential.redirect_uri,
                code_challenge="",
                nonce=None,
                expires_at=at + 60,
            )
            for _ in range(2)
        ]
    remember(secrets_seen, *codes)
    verifier, _ = pkce()
    assert_error(await redeem(http, confidential, codes[0], verifier), 400, "invalid_grant")
    assert_error(await redeem(http, confidential, codes[1], None), 400, "invalid_grant")


async def test_BCP_09_public_client_must_use_pkce_2_1_1(browser, public):
    """A public client's request without code_challenge is an invalid_request error redirect with state and iss."""
    response = await browser.authorize(**params_for(public, code_challenge=None, code_challenge_method=None))
    assert_error_redirect(response, public.redirect_uri, "invalid_request")


@pytest.mark.parametrize(
    "overrides",
    [
        {"code_challenge_method": "S512"},
        {"code_challenge_method": "plain"},
        {"code_challenge_method": "s256"},
        {"code_challenge_method": None},
        {"code_challenge": "abc"},
        {"code_challenge": "A" * 129},
        {"code_challenge": "+" * 43},
        {"code_challenge": ""},
    ],
    ids=["S512", "plain", "lowercase-s256", "no-method", "short", "long", "charset", "empty"],
)
async def test_BCP_10_only_s256_challenges_2_1_1(browser, public, overrides):
    """An unsupported method (plain, S512), a missing method or a malformed challenge is invalid_request."""
    response = await browser.authorize(**params_for(public, **overrides))
    assert_error_redirect(response, public.redirect_uri, "invalid_request")


# --- 1.3 Authorization codes ----------------------------------------------------------------------------------------


async def test_BCP_12_code_single_use_4_2_4(http, browser, confidential):
    """A code redeemed a second time is refused with invalid_grant."""
    code, verifier = await code_for(browser, confidential)
    assert (await redeem(http, confidential, code, verifier)).status_code == 200
    assert_error(await redeem(http, confidential, code, verifier), 400, "invalid_grant")


async def test_BCP_13_valid_code_replay_revokes_tokens_4_2_4(http, browser, confidential):
    """Test A: a valid replay of a code revokes the access and refresh tokens issued from it."""
    code, verifier = await code_for(browser, confidential, scope=SCOPE)
    first = (await redeem(http, confidential, code, verifier)).json()
    assert (await http.get("/userinfo", headers=bearer(first["access_token"]))).status_code == 200
    assert_error(await redeem(http, confidential, code, verifier), 400, "invalid_grant")
    assert await introspect(http, confidential, first["access_token"]) == {"active": False}
    info = await http.get("/userinfo", headers=bearer(first["access_token"]))
    assert info.status_code == 401
    assert 'error="invalid_token"' in info.headers["www-authenticate"]
    assert_error(await refresh_as(http, confidential, first["refresh_token"]), 400, "invalid_grant")


async def test_BCP_13_invalid_code_replay_does_not_revoke_4_2_4(http, browser, confidential):
    """Test B: a replay with a wrong code_verifier is refused but revokes nothing (no denial of service)."""
    code, verifier = await code_for(browser, confidential, scope=SCOPE)
    first = (await redeem(http, confidential, code, verifier)).json()
    wrong, _ = pkce()
    assert_error(await redeem(http, confidential, code, wrong), 400, "invalid_grant")
    assert (await introspect(http, confidential, first["access_token"]))["active"] is True
    assert (await refresh_as(http, confidential, first["refresh_token"])).status_code == 200


async def test_BCP_14_code_bound_to_client_4_5(http, browser, public, confidential, second):
    """A public client's code redeemed by C2 is invalid_grant; C's code without client authentication is 401."""
    code, verifier = await code_for(browser, public)
    assert_error(await redeem(http, public, code, verifier, by=second), 400, "invalid_grant")
    c_code, c_verifier = await code_for(browser, confidential)
    unauthenticated = await http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "client_id": confidential.client_id,
            "code": c_code,
            "redirect_uri": confidential.redirect_uri,
            "code_verifier": c_verifier,
        },
    )
    assert_error(unauthenticated, 401, "invalid_client")
    assert (await redeem_public(http, public, code, verifier)).status_code == 200


@pytest.mark.parametrize("lifetimes", [Lifetimes(code=1)], ids=["code-ttl-1s"])
async def test_BCP_15_code_expires_shortly_o21_4_1_2(http, browser, confidential, lifetimes, clock):
    """A code redeemed after its (shortened) lifetime is invalid_grant, and no lifetime over 10 minutes is allowed."""
    code, verifier = await code_for(browser, confidential)
    clock.advance(2.1)
    assert_error(await redeem(http, confidential, code, verifier), 400, "invalid_grant")
    with pytest.raises(ConfigError):
        Settings(issuer=ISSUER, lifetimes=Lifetimes(code=601)).validated()


async def test_BCP_16_code_does_not_expose_challenge_o21_4_1_2(browser, public):
    """The code carries nothing of its code_challenge, in plain or base64url-decoded form."""
    verifier, challenge = pkce()
    response = await browser.authorize(**params_for(public, code_challenge=challenge))
    code = assert_code_redirect(response, public.redirect_uri)["code"]
    assert challenge not in code
    digest = base64.urlsafe_b64decode(challenge + "=")
    for candidate in (code, code.removeprefix("fd_ac_"), *code.split(".")):
        try:
            decoded = base64.urlsafe_b64decode(candidate + "=" * (-len(candidate) % 4))
        except ValueError:
            continue
        assert challenge.encode() not in decoded
        assert digest not in decoded
    assert verifier not in code


# --- 1.4 Deprecated grants ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("response_type", ["token", "code token", "id_token token", "code id_token", "id_token"])
async def test_BCP_17_no_implicit_or_tokens_in_authorization_response_2_1_2(browser, confidential, response_type):
    """response_type token (or any hybrid) is unsupported_response_type, and no token leaves in the redirect."""
    response = await browser.authorize(**params_for(confidential, response_type=response_type))
    assert_error_redirect(response, confidential.redirect_uri, "unsupported_response_type")
    location = response.headers["location"]
    assert "#" not in location
    for name in ("access_token", "id_token", "token_type"):
        assert name not in location
    metadata = (await browser.http.get("/.well-known/openid-configuration")).json()
    assert metadata["response_types_supported"] == ["code"]


async def test_BCP_18_no_password_grant_2_4(http, fd, confidential, person):
    """grant_type=password with valid credentials is unsupported_grant_type, unadvertised and unregistrable."""
    username, password = person
    response = await http.post(
        "/token",
        auth=basic(confidential),
        data={"grant_type": "password", "username": username, "password": password, "scope": "openid"},
    )
    assert_error(response, 400, "unsupported_grant_type")
    assert "access_token" not in response.json()
    for path in metadata_paths():
        assert "password" not in (await http.get(path)).json()["grant_types_supported"]
    with pytest.raises(ClientError) as refused:
        register(fd, name="Legacy", redirect_uris=[], grant_types=["password"])
    assert refused.value.error == "invalid_client_metadata"


# --- 1.5 Refresh tokens ---------------------------------------------------------------------------------------------


async def test_BCP_19_public_refresh_rotation_and_reuse_detection_4_14_2(http, browser, public):
    """A public client's refresh token rotates; reusing the old one revokes the whole family."""
    first = await tokens_for(http, browser, public)
    rotated = await refresh_as(http, public, first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    second_tokens = rotated.json()
    assert second_tokens["refresh_token"] != first["refresh_token"]
    assert (await http.get("/userinfo", headers=bearer(second_tokens["access_token"]))).status_code == 200
    assert_error(await refresh_as(http, public, first["refresh_token"]), 400, "invalid_grant")
    assert_error(await refresh_as(http, public, second_tokens["refresh_token"]), 400, "invalid_grant")
    assert (await http.get("/userinfo", headers=bearer(second_tokens["access_token"]))).status_code == 401


async def test_BCP_19_confidential_refresh_reuse_revokes_family_4_14_2(http, browser, confidential):
    """The same family revocation holds for a confidential client: RT2 and its access token die on RT1's reuse."""
    first = await tokens_for(http, browser, confidential)
    second_tokens = (await refresh_as(http, confidential, first["refresh_token"])).json()
    assert_error(await refresh_as(http, confidential, first["refresh_token"]), 400, "invalid_grant")
    assert_error(await refresh_as(http, confidential, second_tokens["refresh_token"]), 400, "invalid_grant")
    assert await introspect(http, confidential, second_tokens["access_token"]) == {"active": False}


async def test_BCP_20_refresh_token_bound_to_client_4_14_2(http, fd, browser, confidential, second, public):
    """C2 presenting C's refresh token, or another public client presenting P's, is invalid_grant."""
    c_tokens = await tokens_for(http, browser, confidential)
    assert_error(await refresh_as(http, second, c_tokens["refresh_token"]), 400, "invalid_grant")
    p_tokens = await tokens_for(http, browser, public)
    other_public = public_client(fd, "public-two")
    assert_error(await refresh_as(http, other_public, p_tokens["refresh_token"]), 400, "invalid_grant")
    # The owner's tokens were not harmed by another client's attempt.
    assert (await refresh_as(http, confidential, c_tokens["refresh_token"])).status_code == 200
    assert (await refresh_as(http, public, p_tokens["refresh_token"])).status_code == 200


async def test_BCP_21_refresh_token_bound_to_scope_and_resource_4_14_2(http, browser, confidential, resource_servers):
    """Refresh may narrow but never widen the scope or name another resource; rotation keeps the original scope."""
    first = await tokens_for(http, browser, confidential, resource="https://rs1.example")
    token = first["refresh_token"]
    assert_error(await refresh_as(http, confidential, token, scope=SCOPE + " email"), 400, "invalid_scope")
    assert_error(await refresh_as(http, confidential, token, resource="https://rs2.example"), 400, "invalid_target")
    narrowed = await refresh_as(http, confidential, token, scope="calendar.read")
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["scope"] == "calendar.read"
    assert payload_of(narrowed.json()["access_token"])["scope"] == "calendar.read"
    assert payload_of(narrowed.json()["access_token"])["aud"] == "https://rs1.example"
    again = await refresh_as(http, confidential, narrowed.json()["refresh_token"])
    assert again.status_code == 200, again.text
    assert again.json()["scope"] == SCOPE


async def test_BCP_22_refresh_token_integrity_4_14_2(http, browser, confidential):
    """A refresh token with one character changed is invalid_grant, and the genuine one still works."""
    token = (await tokens_for(http, browser, confidential))["refresh_token"]
    middle = len(token) // 2
    flipped = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    assert_error(await refresh_as(http, confidential, flipped), 400, "invalid_grant")
    assert_error(await refresh_as(http, confidential, token + "A"), 400, "invalid_grant")
    assert (await refresh_as(http, confidential, token)).status_code == 200


@pytest.mark.parametrize("lifetimes", [Lifetimes(refresh_idle=1)], ids=["refresh-idle-1s"])
async def test_BCP_23_refresh_token_expires_when_idle_4_14_2(http, browser, confidential, lifetimes, clock):
    """A refresh token left unused past the (shortened) idle lifetime is invalid_grant."""
    token = (await tokens_for(http, browser, confidential))["refresh_token"]
    clock.advance(2.1)
    assert_error(await refresh_as(http, confidential, token), 400, "invalid_grant")


ROTATIONS = 200


async def test_BCP_24_refresh_tokens_unguessable_o21_4_3(http, browser, confidential):
    """Refresh tokens handed out over many rotations are distinct, URL-safe and carry at least 128 random bits."""
    token = (await tokens_for(http, browser, confidential))["refresh_token"]
    seen = [token]
    for _ in range(ROTATIONS):
        response = await refresh_as(http, confidential, token)
        assert response.status_code == 200, response.text
        token = response.json()["refresh_token"]
        seen.append(token)
    assert len(set(seen)) == len(seen)
    for issued in seen:
        body = issued.removeprefix("fd_rt_")
        assert re.fullmatch(r"[A-Za-z0-9_-]+", body), issued
        assert len(body) * 6 >= 128, issued
    # No long common prefix beyond the scanner prefix: the tokens are not counters or timestamps.
    assert len({t[:12] for t in seen}) > len(seen) // 2


# --- 1.6 Access-token privilege restriction -------------------------------------------------------------------------


async def test_BCP_25_access_token_audience_restricted_4_10_2(http, browser, confidential, resource_servers):
    """An access token for resource rs1 has aud rs1 (JWT and introspection), and UserInfo refuses it with 401."""
    body = await tokens_for(http, browser, confidential, resource="https://rs1.example")
    assert (await verified_claims(http, body["access_token"]))["aud"] == "https://rs1.example"
    assert (await introspect(http, confidential, body["access_token"]))["aud"] == "https://rs1.example"
    response = await http.get("/userinfo", headers=bearer(body["access_token"]))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_BCP_26_least_privilege_scope_2_3(http, browser, confidential):
    """The tokens carry only the scope asked for, not everything the client is registered for."""
    body = await tokens_for(http, browser, confidential, scope="openid profile")
    assert body["scope"] == "openid profile"
    assert (await verified_claims(http, body["access_token"]))["scope"] == "openid profile"
    assert "refresh_token" not in body  # no offline_access asked, none granted


async def test_BCP_28_client_tokens_distinguishable_from_user_tokens_4_15_1(http, browser, confidential):
    """A client_credentials token (sub = client_id, no auth_time) cannot be mistaken for a person's token."""
    machine = await http.post(
        "/token", auth=basic(confidential), data={"grant_type": "client_credentials", "scope": "calendar.read"}
    )
    assert machine.status_code == 200, machine.text
    machine_claims = await verified_claims(http, machine.json()["access_token"])
    person_claims = await verified_claims(http, (await tokens_for(http, browser, confidential))["access_token"])
    assert machine_claims["sub"] == machine_claims["client_id"] == confidential.client_id
    assert "auth_time" not in machine_claims
    assert person_claims["client_id"] == confidential.client_id
    assert person_claims["sub"] != confidential.client_id
    assert "auth_time" in person_claims


# --- 1.7 Mix-up -----------------------------------------------------------------------------------------------------


def assert_iss_is(response: httpx.Response, issuer: str) -> None:
    """One iss in the redirect, equal to the issuer byte for byte (decoded), and encoded as form encoding does."""
    location = response.headers["location"]
    assert urlsplit(location).query.count("iss=") == 1, location
    assert query(location)["iss"] == issuer
    assert "iss=" + quote(issuer, safe="") in location


async def test_BCP_29_iss_in_every_authorization_response_4_4_2(browser, http, confidential):
    """iss equal to the metadata issuer is in the success redirect and every error redirect, and is advertised."""
    metadata = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert metadata["authorization_response_iss_parameter_supported"] is True
    issuer = metadata["issuer"]
    silent = await http.get("/authorize", params=params_for(confidential, prompt="none"))
    assert_error_redirect(silent, confidential.redirect_uri, "login_required")
    assert_iss_is(silent, issuer)
    after_login = await browser.authorize(**params_for(confidential, scope="openid bogus"))
    assert_error_redirect(after_login, confidential.redirect_uri, "invalid_scope")
    assert_iss_is(after_login, issuer)
    denied = await browser.authorize(consent="deny", **params_for(confidential))
    assert_error_redirect(denied, confidential.redirect_uri, "access_denied")
    assert_iss_is(denied, issuer)
    success = await browser.authorize(**params_for(confidential))
    assert_code_redirect(success, confidential.redirect_uri)
    assert_iss_is(success, issuer)
    # form_post, whose body would also need iss, is not offered at all.
    assert metadata["response_modes_supported"] == ["query"]
    form_post = await browser.http.get("/authorize", params=params_for(confidential, response_mode="form_post"))
    assert_error_redirect(form_post, confidential.redirect_uri, "invalid_request")
    assert_iss_is(form_post, issuer)


@pytest.mark.parametrize("path", metadata_paths())
async def test_BCP_30_issuer_matches_metadata_url_4_4_2(http, path):
    """The metadata issuer is exactly the URL prefix the document was fetched from (RFC 8414 §3.3)."""
    response = await http.get(path)
    issuer = response.json()["issuer"]
    assert issuer == ISSUER
    assert str(response.request.url) == issuer + path


# --- 1.8 Open redirectors -------------------------------------------------------------------------------------------

REDIRECT_PARAMS = (
    "next",
    "return_to",
    "returnTo",
    "redirect",
    "redirect_url",
    "continue",
    "url",
    "goto",
    "post_logout_redirect_uri",
)
EVIL_PARAMS = dict.fromkeys(REDIRECT_PARAMS, EVIL)


def every_route(fd: Frontdesk) -> set[tuple[str, str]]:
    """(method, path) of every route the application serves; a mount is represented by one of its files."""
    routes: set[tuple[str, str]] = set()
    for route in create_app(fd).routes:
        if isinstance(route, Route):
            routes |= {(method, route.path) for method in route.methods or () if method != "HEAD"}
        elif isinstance(route, Mount):
            routes.add(("GET", route.path + "/frontdesk.css"))
    return routes


async def open_interaction(browser: Browser, client: Registered, prompt: str) -> tuple[str, str]:
    """A fresh interaction for a signed-in browser: (its id, the page it leads to)."""
    response = await browser.http.get("/authorize", params=params_for(client, prompt=prompt))
    assert_interaction(response, "login" if prompt == "login" else "consent")
    ix = response.headers["location"].split("/")[2]
    return ix, response.headers["location"]


async def test_BCP_31_no_open_redirector_on_any_route_4_11(fd, http, browser, confidential, public, other_jar):
    """Every route, signed in or not, with next/return_to/redirect/continue=evil.example never sends anyone there."""
    await sign_in(browser, confidential)
    device = await started(http, public)
    machine = (await http.post("/token", auth=basic(confidential), data={"grant_type": "client_credentials"})).json()[
        "access_token"
    ]
    evil_form = dict(EVIL_PARAMS)

    async def interaction_get() -> list[httpx.Response]:
        ix, _ = await open_interaction(browser, confidential, "consent")
        return [await http.get(f"/interaction/{ix}", params=EVIL_PARAMS)]

    async def login_get_and_post() -> list[httpx.Response]:
        _, location = await open_interaction(browser, confidential, "login")
        page = await http.get(location, params=EVIL_PARAMS)
        data = {**evil_form, "csrf": csrf_of(page.text), "username": browser.username, "password": browser.password}
        return [page, await http.post(location, params=EVIL_PARAMS, data=data)]

    async def consent_get_and_post() -> list[httpx.Response]:
        _, location = await open_interaction(browser, confidential, "consent")
        page = await http.get(location, params=EVIL_PARAMS)
        data = {**evil_form, "csrf": csrf_of(page.text), "decision": "allow"}
        return [page, await http.post(location, params=EVIL_PARAMS, data=data)]

    async def device_pages() -> list[httpx.Response]:
        form = await http.get("/device", params=EVIL_PARAMS)
        csrf = csrf_of(form.text)
        confirm = await http.post(
            "/device", params=EVIL_PARAMS, data={**evil_form, "csrf": csrf, "user_code": device["user_code"]}
        )
        decided = await http.post(
            "/device/decide",
            params=EVIL_PARAMS,
            data={**evil_form, "csrf": csrf, "user_code": device["user_code"], "decision": "allow"},
        )
        return [form, confirm, decided]

    async def authorize_both() -> list[httpx.Response]:
        params = {**params_for(confidential), **EVIL_PARAMS}
        return [
            await http.get("/authorize", params=params),
            await http.post("/authorize", data=params),
            await http.get("/authorize", params={**params, "client_id": "no-such-client"}),
        ]

    async def second_factor_pages() -> list[httpx.Response]:
        # Nobody here has a second factor or a passkey: each step refuses, on a page or in JSON, and sends no one off.
        ix, _ = await open_interaction(browser, confidential, "login")
        return [
            await http.get(f"/interaction/{ix}/second-factor", params=EVIL_PARAMS),
            await http.post(f"/interaction/{ix}/second-factor", params=EVIL_PARAMS, data=evil_form),
            await http.post(f"/interaction/{ix}/passkey", params=EVIL_PARAMS, data=evil_form),
            await http.post(f"/interaction/{ix}/passkey/options", params=EVIL_PARAMS, json=evil_form),
        ]

    async def upstream_pages() -> list[httpx.Response]:
        # No upstream provider is registered here: the trip out has nowhere to go, the way back nothing to finish.
        ix, location = await open_interaction(browser, confidential, "login")
        form = {**evil_form, "csrf": csrf_of((await http.get(location)).text)}
        return [
            await http.get(f"/interaction/{ix}/upstream", params=EVIL_PARAMS),
            await http.post(f"/interaction/{ix}/upstream", params=EVIL_PARAMS, data=form),
            await http.post(f"/interaction/{ix}/upstream/op", params=EVIL_PARAMS, data=form),
        ]

    def simple(method: str, path: str, **kwargs: Any) -> Callable[[], Awaitable[list[httpx.Response]]]:
        async def call() -> list[httpx.Response]:
            return [await http.request(method, path, params=EVIL_PARAMS, **kwargs)]

        return call

    signed_in: dict[tuple[str, str], Callable[[], Awaitable[list[httpx.Response]]]] = {
        ("GET", "/.well-known/openid-configuration"): simple("GET", "/.well-known/openid-configuration"),
        ("GET", "/.well-known/oauth-authorization-server"): simple("GET", "/.well-known/oauth-authorization-server"),
        ("GET", "/jwks"): simple("GET", "/jwks"),
        # RFC 9728 metadata of the vault's MCP server (web/mcp.py): a JSON document, nothing to redirect to.
        ("GET", "/.well-known/oauth-protected-resource/mcp"): simple(
            "GET", "/.well-known/oauth-protected-resource/mcp"
        ),
        ("GET", "/static/frontdesk.css"): simple("GET", "/static/frontdesk.css"),
        ("GET", "/authorize"): authorize_both,
        ("POST", "/authorize"): authorize_both,
        ("GET", "/interaction/{ix}"): interaction_get,
        ("GET", "/interaction/{ix}/login"): login_get_and_post,
        ("POST", "/interaction/{ix}/login"): login_get_and_post,
        ("GET", "/interaction/{ix}/consent"): consent_get_and_post,
        ("POST", "/interaction/{ix}/consent"): consent_get_and_post,
        ("POST", "/token"): simple(
            "POST", "/token", auth=basic(confidential), data={**evil_form, "grant_type": "client_credentials"}
        ),
        ("POST", "/introspect"): simple("POST", "/introspect", auth=basic(confidential), data={"token": machine}),
        ("POST", "/revoke"): simple("POST", "/revoke", auth=basic(confidential), data={"token": "x", **evil_form}),
        ("GET", "/userinfo"): simple("GET", "/userinfo", headers=bearer(machine)),
        ("POST", "/userinfo"): simple("POST", "/userinfo", headers=bearer(machine)),
        # CORS preflights (web/cors.py): a 204 for the routes the table marks cross_origin.
        **{
            ("OPTIONS", path): simple("OPTIONS", path, headers={"Origin": "https://evil.example"})
            for path in (
                "/.well-known/openid-configuration",
                "/.well-known/oauth-authorization-server",
                "/jwks",
                "/token",
                "/revoke",
                "/userinfo",
                "/register",
            )
        },
        ("OPTIONS", "/register/{client_id}"): simple("OPTIONS", "/register/some-client"),
        # RFC 7591/7592: JSON answers only; a redirect URI at evil.example is refused, never followed.
        ("POST", "/register"): simple("POST", "/register", json={**evil_form, "redirect_uris": [EVIL + "/cb"]}),
        **{
            (method, "/register/{client_id}"): simple(method, "/register/some-client", headers=bearer("fd_rat_x"))
            for method in ("GET", "PUT", "DELETE")
        },
        # CIBA (web/ciba.py): a JSON answer to the client; nothing here redirects anyone.
        ("POST", "/bc-authorize"): simple(
            "POST", "/bc-authorize", auth=basic(confidential), data={**evil_form, "scope": "openid", "login_hint": "x"}
        ),
        ("POST", "/device_authorization"): simple(
            "POST", "/device_authorization", data={**evil_form, "client_id": public.client_id, "scope": "openid"}
        ),
        ("GET", "/device"): device_pages,
        ("POST", "/device"): device_pages,
        ("POST", "/device/decide"): device_pages,
        # Sign-out: post_logout_redirect_uri=evil.example is registered for no client, so it is never followed.
        ("GET", "/logout"): simple("GET", "/logout"),
        ("POST", "/logout"): simple("POST", "/logout", data=evil_form),
        ("POST", "/logout/confirm"): simple("POST", "/logout/confirm", data={**evil_form, "decision": "stay"}),
        ("GET", "/interaction/{ix}/upstream"): upstream_pages,
        ("POST", "/interaction/{ix}/upstream"): upstream_pages,
        ("POST", "/interaction/{ix}/upstream/{name}"): upstream_pages,
        ("GET", "/upstream/{name}/callback"): simple("GET", "/upstream/op/callback"),
        # The account pages, signed in; their forms carry no CSRF token here, so each is refused on a page.
        **{
            ("GET", path): simple("GET", path)
            for path in (
                "/account",
                "/account/apps",
                "/account/approvals",
                "/account/connections",
                "/account/sessions",
                "/account/activity",
                "/account/security",
                "/account/second-factor",
            )
        },
        **{
            ("POST", path): simple("POST", path, data=evil_form)
            for path in (
                "/account/apps/revoke",
                "/account/approvals/decide",
                "/account/connections/disconnect",
                "/account/sessions/sign-out",
                "/account/sessions/sign-out-everywhere",
                "/account/password",
                "/account/passkeys",
                "/account/passkeys/options",
                "/account/passkeys/rename",
                "/account/passkeys/remove",
                "/account/second-factor",
                "/account/second-factor/remove",
                "/account/recovery-codes",
            )
        },
        ("GET", "/interaction/{ix}/second-factor"): second_factor_pages,
        ("POST", "/interaction/{ix}/second-factor"): second_factor_pages,
        ("POST", "/interaction/{ix}/passkey"): second_factor_pages,
        ("POST", "/interaction/{ix}/passkey/options"): second_factor_pages,
        # The vault: its API wants the platform's key (401 here), its link and callback show pages.
        ("POST", "/vault/connect-sessions"): simple("POST", "/vault/connect-sessions", json=evil_form),
        ("GET", "/vault/connections"): simple("GET", "/vault/connections"),
        ("GET", "/vault/connections/{connection_id}"): simple("GET", "/vault/connections/conn_x"),
        ("DELETE", "/vault/connections/{connection_id}"): simple("DELETE", "/vault/connections/conn_x"),
        ("GET", "/vault/connections/{connection_id}/credentials"): simple("GET", "/vault/connections/x/credentials"),
        ("POST", "/vault/check"): simple("POST", "/vault/check", json=evil_form),
        **{
            (method, "/vault/proxy/{connection_id}/{path:path}"): simple(method, "/vault/proxy/conn_x/me")
            for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
        },
        ("GET", "/vault/connect/{token}"): simple("GET", "/vault/connect/fd_vc_" + "A" * 43),
        ("POST", "/vault/connect/{token}"): simple("POST", "/vault/connect/fd_vc_" + "A" * 43, data=evil_form),
        ("GET", "/vault/connect"): simple("GET", "/vault/connect"),
        ("GET", "/vault/callback"): simple("GET", "/vault/callback"),
        # Email links and probes: pages and JSON that redirect nowhere but this server.
        **{
            (method, path): simple(method, path, **({"data": evil_form} if method == "POST" else {}))
            for method, path in every_route(fd)
            if path in ("/email/verify", "/password/forgot", "/password/reset", "/healthz", "/readyz")
            or path.startswith("/account/email")
        },
        # The admin console (this person holds no admin role: a page saying so) and the admin API (no admin token:
        # a 401 in JSON). Path parameters are filled with a plain word.
        **{
            (method, path): simple(
                method,
                re.sub(r"\{[^}]+\}", "x", path),
                **({"data": evil_form} if method == "POST" else {}),
            )
            for method, path in every_route(fd)
            if path == "/admin" or path.startswith("/admin/")
        },
    }
    assert set(signed_in) == every_route(fd), "a route was added: say how to reach it here"
    responses: list[httpx.Response] = []
    for call in dict.fromkeys(signed_in.values()):
        responses += await call()
    # Signed out, with no interaction cookie, each route and its trailing-slash variant.
    for method, path in sorted(every_route(fd)):
        concrete = path.replace("{ix}", "fd_ix_" + "A" * 43)
        for variant in (concrete, concrete + "/"):
            kwargs: dict[str, Any] = {"params": EVIL_PARAMS}
            if method == "POST":
                kwargs["data"] = evil_form
            responses.append(await other_jar.request(method, variant, **kwargs))
    for response in responses:
        assert response.status_code < 500, (response.request.url, response.text)
        assert_no_redirect_to(response, "evil.example")


async def test_BCP_32_errors_redirected_only_after_sign_in_4_11_2(http, browser, confidential):
    """A bad scope gets the sign-in page first (no client redirect); after sign-in it is an invalid_scope redirect."""
    first = await http.get("/authorize", params=params_for(confidential, scope="bogus"))
    assert_interaction(first, "login")
    page = await http.get(first.headers["location"])
    assert page.status_code == 200
    assert 'name="password"' in page.text
    response = await browser.follow(await browser.sign_in(page))
    assert_error_redirect(response, confidential.redirect_uri, "invalid_scope")


async def test_BCP_32_prompt_none_errors_redirected_at_once_4_11_2(http, confidential):
    """Under prompt=none no page may be shown, so a bad scope goes back to the client without a session."""
    response = await http.get("/authorize", params=params_for(confidential, scope="bogus", prompt="none"))
    assert_error_redirect(response, confidential.redirect_uri, "invalid_scope")


async def test_BCP_33_consent_names_the_destination_4_11_2(browser, confidential):
    """Before anyone is sent to a client, the consent page names the host they will be sent to."""
    page = await consent_page(browser, confidential)
    assert "you will be sent to <strong>app.example</strong>" in page.text


# --- 1.9 CSRF -------------------------------------------------------------------------------------------------------

ODD_STATE = "a b+c/=&x%20é"


async def test_BCP_34_state_round_trips_exactly_4_7_1(browser, confidential):
    """state comes back byte for byte in a success redirect and in an error redirect."""
    success = await browser.authorize(**params_for(confidential, state=ODD_STATE))
    assert_code_redirect(success, confidential.redirect_uri, state=ODD_STATE)
    failure = await browser.http.get("/authorize", params=params_for(confidential, state=ODD_STATE, scope="bogus"))
    assert_error_redirect(failure, confidential.redirect_uri, "invalid_scope", state=ODD_STATE)


@dataclass
class Form:
    """One of the server's forms: where it posts, what it posts besides csrf, and its csrf token."""

    action: str
    fields: dict[str, str]
    csrf: str
    succeeded: Callable[[httpx.Response], bool]


async def open_form(kind: str, browser: Browser, http: httpx.AsyncClient, confidential, public) -> Form:
    if kind == "login":
        page = await login_page(http, confidential)
        fields = {"username": browser.username, "password": browser.password}
        return Form(form_action(page.text), fields, csrf_of(page.text), lambda r: r.status_code == 303)
    if kind == "consent":
        page = await consent_page(browser, confidential)
        return Form(
            form_action(page.text),
            {"decision": "allow"},
            csrf_of(page.text),
            lambda r: r.status_code == 303 and "code" in query(r.headers["location"]),
        )
    device = await started(http, public)
    page = await device_page(browser)
    if kind == "device":
        return Form(
            "/device", {"user_code": device["user_code"]}, csrf_of(page.text), lambda r: 'value="allow"' in r.text
        )
    confirm = await http.post("/device", data={"csrf": csrf_of(page.text), "user_code": device["user_code"]})
    assert form_action(confirm.text) == "/device/decide"
    return Form(
        "/device/decide",
        {"user_code": device["user_code"], "decision": "allow"},
        csrf_of(confirm.text),
        lambda r: r.status_code == 200 and "connected" in r.text,
    )


@pytest.mark.parametrize("kind", ["login", "consent", "device", "device/decide"])
async def test_BCP_35_every_form_needs_csrf_token_o21_7_9(http, browser, confidential, public, kind):
    """Each form posted without its CSRF token or with a wrong one is 403 and does nothing; the right token works."""
    form = await open_form(kind, browser, http, confidential, public)
    for data in (form.fields, {**form.fields, "csrf": "0" * len(form.csrf)}, {**form.fields, "csrf": ""}):
        refused = await http.post(form.action, data=data)
        assert refused.status_code == 403, refused.text
        assert "location" not in refused.headers
        assert "set-cookie" not in refused.headers
    accepted = await http.post(form.action, data={**form.fields, "csrf": form.csrf})
    assert form.succeeded(accepted), (accepted.status_code, accepted.headers.get("location"), accepted.text)


async def test_BCP_35_consent_from_another_session_refused_o21_7_9(browser, other_jar, confidential):
    """A consent POST replayed from another browser, even with the right CSRF token, issues no code."""
    page = await consent_page(browser, confidential)
    response = await other_jar.post(form_action(page.text), data={"csrf": csrf_of(page.text), "decision": "allow"})
    assert_no_redirect(response)


async def test_BCP_35_cookies_are_samesite_lax_o21_7_9(http, person, confidential):
    """The interaction and session cookies are Secure, HttpOnly and SameSite=Lax, so no cross-site POST carries them."""
    started_at = await http.get("/authorize", params=params_for(confidential))
    page = await http.get(started_at.headers["location"])
    signed_in = await http.post(
        form_action(page.text), data={"csrf": csrf_of(page.text), "username": person[0], "password": person[1]}
    )
    assert signed_in.status_code == 303
    cookies = started_at.headers.get_list("set-cookie") + signed_in.headers.get_list("set-cookie")
    names = {c.split("=", 1)[0] for c in cookies}
    assert "__Host-fd_session" in names, names
    assert any(n.startswith("__Host-fd_ix_") for n in names), names
    for cookie in cookies:
        attributes = [a.strip().lower() for a in cookie.split(";")[1:]]
        assert "secure" in attributes, cookie
        assert "httponly" in attributes, cookie
        assert "samesite=lax" in attributes, cookie


# --- 1.10 Browser-level protections ---------------------------------------------------------------------------------


async def every_page(browser: Browser, http: httpx.AsyncClient, confidential, public) -> dict[str, httpx.Response]:
    """Every kind of page (and the authorization endpoint's own answers) the server renders."""
    pages: dict[str, httpx.Response] = {}
    pages["authorize-error"] = await http.get("/authorize", params=params_for(confidential, client_id="nobody"))
    pages["authorize-redirect"] = await http.get("/authorize", params=params_for(confidential))
    pages["login"] = await login_page(http, confidential)
    pages["consent"] = await consent_page(browser, confidential)
    pages["expired-interaction"] = await http.get("/interaction/fd_ix_unknown/login")
    device = await started(http, public)
    pages["device"] = await device_page(browser)
    confirm = await http.post("/device", data={"csrf": csrf_of(pages["device"].text), "user_code": device["user_code"]})
    pages["device-consent"] = confirm
    pages["device-done"] = await http.post(
        "/device/decide",
        data={"csrf": csrf_of(confirm.text), "user_code": device["user_code"], "decision": "deny"},
    )
    return pages


async def test_BCP_36_pages_cannot_be_framed_4_16(http, browser, confidential, public):
    """Every page sends CSP frame-ancestors 'none' and X-Frame-Options DENY."""
    for name, response in (await every_page(browser, http, confidential, public)).items():
        csp = response.headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in csp, name
        assert response.headers.get("x-frame-options") == "DENY", name


async def test_BCP_37_303_after_post_4_12(http, browser, person, confidential):
    """Sign-in, consent (allow and deny) and an authorization POST all answer 303, never 307 or 308."""
    page = await login_page(http, confidential)
    signed_in = await http.post(
        form_action(page.text), data={"csrf": csrf_of(page.text), "username": person[0], "password": person[1]}
    )
    assert signed_in.status_code == 303
    for decision in ("allow", "deny"):
        consent = await consent_page(browser, confidential, prompt="consent")
        answered = await http.post(
            form_action(consent.text), data={"csrf": csrf_of(consent.text), "decision": decision}
        )
        assert answered.status_code == 303, decision
    posted = await http.post("/authorize", data=params_for(confidential))
    assert_code_redirect(posted, confidential.redirect_uri)


async def test_BCP_37_no_307_or_308_on_any_post_4_12(fd, http, confidential):
    """No POST route, nor its trailing-slash variant, answers with a body-preserving 307 or 308 redirect."""
    for method, path in sorted(every_route(fd)):
        if method != "POST":
            continue
        concrete = path.replace("{ix}", "fd_ix_" + "A" * 43)
        for variant in (concrete, concrete + "/"):
            response = await http.post(
                variant, auth=basic(confidential), data={"grant_type": "client_credentials", "password": "x"}
            )
            assert response.status_code not in (307, 308), (variant, response.headers.get("location"))


async def test_BCP_38_no_third_party_resources_and_no_referrer_4_2_4(http, browser, confidential, public):
    """No page links or loads anything from another origin, and every page sends Referrer-Policy: no-referrer."""
    for name, response in (await every_page(browser, http, confidential, public)).items():
        assert response.headers.get("referrer-policy") == "no-referrer", name
        if not response.headers.get("content-type", "").startswith("text/html"):
            continue
        for url in re.findall(r'(?:src|href|action|srcset|formaction)="([^"]*)"', response.text):
            parts = urlsplit(url)
            assert (not parts.scheme and not parts.netloc) or url.startswith(ISSUER + "/"), (name, url)


@pytest.mark.parametrize("method", ["GET", "POST", "OPTIONS"])
async def test_BCP_39_no_cors_at_authorization_endpoint_2_6(http, confidential, method):
    """/authorize sends no Access-Control-* header, even to a cross-origin request or preflight."""
    headers = {"Origin": EVIL, "Access-Control-Request-Method": "POST"}
    if method == "POST":
        response = await http.post("/authorize", data=params_for(confidential), headers=headers)
    else:
        response = await http.request(method, "/authorize", params=params_for(confidential), headers=headers)
    assert not any(name.lower().startswith("access-control-") for name in response.headers), response.headers


async def test_BCP_40_access_tokens_never_in_urls_4_3_2(http, browser, confidential):
    """No redirect of the code flow carries a token, and UserInfo refuses a token in the query string with 401."""
    locations: list[str] = []

    async def walk(response: httpx.Response) -> httpx.Response:
        while response.status_code in (302, 303):
            locations.append(response.headers["location"])
            if not response.headers["location"].startswith("/"):
                break
            response = await http.get(response.headers["location"])
        return response

    login = await walk(await http.get("/authorize", params=params_for(confidential)))
    consent = await walk(await browser.sign_in(login))
    await walk(await http.post(form_action(consent.text), data={"csrf": csrf_of(consent.text), "decision": "allow"}))
    assert "code" in query(locations[-1])
    for location in locations:
        for name in ("access_token", "id_token", "refresh_token"):
            assert name not in location, location
    body = await tokens_for(http, browser, confidential)
    refused = await http.get("/userinfo", params={"access_token": body["access_token"]})
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")


async def test_BCP_41_no_store_on_credential_responses_o21_3_2_3(http, browser, confidential, public):
    """Token (success and error), introspection, UserInfo (success and 401) and device responses say no-store."""
    code, verifier = await code_for(browser, confidential)
    token_ok = await redeem(http, confidential, code, verifier)
    token_error = await redeem(http, confidential, code, verifier)
    access = token_ok.json()["access_token"]
    responses = {
        "token": token_ok,
        "token-error": token_error,
        "introspection": await http.post("/introspect", auth=basic(confidential), data={"token": access}),
        "userinfo": await http.get("/userinfo", headers=bearer(access)),
        "userinfo-401": await http.get("/userinfo"),
        "device-authorization": await http.post("/device_authorization", data={"client_id": public.client_id}),
        "client-credentials": await http.post(
            "/token", auth=basic(confidential), data={"grant_type": "client_credentials"}
        ),
    }
    assert token_ok.status_code == 200
    assert token_error.status_code == 400
    for name, response in responses.items():
        assert response.headers.get("cache-control") == "no-store", name


# --- 1.11 Client authentication, metadata, infrastructure -----------------------------------------------------------


@dataclass(frozen=True)
class KeyHolder:
    client_id: str
    key: ECKey


@pytest.fixture
def key_client(fd: Frontdesk) -> KeyHolder:
    """Client K: confidential, private_key_jwt with one registered P-256 public key."""
    key = ECKey.generate_key("P-256", parameters={"kid": "k-" + secrets.token_hex(4), "alg": "ES256"})
    public = {**key.as_dict(private=False), "use": "sig", "alg": "ES256"}
    client, secret = register(
        fd,
        name="Key-holding service",
        client_id="key-client",
        auth_method="private_key_jwt",
        jwks={"keys": [public]},
        redirect_uris=[],
        grant_types=["client_credentials"],
        scope="calendar.read",
    )
    assert secret is None
    return KeyHolder(client.client_id, key)


def client_assertion(holder: KeyHolder, key: ECKey | None = None, **overrides: Any) -> str:
    at = int(time.time())
    claims = {
        "iss": holder.client_id,
        "sub": holder.client_id,
        "aud": ISSUER,
        "jti": secrets.token_urlsafe(16),
        "iat": at,
        "exp": at + 120,
        **overrides,
    }
    signer = key or holder.key
    return jwt.encode({"alg": "ES256", "kid": holder.key.kid, "typ": "JWT"}, claims, signer)


def unsigned_assertion(holder: KeyHolder) -> str:
    at = int(time.time())
    header = {"alg": "none", "typ": "JWT"}
    claims = {"iss": holder.client_id, "sub": holder.client_id, "aud": ISSUER, "jti": "x", "iat": at, "exp": at + 60}
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}."


async def assertion_request(http: httpx.AsyncClient, assertion: str, seen: set[str]) -> httpx.Response:
    remember(seen, assertion)
    return await http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "scope": "calendar.read",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
    )


async def test_BCP_42_private_key_jwt_accepted_2_5(http, key_client, secrets_seen):
    """Control for BCP-42: an assertion signed by K's key with aud = the issuer as one string gets a token."""
    response = await assertion_request(http, client_assertion(key_client), secrets_seen)
    assert response.status_code == 200, response.text
    claims = await verified_claims(http, response.json()["access_token"])
    assert claims["client_id"] == key_client.client_id


@pytest.mark.parametrize("case", ["alg-none", "bad-signature", "expired", "wrong-audience", "replayed-jti"])
async def test_BCP_42_bad_client_assertion_is_invalid_client_2_5(http, key_client, secrets_seen, case):
    """An assertion with alg none, a bad signature, an expired exp, another audience or a spent jti is 401."""
    if case == "alg-none":
        assertion = unsigned_assertion(key_client)
    elif case == "bad-signature":
        assertion = client_assertion(key_client, key=ECKey.generate_key("P-256"))
    elif case == "expired":
        at = int(time.time())
        assertion = client_assertion(key_client, iat=at - 600, exp=at - 300)
    elif case == "wrong-audience":
        assertion = client_assertion(key_client, aud="https://other-as.example")
    else:
        jti = secrets.token_urlsafe(16)
        first = await assertion_request(http, client_assertion(key_client, jti=jti), secrets_seen)
        assert first.status_code == 200, first.text
        assertion = client_assertion(key_client, jti=jti)  # same jti, fresh signature
    response = await assertion_request(http, assertion, secrets_seen)
    assert_error(response, 401, "invalid_client")
    assert "access_token" not in response.json()


async def test_BCP_42_same_assertion_twice_is_invalid_client_2_5(http, key_client, secrets_seen):
    """The very same assertion presented twice is refused the second time."""
    assertion = client_assertion(key_client)
    assert (await assertion_request(http, assertion, secrets_seen)).status_code == 200
    assert_error(await assertion_request(http, assertion, secrets_seen), 401, "invalid_client")


async def test_BCP_43_client_secret_guessing_throttled_o21_2_4_1(http, fd, confidential):
    """After 50 wrong secrets for C from one address the next tries are 429; the right secret elsewhere works."""
    statuses = []
    for _ in range(50):
        wrong = await http.post(
            "/token", auth=(confidential.client_id, "fd_cs_" + "x" * 43), data={"grant_type": "client_credentials"}
        )
        statuses.append(wrong.status_code)
    assert set(statuses) <= {401, 429}
    assert statuses[-1] == 429
    throttled = await http.post("/token", auth=basic(confidential), data={"grant_type": "client_credentials"})
    assert throttled.status_code == 429
    assert throttled.json()["error"] == "temporarily_unavailable"
    assert int(throttled.headers["retry-after"]) > 0
    async with from_address(fd, "198.51.100.30") as elsewhere:
        ok = await elsewhere.post("/token", auth=basic(confidential), data={"grant_type": "client_credentials"})
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("path", metadata_paths())
async def test_BCP_44_metadata_published_2_6(http, path):
    """RFC 8414 metadata is published with the members a client needs to use this server safely."""
    response = await http.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    metadata = response.json()
    for member in (
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "response_types_supported",
        "grant_types_supported",
        "code_challenge_methods_supported",
        "token_endpoint_auth_methods_supported",
        "authorization_response_iss_parameter_supported",
    ):
        assert member in metadata, member


FORWARDED = {
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Proto": "http",
    "X-Forwarded-Port": "8080",
    "X-Forwarded-Prefix": "/evil",
    "X-Forwarded-For": "198.51.100.99",
    "X-Original-URL": "/evil",
    "X-Real-IP": "198.51.100.99",
    "Forwarded": "for=198.51.100.99;host=evil.example;proto=http",
}


async def test_BCP_45_forwarded_headers_ignored_4_13(fd, http, browser, confidential, public):
    """Forwarded headers from outside change no issuer, URL or Location, evade no limit, authenticate no client."""
    for path in metadata_paths():
        plain = (await http.get(path)).json()
        assert (await http.get(path, headers=FORWARDED)).json() == plain
        assert plain["issuer"] == ISSUER
    started_at = await http.get("/authorize", params=params_for(confidential), headers=FORWARDED)
    assert_interaction(started_at, "login")
    await sign_in(browser, confidential)
    success = await http.get("/authorize", params=params_for(confidential), headers=FORWARDED)
    assert_code_redirect(success, confidential.redirect_uri)
    device = await http.post("/device_authorization", data={"client_id": public.client_id}, headers=FORWARDED)
    assert device.json()["verification_uri"] == ISSUER + "/device"
    # Nor does any header build a Location: not even Host, as a trailing-slash redirect would.
    for path in ("/authorize/", "/token/"):
        for headers in (FORWARDED, {"Host": "evil.example"}):
            location = (await http.post(path, headers=headers)).headers.get("location", "")
            assert "evil" not in location, (path, location)
            assert not location.startswith("http:"), (path, location)
    # A forged client-certificate header authenticates no one.
    forged = await http.post(
        "/token",
        data={"grant_type": "client_credentials", "client_id": confidential.client_id},
        headers={"X-Client-Cert": "forged", "X-SSL-Client-Verify": "SUCCESS", "X-SSL-Client-S-DN": "CN=conf-client"},
    )
    assert_error(forged, 401, "invalid_client")
    # A different X-Forwarded-For on every guess does not escape the per-address limit on client authentication.
    for n in range(12):
        await http.post(
            "/token",
            auth=(confidential.client_id, "fd_cs_" + "y" * 43),
            data={"grant_type": "client_credentials"},
            headers={"X-Forwarded-For": f"198.51.100.{n}", "Forwarded": f"for=198.51.100.{n}"},
        )
    throttled = await http.post("/token", auth=basic(confidential), data={"grant_type": "client_credentials"})
    assert throttled.status_code == 429


async def test_BCP_46_tls_everywhere_2_6(http, fd):
    """Every URL in the metadata is https, and a plain-http issuer on a public host is refused at start."""
    for path in metadata_paths():
        for name, value in (await http.get(path)).json().items():
            if isinstance(value, str) and "://" in value:
                assert value.startswith("https://"), (name, value)
    with pytest.raises(ConfigError):
        Settings(issuer="http://as.example").validated()


async def test_BCP_46_cookies_only_over_tls_2_6(http, person, confidential):
    """Under an https issuer the session cookie is __Host- prefixed and Secure, so never sent over plain http."""
    page = await login_page(http, confidential)
    signed_in = await http.post(
        form_action(page.text), data={"csrf": csrf_of(page.text), "username": person[0], "password": person[1]}
    )
    cookies = signed_in.headers.get_list("set-cookie")
    assert any(c.startswith("__Host-fd_session=") for c in cookies), cookies
    assert all("; secure" in c.lower() for c in cookies), cookies
