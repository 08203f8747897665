"""Passkeys over HTTP in process (issue 5, item 2), driven by a software authenticator: registration from the
account page, usernameless sign-in on the sign-in page, names and removal, and the rules of the ceremony
(challenges single use and bound, origin, user handle, signature counter), and ``amr`` (RFC 8176)."""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import replace
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from accounts import (
    Authenticator,
    account_page,
    add_passkey,
    follow,
    passkey_options,
    post_code,
    secret_on,
    sign_in_with_passkey,
    totp_code,
    unb64url,
)
from conftest import ISSUER, Registered, basic, csrf_of, pkce, query, remember
from frontdesk.oauth.tokens import ACR_MFA, ACR_PASSWORD
from frontdesk.storage.db import now, transaction
from frontdesk.storage.schema import Passkey, Session, WebAuthnChallenge


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


@pytest.fixture
async def registered(http: httpx.AsyncClient, person: tuple[str, str]) -> Authenticator:
    """A person signed in on the account page who added one passkey, then signed out of this browser."""
    await account_page(http, *person)
    authenticator = Authenticator()
    response, _ = await add_passkey(http, authenticator)
    assert response.status_code == 303, response.text
    http.cookies.clear()
    return authenticator


async def login_page(http: httpx.AsyncClient, client: Registered, **extra: str) -> tuple[httpx.Response, str]:
    verifier, challenge = pkce()
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": "openid profile",
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    page = await follow(http, await http.get("/authorize", params=params))
    assert 'name="password"' in page.text
    return page, verifier


async def finish(http: httpx.AsyncClient, client: Registered, response: httpx.Response, verifier: str) -> Any:
    """From the answer to the passkey form to the ID token's claims (through consent)."""
    page = await follow(http, response)
    if 'value="allow"' in page.text:
        action = re.findall(r'<form method="post" action="([^"]+)"', page.text)[0]
        page = await http.post(action, data={"csrf": csrf_of(page.text), "decision": "allow"})
    code = query(page.headers["location"])["code"]
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    tokens = await http.post("/token", auth=basic(client), data=data)
    assert tokens.status_code == 200, tokens.text
    return claims_of(tokens.json()["id_token"])


# --- registration -----------------------------------------------------------------------------------------------


async def test_security_page_offers_passkeys_with_the_script(http, person):
    """The Security page loads the passkey script from this origin, under a CSP that allows only that."""
    page = await account_page(http, *person, "/account/security")
    assert '<script src="/static/passkeys.js" defer></script>' in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert "<script>" not in page.text
    script = await http.get("/static/passkeys.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]


async def test_registration_options_ask_for_a_discoverable_credential(http, person):
    """Registration options name this RP, a random user handle, a discoverable credential and a 32-byte
    challenge."""
    security = await account_page(http, *person, "/account/security")
    options = await passkey_options(http, security, "/account/passkeys/options")
    assert options["rp"]["id"] == "as.example"
    assert options["user"]["name"] == "alice"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert len(unb64url(options["challenge"])) == 32
    assert options["excludeCredentials"] == []


async def test_a_registered_passkey_is_listed_by_name(http, person, fd):
    """An added passkey is listed under its name; the second one is excluded from a new registration."""
    await account_page(http, *person)
    authenticator = Authenticator()
    response, _ = await add_passkey(http, authenticator, name="Work laptop")
    assert response.headers["location"] == "/account/security?done=passkey-added"
    page = await http.get(response.headers["location"])
    assert "Your passkey is added." in page.text
    assert "<strong>Work laptop</strong>" in page.text
    options = await passkey_options(http, page, "/account/passkeys/options")
    assert [c["id"] for c in options["excludeCredentials"]] == [
        base64.urlsafe_b64encode(next(iter(authenticator.credentials))).rstrip(b"=").decode()
    ]


async def test_registration_needs_a_recent_sign_in(http, person, fd):
    """An hour after signing in, asking to add a passkey sends the script to sign in again."""
    security = await account_page(http, *person, "/account/security")
    with transaction(fd.engine) as conn:
        conn.execute(update(Session).values(auth_time=now() - 3600))
    response = await http.post("/account/passkeys/options", data={"csrf": csrf_of(security.text)})
    assert response.status_code == 401
    assert re.fullmatch(r"/interaction/[^/]+/login", response.json()["redirect"])
    assert "__Host-fd_ix_" in response.headers["set-cookie"]


async def test_a_registration_challenge_works_once(http, person):
    """The same registration answer posted twice adds one passkey; the second is refused as expired."""
    security = await account_page(http, *person, "/account/security")
    options = await passkey_options(http, security, "/account/passkeys/options")
    credential = json.dumps(Authenticator().create(options))
    data = {"csrf": csrf_of(security.text), "name": "Phone", "credential": credential}
    assert (await http.post("/account/passkeys", data=data)).status_code == 303
    again = await http.post("/account/passkeys", data=data)
    assert again.status_code == 400
    assert "has expired" in again.text


async def test_registration_from_another_origin_is_refused(http, person):
    """An answer signed for another origin (a phishing site) is not registered."""
    await account_page(http, *person)
    response, _ = await add_passkey(http, Authenticator(origin="https://as.example.evil"))
    assert response.status_code == 400
    assert "could not be verified" in response.text


async def test_garbage_instead_of_a_credential_is_a_readable_error(http, person):
    """A credential field that is not WebAuthn JSON (or is empty, without script) is explained, not a crash."""
    security = await account_page(http, *person, "/account/security")
    for credential in ("", "{}", "not json", json.dumps({"id": 1})):
        response = await http.post(
            "/account/passkeys", data={"csrf": csrf_of(security.text), "name": "x", "credential": credential}
        )
        assert response.status_code == 400
        assert "could not be read" in response.text


# --- signing in -------------------------------------------------------------------------------------------------


async def test_passkey_signs_in_without_a_username(http, registered, confidential):
    """On the sign-in page, the passkey alone signs in: amr hwk and mfa (it verified the person), the multi-factor
    acr."""
    page, verifier = await login_page(http, confidential)
    assert "Use a passkey" in page.text
    response = await sign_in_with_passkey(http, page, registered)
    assert response.status_code == 303
    claims = await finish(http, confidential, response, verifier)
    assert claims["amr"] == ["hwk", "mfa"]
    assert claims["acr"] == ACR_MFA


async def test_a_synced_passkey_is_swk(http, person, confidential):
    """A backup-eligible (synced) passkey signs in with amr swk."""
    await account_page(http, *person)
    authenticator = Authenticator(backup_eligible=True)
    await add_passkey(http, authenticator)
    http.cookies.clear()
    page, verifier = await login_page(http, confidential)
    claims = await finish(http, confidential, await sign_in_with_passkey(http, page, authenticator), verifier)
    assert claims["amr"] == ["swk", "mfa"]


async def test_passkey_without_user_verification_is_one_factor(http, person, confidential, secrets_seen):
    """A passkey that did not verify the person is one factor: with an app enrolled, the code step follows, and
    amr says both."""
    await account_page(http, *person)
    authenticator = Authenticator(verifies_user=False)
    await add_passkey(http, authenticator)
    enrol = await http.get("/account/second-factor")
    secret = secret_on(enrol)
    remember(secrets_seen, secret)
    await post_code(http, enrol, totp_code(secret))
    http.cookies.clear()
    page, verifier = await login_page(http, confidential)
    step = await follow(http, await sign_in_with_passkey(http, page, authenticator))
    assert "Enter your code" in step.text
    response = await post_code(http, step, totp_code(secret, time.time() + 30))
    claims = await finish(http, confidential, response, verifier)
    assert claims["amr"] == ["hwk", "otp", "mfa"]


async def test_a_sign_in_challenge_works_once(http, registered, confidential):
    """The same signed answer replayed is refused: its challenge was used up."""
    page, _ = await login_page(http, confidential)
    options = await passkey_options(http, page, re.findall(r'data-options="([^"]+)"', page.text)[0])
    assertion = json.dumps(registered.get(options))
    action = re.findall(r'action="(/interaction/[^/"]+/passkey)"', page.text)[0]
    data = {"csrf": csrf_of(page.text), "credential": assertion}
    assert (await http.post(action, data=data)).status_code == 303
    again = await http.post(action, data=data)
    assert again.status_code == 400
    assert "has expired" in again.text


async def test_a_challenge_is_bound_to_its_interaction(http, registered, confidential):
    """A challenge fetched for one sign-in cannot finish another."""
    first, _ = await login_page(http, confidential)
    options = await passkey_options(http, first, re.findall(r'data-options="([^"]+)"', first.text)[0])
    second, _ = await login_page(http, confidential)
    action = re.findall(r'action="(/interaction/[^/"]+/passkey)"', second.text)[0]
    response = await http.post(
        action, data={"csrf": csrf_of(second.text), "credential": json.dumps(registered.get(options))}
    )
    assert response.status_code == 400
    assert "has expired" in response.text


async def test_an_expired_challenge_is_refused(http, fd, registered, confidential):
    """A challenge past its few minutes is refused."""
    page, _ = await login_page(http, confidential)
    options = await passkey_options(http, page, re.findall(r'data-options="([^"]+)"', page.text)[0])
    with transaction(fd.engine) as conn:
        conn.execute(update(WebAuthnChallenge).values(expires_at=now() - 1))
    action = re.findall(r'action="(/interaction/[^/"]+/passkey)"', page.text)[0]
    response = await http.post(
        action, data={"csrf": csrf_of(page.text), "credential": json.dumps(registered.get(options))}
    )
    assert response.status_code == 400


async def test_a_new_challenge_replaces_the_last_one(http, fd, registered, confidential):
    """Asking for options again retires the earlier challenge: one live challenge per sign-in, however often asked."""
    page, _ = await login_page(http, confidential)
    url = re.findall(r'data-options="([^"]+)"', page.text)[0]
    first = await passkey_options(http, page, url)
    for _ in range(3):
        await passkey_options(http, page, url)
    with transaction(fd.engine, readonly=True) as conn:
        assert len(conn.execute(select(WebAuthnChallenge.digest)).all()) == 1
    action = re.findall(r'action="(/interaction/[^/"]+/passkey)"', page.text)[0]
    response = await http.post(
        action, data={"csrf": csrf_of(page.text), "credential": json.dumps(registered.get(first))}
    )
    assert response.status_code == 400


async def test_options_need_the_pages_csrf_token(http, registered, confidential):
    """The options endpoint answers a forged request with 403 and a message, and stores no challenge."""
    page, _ = await login_page(http, confidential)
    url = re.findall(r'data-options="([^"]+)"', page.text)[0]
    response = await http.post(url, data={"csrf": "forged"})
    assert response.status_code == 403
    assert "expired" in response.json()["message"]


async def test_challenges_are_stored_as_digests(http, fd, registered, confidential):
    """The challenge the browser signs is not in the database; only its digest is."""
    page, _ = await login_page(http, confidential)
    options = await passkey_options(http, page, re.findall(r'data-options="([^"]+)"', page.text)[0])
    raw = unb64url(options["challenge"])
    with transaction(fd.engine, readonly=True) as conn:
        stored = conn.execute(select(WebAuthnChallenge.digest)).scalars().all()
    assert stored
    assert all(raw.hex() != d and options["challenge"] != d for d in stored)


async def test_an_unknown_passkey_is_refused(http, registered, confidential):
    """A passkey registered nowhere here is refused with a way forward."""
    stranger = Authenticator()
    stranger.create({"user": {"id": "AAAA"}, "challenge": "AAAA"})
    page, _ = await login_page(http, confidential)
    response = await sign_in_with_passkey(http, page, stranger)
    assert response.status_code == 400
    assert "not registered here" in response.text
    assert (await http.get("/account")).status_code == 303


async def test_a_wrong_user_handle_is_refused(http, registered, confidential):
    """An assertion whose user handle names someone else than the credential's owner is refused."""
    credential_id = next(iter(registered.credentials))
    key, _, count = registered.credentials[credential_id]
    registered.credentials[credential_id] = (key, b"someone else", count)
    page, _ = await login_page(http, confidential)
    response = await sign_in_with_passkey(http, page, registered)
    assert response.status_code == 400


async def test_a_cloned_authenticator_is_refused(http, registered, confidential):
    """A signature counter that does not move forward (a cloned authenticator) is refused."""
    page, _ = await login_page(http, confidential)
    assert (await sign_in_with_passkey(http, page, registered, count=5)).status_code == 303
    http.cookies.clear()
    page, _ = await login_page(http, confidential)
    response = await sign_in_with_passkey(http, page, registered, count=5)
    assert response.status_code == 400


async def test_an_assertion_from_another_origin_is_refused(http, registered, confidential):
    """An assertion made on another origin does not sign in here."""
    page, _ = await login_page(http, confidential)
    phished = replace(registered, origin="https://as-example.evil")
    response = await sign_in_with_passkey(http, page, phished)
    assert response.status_code == 400
    assert "could not be verified" in response.text


# --- names and removal ------------------------------------------------------------------------------------------


async def test_rename_and_remove(http, fd, person, confidential):
    """A passkey can be renamed; once removed it no longer signs in."""
    await account_page(http, *person)
    authenticator = Authenticator()
    await add_passkey(http, authenticator, name="Old name")
    security = await http.get("/account/security")
    passkey_id = re.findall(r'name="passkey" value="([0-9a-f]+)"', security.text)[0]
    renamed = await http.post(
        "/account/passkeys/rename", data={"csrf": csrf_of(security.text), "passkey": passkey_id, "name": "  New  name "}
    )
    assert renamed.status_code == 303
    assert "<strong>New name</strong>" in (await http.get("/account/security")).text
    removed = await http.post("/account/passkeys/remove", data={"csrf": csrf_of(security.text), "passkey": passkey_id})
    assert removed.headers["location"] == "/account/security?done=passkey-removed"
    with transaction(fd.engine, readonly=True) as conn:
        assert conn.execute(select(Passkey.id)).first() is None
    http.cookies.clear()
    page, _ = await login_page(http, confidential)
    assert (await sign_in_with_passkey(http, page, authenticator)).status_code == 400


async def test_another_persons_passkey_cannot_be_removed(http, fd, jar_bob, person, secrets_seen):
    """Posting the id of someone else's passkey removes nothing."""
    await account_page(http, *person)
    await add_passkey(http, Authenticator())
    with transaction(fd.engine, readonly=True) as conn:
        alices = conn.execute(select(Passkey.id)).scalar_one()
    security = await account_page(jar_bob, "bob", "bob's long password", "/account/security")
    await jar_bob.post("/account/passkeys/remove", data={"csrf": csrf_of(security.text), "passkey": alices})
    with transaction(fd.engine, readonly=True) as conn:
        assert conn.execute(select(Passkey.id)).scalar_one() == alices


async def test_passkey_activity_is_told(http, person):
    """Adding and removing a passkey appear among the person's activity, with the passkey's name."""
    await account_page(http, *person)
    await add_passkey(http, Authenticator(), name="Tablet")
    page = await http.get("/account/activity")
    assert "You added the passkey “Tablet”" in page.text


async def test_password_sign_in_still_works_with_a_passkey(http, registered, browser, confidential):
    """Having a passkey changes nothing for the password form: amr pwd, the password acr."""
    page, verifier = await login_page(http, confidential)
    response = await browser.sign_in(page)
    claims = await finish(http, confidential, response, verifier)
    assert claims["amr"] == ["pwd"]
    assert claims["acr"] == ACR_PASSWORD


@pytest.fixture
async def jar_bob(http: httpx.AsyncClient, fd: Any, secrets_seen: set[str]) -> Any:
    fd.users.create("bob", "bob's long password")
    remember(secrets_seen, "bob's long password")
    async with httpx.AsyncClient(transport=http._transport, base_url=ISSUER, follow_redirects=False) as client:
        yield client
