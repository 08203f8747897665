"""The admin API's people (admin/people.py behind /admin/api/v1/people) on SQLite and PostgreSQL: create, find by
username or email, disable (no sign-in; sessions, grants and refresh tokens end) and enable, delete, remove a
second factor, end sessions, and a password reset that says so when email is not set up."""

from __future__ import annotations

import httpx

from conftest import Browser, Registered, code_for, pkce, remember
from frontdesk.core import Frontdesk

from .admin_api import Api, events

PASSWORD = "correct horse battery"


async def _person_id(api: Api, username: str) -> str:
    [found] = (await api.get("/people", search=username)).json()["items"]
    return str(found["id"])


async def _tokens(http: httpx.AsyncClient, browser: Browser, client: Registered) -> dict[str, str]:
    code, verifier = await code_for(browser, client)
    response = await http.post(
        "/token",
        auth=(client.client_id, client.secret or ""),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": client.redirect_uri,
            "code_verifier": verifier,
        },
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, str] = response.json()
    return tokens


async def test_people_are_created_and_found_by_username_or_email(operator: Api, secrets_seen):
    remember(secrets_seen, PASSWORD)
    for name in ("bob", "carol"):
        body = {"username": name, "password": PASSWORD, "email": f"{name}@Example.com"}
        made = await operator.post("/people", body)
        assert made.status_code == 201, made.text
        assert PASSWORD not in made.text
    assert [p["username"] for p in (await operator.get("/people", search="CAROL@ex")).json()["items"]] == ["carol"]
    page = (await operator.get("/people", limit=1)).json()
    assert [p["username"] for p in page["items"]] == ["bob"]
    rest = (await operator.get("/people", limit=1, cursor=page["next_cursor"])).json()
    assert [p["username"] for p in rest["items"]] == ["carol"]
    assert rest["next_cursor"] is None
    again = await operator.post("/people", {"username": "bob", "password": PASSWORD})
    assert again.status_code == 409
    short = await operator.post("/people", {"username": "dave", "password": "short"})
    assert short.status_code == 422
    assert "8 characters" in short.json()["error_description"]


async def test_a_disabled_person_cannot_sign_in_and_loses_what_they_held(
    operator: Api, http: httpx.AsyncClient, browser: Browser, confidential: Registered, fd: Frontdesk
):
    tokens = await _tokens(http, browser, confidential)
    user_id = await _person_id(operator, "alice")
    disabled = await operator.patch(f"/people/{user_id}", {"disabled": True})
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["person"]["disabled"] is True
    refreshed = await http.post(
        "/token",
        auth=(confidential.client_id, confidential.secret or ""),
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"
    http.cookies.clear()
    _, challenge = pkce()
    page = await browser.authorize(
        response_type="code",
        client_id=confidential.client_id,
        redirect_uri=confidential.redirect_uri,
        scope="openid",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    assert page.status_code != 303  # the sign-in page again, not a code
    assert 'name="password"' in page.text
    [refused] = [e for e in events(fd, "signin") if e.outcome == "failure"]
    assert refused.detail["reason"] == "disabled"
    [audited] = events(fd, "admin.person.disabled")
    assert audited.user_id == user_id
    enabled = await operator.patch(f"/people/{user_id}", {"disabled": False})
    assert enabled.json()["person"]["disabled"] is False
    assert await code_for(browser, confidential)


async def test_sessions_end_and_a_deleted_person_is_gone(
    operator: Api, http: httpx.AsyncClient, browser: Browser, confidential: Registered
):
    await code_for(browser, confidential)
    user_id = await _person_id(operator, "alice")
    ended = await operator.delete(f"/people/{user_id}/sessions")
    assert ended.json() == {"sessions": 1}
    assert (await operator.delete(f"/people/{user_id}")).status_code == 204
    assert (await operator.get(f"/people/{user_id}")).status_code == 404
    assert (await operator.delete(f"/people/{user_id}")).status_code == 404


async def test_a_second_factor_that_is_not_there_cannot_be_removed(operator: Api, person):
    user_id = await _person_id(operator, "alice")
    refused = await operator.delete(f"/people/{user_id}/second-factor")
    assert refused.status_code == 409
    assert refused.json()["error_description"] == "this person has no second factor"


async def test_a_password_reset_without_email_set_up_says_so(operator: Api, person):
    user_id = await _person_id(operator, "alice")
    refused = await operator.post(f"/people/{user_id}/password-reset")
    assert refused.status_code == 409
    assert refused.json()["error"] == "unavailable"
    assert "email" in refused.json()["error_description"]


async def test_a_lost_authenticator_is_removed(operator: Api, fd: Frontdesk, person, secrets_seen):
    """After an operator removes it, the person has no second factor (and may enrol again); audited."""
    from accounts import totp_code
    from frontdesk.oauth.second_factor import enrol, start_enrolment
    from frontdesk.storage.db import transaction

    user_id = await _person_id(operator, "alice")
    with transaction(fd.engine, readonly=True) as conn:
        alice = fd.users.by_id(conn, user_id)
    assert alice is not None
    enrolment = start_enrolment(fd, alice)
    assert enrolment is not None
    remember(secrets_seen, enrolment.secret.value)
    codes = enrol(fd, user_id, totp_code(enrolment.secret.value), None)
    assert codes is not None
    remember(secrets_seen, *codes)
    assert (await operator.get(f"/people/{user_id}")).json()["person"]["second_factor"] is True
    assert (await operator.delete(f"/people/{user_id}/second-factor")).status_code == 204
    assert (await operator.get(f"/people/{user_id}")).json()["person"]["second_factor"] is False
    [removed] = events(fd, "admin.person.second_factor_removed")
    assert removed.user_id == user_id


def test_no_first_factor_signs_a_disabled_person_in(fd: Frontdesk, person):
    """A passkey or another provider (after_first_factor) sends a disabled person back to the sign-in page, with no
    session opened; audited as a refused sign-in."""
    from frontdesk.admin.people import disable_person, find_person
    from frontdesk.admin.principals import CLI
    from frontdesk.oauth.outcomes import Redirect
    from frontdesk.oauth.signin import Visit, after_first_factor
    from frontdesk.storage.db import now, transaction
    from frontdesk.storage.interactions import open_interaction

    alice = find_person(fd, CLI, "alice")
    disable_person(fd, CLI, alice.id)
    params = {"kind": "account", "return_to": "/account"}
    with transaction(fd.engine) as conn:
        ix_id, _ = open_interaction(conn, params, now(), 600)
    outcome = after_first_factor(fd, ix_id, params, alice.id, ("hwk",), Visit(None, "198.51.100.9", None))
    assert outcome == Redirect(f"/interaction/{ix_id}/login")
    [refused] = [e for e in events(fd, "signin") if e.outcome == "failure"]
    assert refused.detail["reason"] == "disabled"
    assert refused.ip == "198.51.100.9"


async def test_a_changed_address_must_be_verified_again(operator: Api, fd: Frontdesk, person):
    from sqlalchemy import update

    from frontdesk.storage.db import transaction
    from frontdesk.storage.schema import User

    user_id = await _person_id(operator, "alice")
    with transaction(fd.engine) as conn:
        conn.execute(update(User).where(User.id == user_id).values(email_verified=True))
    same = await operator.patch(f"/people/{user_id}", {"name": "Alice Liddell"})
    assert same.json()["person"]["name"] == "Alice Liddell"
    assert same.json()["person"]["email_verified"] is True
    moved = await operator.patch(f"/people/{user_id}", {"email": "alice@new.example"})
    assert moved.json()["person"]["email"] == "alice@new.example"
    assert moved.json()["person"]["email_verified"] is False
    assert (await operator.patch(f"/people/{user_id}", {"email": "not an address"})).status_code == 422
    assert [e.detail["fields"] for e in events(fd, "admin.person.updated")] == [["name"], ["email"]]
