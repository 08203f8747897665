"""``id_token_hint`` at /authorize (OpenID Connect Core §3.1.2.1; issue 11, item 13): verified against this server's
keys (current or retired), its issuer and the client; expired hints still name a person; a different signed-in
person means sign-in again as the hinted one (``login_required`` under ``prompt=none``); a bad hint is
``invalid_request``."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from accounts import follow, sign_in_form
from conftest import Browser, Registered, code_for, pkce, query, remember
from frontdesk.storage.db import now

BOB_PASSWORD = "bob's own passphrase"


@pytest.fixture
def bob(fd, secrets_seen: set[str]) -> str:
    remember(secrets_seen, BOB_PASSWORD)
    return fd.users.create("bob", BOB_PASSWORD).id


def alice_id(fd) -> str:
    with fd.engine.connect() as conn:
        user_id = fd.users.id_of(conn, "alice")
    assert user_id is not None
    return user_id


def claims_for(fd, sub: str, aud: str, **extra: Any) -> dict[str, Any]:
    at = now()
    return {"iss": fd.issuer, "sub": sub, "aud": aud, "iat": at, "exp": at + 300, **extra}


def hint(fd, sub: str, aud: str, **extra: Any) -> str:
    return fd.keys.sign(claims_for(fd, sub, aud, **extra), "RS256")


def params(client: Registered, id_token_hint: str, **extra: str) -> dict[str, str]:
    _, challenge = pkce()
    return {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": "openid profile",
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "id_token_hint": id_token_hint,
        **extra,
    }


async def signed_in_alice(browser: Browser, client: Registered) -> None:
    """Alice signed in, having consented to ``client``."""
    await code_for(browser, client, scope="openid profile")


def error_of(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    return query(response.headers["location"]).get("error", "")


async def test_hint_naming_the_signed_in_person_answers_silently(http, fd, browser, confidential):
    """OIDC-06: prompt=none with a hint naming the signed-in person returns a code for that person."""
    await signed_in_alice(browser, confidential)
    response = await http.get(
        "/authorize", params=params(confidential, hint(fd, alice_id(fd), "conf-client"), prompt="none")
    )
    assert "code" in query(response.headers["location"]), response.headers["location"]


async def test_hint_naming_another_person_with_prompt_none_is_login_required(http, fd, browser, confidential, bob):
    """prompt=none with a hint naming someone other than the signed-in person: login_required, no code."""
    await signed_in_alice(browser, confidential)
    response = await http.get("/authorize", params=params(confidential, hint(fd, bob, "conf-client"), prompt="none"))
    assert error_of(response) == "login_required"
    assert "code" not in query(response.headers["location"])


async def test_hint_naming_another_person_asks_to_sign_in_as_them(http, fd, browser, confidential, bob):
    """Without prompt=none, a hint naming someone else leads to the sign-in page, filled in with their username;
    signing in as them ends in a code for them."""
    await signed_in_alice(browser, confidential)
    login = await follow(http, await http.get("/authorize", params=params(confidential, hint(fd, bob, "conf-client"))))
    assert 'name="password"' in login.text, login.text
    assert 'value="bob"' in login.text
    consent = await follow(http, await sign_in_form(http, login, "bob", BOB_PASSWORD))
    assert 'value="allow"' in consent.text, consent.text
    assert "Signed in as bob." in consent.text


async def test_signing_in_as_someone_else_than_hinted_is_login_required(http, fd, browser, confidential, bob):
    """Sent to sign in as the hinted person, whoever signs in as another gets login_required, not a code."""
    await signed_in_alice(browser, confidential)
    login = await follow(http, await http.get("/authorize", params=params(confidential, hint(fd, bob, "conf-client"))))
    response = await follow(http, await sign_in_form(http, login, browser.username, browser.password))
    assert error_of(response) == "login_required"


async def test_expired_hint_is_still_a_hint(http, fd, browser, confidential):
    """An expired ID token still says who: accepted as a hint (its signature and issuer verified)."""
    await signed_in_alice(browser, confidential)
    at = now()
    stale = hint(fd, alice_id(fd), "conf-client", iat=at - 7200, exp=at - 3600)
    response = await http.get("/authorize", params=params(confidential, stale, prompt="none"))
    assert "code" in query(response.headers["location"]), response.headers["location"]


async def test_hint_signed_by_a_retired_key_is_accepted(http, fd, browser, confidential):
    """An ID token signed before a key rotation still verifies: retired keys stay published and trusted."""
    await signed_in_alice(browser, confidential)
    old = hint(fd, alice_id(fd), "conf-client")
    fd.keys.rotate()
    response = await http.get("/authorize", params=params(confidential, old, prompt="none"))
    assert "code" in query(response.headers["location"]), response.headers["location"]


def foreign(claims: dict[str, Any]) -> str:
    key = RSAKey.generate_key(2048, parameters={"kid": "foreign"}, private=True)
    return jwt.encode({"alg": "RS256", "kid": "foreign"}, claims, key)


def unsigned(claims: dict[str, Any]) -> str:
    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none'})}.{b64(claims)}."


BAD_HINTS = {
    "garbage": lambda fd, sub: "not-a-jwt",
    "foreign-key": lambda fd, sub: foreign(claims_for(fd, sub, "conf-client")),
    "alg-none": lambda fd, sub: unsigned(claims_for(fd, sub, "conf-client")),
    "tampered": lambda fd, sub: hint(fd, sub, "conf-client")[:-4] + "AAAA",
    "other-issuer": lambda fd, sub: fd.keys.sign(
        {**claims_for(fd, sub, "conf-client"), "iss": "https://evil"}, "RS256"
    ),
    "other-client": lambda fd, sub: hint(fd, sub, "other-client"),
    "access-token": lambda fd, sub: fd.keys.sign(claims_for(fd, sub, "conf-client"), "RS256", typ="at+jwt"),
}


@pytest.mark.parametrize("make", BAD_HINTS.values(), ids=BAD_HINTS.keys())
async def test_invalid_hint_is_invalid_request(http, fd, browser, confidential, make):
    """A hint not issued here to this client (bad signature, another issuer or audience, not an ID token) is an
    invalid_request error redirect, never a code."""
    await signed_in_alice(browser, confidential)
    response = await http.get("/authorize", params=params(confidential, make(fd, alice_id(fd))))
    assert error_of(response) == "invalid_request"
    assert query(response.headers["location"])["state"] == "s"


async def test_invalid_hint_under_prompt_none_is_invalid_request(http, fd, browser, confidential):
    await signed_in_alice(browser, confidential)
    response = await http.get("/authorize", params=params(confidential, "not-a-jwt", prompt="none"))
    assert error_of(response) == "invalid_request"


@pytest.mark.parametrize("max_age", ["-1", "1.5", "-0"])
async def test_negative_or_fractional_max_age_with_a_session_is_invalid_request(http, browser, confidential, max_age):
    """max_age=-1 (or a non-integer) is invalid_request at once for a signed-in person (OIDC Core §3.1.2.1)."""
    await signed_in_alice(browser, confidential)
    request = {k: v for k, v in params(confidential, "", max_age=max_age).items() if k != "id_token_hint"}
    assert error_of(await http.get("/authorize", params=request)) == "invalid_request"
