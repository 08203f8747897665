"""A code's sign-in facts come from the sign-in that belongs to its interaction (issue 11, item 3): ``amr``,
``auth_time`` and ``sid`` are never taken from whatever session the browser holds when consent is pressed; if that
session changed in between, the request starts over for whoever is signed in now."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select

from accounts import follow, post_code, sign_in_form, totp_code
from conftest import Registered, basic, csrf_of, pkce, query, remember
from frontdesk.oauth.second_factor import begin_enrolment, confirm_enrolment
from frontdesk.protocol import rfc6238
from frontdesk.storage.db import now, transaction
from frontdesk.storage.schema import Session
from test_second_factor import authorize_params, claims_of

BOB_PASSWORD = "bob's own passphrase"
SCOPE = "openid profile"


@pytest.fixture
def bob(fd, secrets_seen: set[str]) -> tuple[str, str]:
    """A second person, with an authenticator app enrolled; (id, TOTP secret)."""
    user = fd.users.create("bob", BOB_PASSWORD)
    remember(secrets_seen, BOB_PASSWORD)
    with transaction(fd.engine) as conn:
        enrolment = begin_enrolment(fd, conn, user, now())
        assert enrolment is not None
        secret = enrolment.secret.value
        assert confirm_enrolment(fd, conn, user.id, totp_code(secret), now()) is not None
    remember(secrets_seen, secret)
    return user.id, secret


async def press(http: httpx.AsyncClient, consent: httpx.Response, decision: str = "allow") -> httpx.Response:
    action = re.search(r'<form method="post" action="([^"]+)"', consent.text)
    assert action, consent.text
    return await http.post(action.group(1), data={"csrf": csrf_of(consent.text), "decision": decision})


async def alice_at_consent(http: httpx.AsyncClient, client: Registered, person: tuple[str, str]) -> tuple[Any, str]:
    """Tab 1: Alice signs in with her password only and stops at consent; the consent page and the verifier."""
    verifier, challenge = pkce()
    login = await follow(http, await http.get("/authorize", params=authorize_params(client, challenge, scope=SCOPE)))
    consent = await follow(http, await sign_in_form(http, login, *person))
    assert 'value="allow"' in consent.text, consent.text
    assert "Signed in as alice." in consent.text
    return consent, verifier


async def bob_signs_in_elsewhere(http: httpx.AsyncClient, client: Registered, secret: str) -> httpx.Response:
    """Tab 2, same browser: Bob signs in with his password and app code (prompt=login); where that leads."""
    _, challenge = pkce()
    request = authorize_params(client, challenge, scope=SCOPE, prompt="login")
    login = await follow(http, await http.get("/authorize", params=request))
    step = await follow(http, await sign_in_form(http, login, "bob", BOB_PASSWORD))
    assert "Enter your code" in step.text, step.text
    # The next time step's code: the one used to confirm the enrolment may not be used again (RFC 6238 §5.2).
    return await follow(http, await post_code(http, step, totp_code(secret, time.time() + rfc6238.PERIOD)))


def bobs_session_id(fd, bob_id: str) -> str:
    with transaction(fd.engine, readonly=True) as conn:
        return str(conn.execute(select(Session.id).where(Session.user_id == bob_id)).scalar_one())


async def test_allow_after_another_sign_in_issues_no_code_with_mixed_facts(http, fd, person, bob, confidential, second):
    """Allow pressed on a consent page whose sign-in was replaced by another person's (with a second factor) in
    another tab issues no code: the request starts over for the person signed in now, at their own consent."""
    consent, _ = await alice_at_consent(http, confidential, person)
    await bob_signs_in_elsewhere(http, second, bob[1])
    response = await press(http, consent)
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert "code" not in query(location), location
    assert re.fullmatch(r"/interaction/[^/]+/consent", location), location
    again = await http.get(location)
    assert "Signed in as bob." in again.text
    assert "alice" not in again.text


async def test_the_code_after_starting_over_carries_only_the_current_sign_in(
    http, fd, person, bob, confidential, second
):
    """The code the restarted request ends in names the person signed in now, with that sign-in's amr, acr,
    auth_time and sid: all from one session."""
    consent, verifier = await alice_at_consent(http, confidential, person)
    await bob_signs_in_elsewhere(http, second, bob[1])
    done = await follow(http, await press(http, consent))
    done = await press(http, done)  # Bob's own consent for this client
    code = query(done.headers["location"])["code"]
    token = await http.post(
        "/token",
        auth=basic(confidential),
        data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier},
    )
    assert token.status_code == 200, token.text
    claims = claims_of(token.json()["id_token"])
    with transaction(fd.engine, readonly=True) as conn:
        auth_time = conn.execute(select(Session.auth_time).where(Session.user_id == bob[0])).scalar_one()
    assert claims["sub"] == bob[0]
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert claims["sid"] == bobs_session_id(fd, bob[0])
    assert claims["auth_time"] == auth_time


async def test_resuming_after_another_sign_in_starts_over_for_the_new_person(
    http, fd, person, bob, confidential, second
):
    """An interaction resumed after another person signed in (and consented before) answers with that person's
    code, never one for the person who began it."""
    verifier, challenge = pkce()
    login = await follow(
        http, await http.get("/authorize", params=authorize_params(confidential, challenge, scope=SCOPE))
    )
    # Alice's password is accepted, but the browser is sent on only later: the interaction is bound to her sign-in.
    signed = await sign_in_form(http, login, *person)
    assert signed.status_code == 303
    resume_url = signed.headers["location"]
    bob_done = await bob_signs_in_elsewhere(http, confidential, bob[1])
    await press(http, bob_done)  # Bob consents to this client in his own request
    response = await http.get(resume_url)
    assert response.status_code == 303, response.text
    code = query(response.headers["location"])["code"]
    token = await http.post(
        "/token",
        auth=basic(confidential),
        data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier},
    )
    claims = claims_of(token.json()["id_token"])
    assert claims["sub"] == bob[0]
    assert claims["sid"] == bobs_session_id(fd, bob[0])


async def test_allow_after_the_session_ended_asks_to_sign_in_again(http, fd, person, confidential):
    """Allow pressed after the sign-in's session ended (signed out elsewhere) leads to sign-in, not to a code
    with made-up facts."""
    consent, _ = await alice_at_consent(http, confidential, person)
    with transaction(fd.engine) as conn:
        conn.execute(delete(Session))
    response = await press(http, consent)
    assert response.status_code == 303, response.text
    assert re.fullmatch(r"/interaction/[^/]+/login", response.headers["location"]), response.headers["location"]


async def test_deny_after_another_sign_in_still_denies(http, person, bob, confidential, second):
    """Deny carries no sign-in facts: pressed on a replaced sign-in's page it still answers access_denied."""
    consent, _ = await alice_at_consent(http, confidential, person)
    await bob_signs_in_elsewhere(http, second, bob[1])
    response = await press(http, consent, "deny")
    assert response.status_code == 303
    assert query(response.headers["location"])["error"] == "access_denied"


async def test_allow_in_the_same_session_still_issues_the_code(http, fd, person, confidential):
    """Control: with the sign-in's own session still in the browser, Allow issues the code with its sid."""
    consent, _ = await alice_at_consent(http, confidential, person)
    response = await press(http, consent)
    assert "code" in query(response.headers["location"])
