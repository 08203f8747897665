"""The admin console over HTTP in process (issue 16, item 2), on SQLite and PostgreSQL: who may enter (signed in,
an admin role, a second factor), the auditor who only reads, CSRF on every form, and the People pages."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from accounts import account_page, follow, post_code, recovery_codes_on, secret_on, sign_in_form, totp_code
from conftest import ISSUER, remember
from frontdesk.config import Admin as AdminSettings
from frontdesk.protocol import rfc6238
from frontdesk.storage.db import transaction
from frontdesk.storage.schema import AuditEvent, Session
from inbox import link_in, mailbox_at, token_of, with_email

from .console import console, continue_link, forms_of, give_role, post


@pytest.fixture
def operator(fd, person) -> tuple[str, str]:
    give_role(fd, person[0], "operator")
    return person


@pytest.fixture
def bob(fd, secrets_seen) -> str:
    """Another person, with an email address, for the People pages to act on; their id."""
    remember(secrets_seen, "bob's long password")
    return fd.users.create("bob", "bob's long password", email="bob@example.com", name="Bob Example").id


def events(fd, name: str) -> list[Any]:
    """The audit rows of event ``name``."""
    with transaction(fd.engine, readonly=True) as conn:
        return list(conn.execute(select(AuditEvent).where(AuditEvent.event == name)).all())


# --- who may enter ----------------------------------------------------------------------------------------------


async def test_anonymous_visitor_signs_in_then_returns(http, operator):
    """/admin without a session goes to the sign-in page, and after it back to /admin."""
    first = await http.get("/admin/people?q=bo")
    assert first.status_code == 303
    assert re.fullmatch(r"/interaction/[^/]+/login", first.headers["location"])
    login = await http.get(first.headers["location"])
    done = await follow(http, await sign_in_form(http, login, *operator))
    # Signed in with a password only: the console asks for the second step before anything else.
    assert done.status_code == 403
    assert "A second step is needed" in done.text
    assert "Bob" not in done.text
    assert "<nav" not in done.text


async def test_second_step_brings_the_admin_back_to_the_page(http, operator, secrets_seen):
    """After enrolling an app at the second step, the admin lands on the page first asked for."""
    page = await console(http, *operator, secrets_seen, "/admin/people?q=ali")
    assert page.status_code == 200, page.text
    assert "<h1>People</h1>" in page.text
    assert 'value="ali"' in page.text
    assert ">alice</a>" in page.text


async def test_person_without_a_role_is_refused(http, person):
    """A signed-in person who holds no admin role gets a plain 403 page, not the second step."""
    page = await console(http, *person, set())
    assert page.status_code == 403
    assert "Your account has no admin role" in page.text
    assert "<nav" not in page.text


async def test_disabled_admin_is_refused(http, fd, operator, secrets_seen):
    """Disabling a person takes their role with it: the console is closed to them."""
    from frontdesk.admin.people import disable_person
    from frontdesk.admin.principals import CLI

    assert (await console(http, *operator, secrets_seen)).status_code == 200
    disable_person(fd, CLI, fd.users.authenticate(*operator).id)
    # Disabling ended the session: the console sends the browser to sign in, where the password no longer works.
    again = await http.get("/admin")
    assert again.status_code == 303
    assert re.fullmatch(r"/interaction/[^/]+/login", again.headers["location"])
    refused = await sign_in_form(http, await http.get(again.headers["location"]), *operator)
    assert refused.status_code != 303


@pytest.fixture
def no_second_factor(fd):
    fd.settings = replace(fd.settings, admin=AdminSettings(console_requires_second_factor=False))
    return fd


async def test_second_factor_can_be_waived_by_configuration(http, no_second_factor, operator):
    """With console_requires_second_factor = false, a password session enters."""
    page = await console(http, *operator, set())
    assert page.status_code == 200
    assert "<h1>Overview</h1>" in page.text


async def test_console_turned_off_is_not_found(http, fd, operator, secrets_seen):
    """With [admin] console = false the console's pages answer 404, whoever asks."""
    assert (await console(http, *operator, secrets_seen)).status_code == 200
    fd.settings = replace(fd.settings, admin=AdminSettings(console=False))
    assert (await http.get("/admin")).status_code == 404


async def test_console_pages_are_not_cached_and_cannot_be_framed(http, operator, secrets_seen):
    """Console pages are no-store, unframeable, load no script and nothing from another origin."""
    page = await console(http, *operator, secrets_seen)
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "script-src" not in page.headers["content-security-policy"]
    assert "<script" not in page.text
    assert not re.search(r'(src|href)="(https?:)?//', page.text)


# --- the auditor reads only -------------------------------------------------------------------------------------


@pytest.fixture
def auditor(fd, person) -> tuple[str, str]:
    give_role(fd, person[0], "auditor")
    return person


async def test_auditor_sees_no_form(http, auditor, bob, secrets_seen):
    """An auditor's person page shows the facts and no form to change anything."""
    page = await console(http, *auditor, secrets_seen, f"/admin/people/{bob}")
    assert page.status_code == 200
    assert "bob@example.com" in page.text
    assert forms_of(page.text) == []
    assert "read only" in page.text


async def test_auditor_post_is_refused(http, fd, auditor, bob, secrets_seen):
    """An auditor's POST (even with a good CSRF token) is a 403 and changes nothing."""
    page = await console(http, *auditor, secrets_seen, f"/admin/people/{bob}")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    csrf = token[1] if token else ""
    response = await http.post(f"/admin/people/{bob}/disable", data={"csrf": csrf})
    assert response.status_code == 403
    assert "Your role lets you look" in response.text
    assert fd.users.authenticate("bob", "bob's long password") is not None


# --- CSRF -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action", ["disable", "enable", "password-reset", "verify-email", "remove-second-factor", "end-sessions", "delete"]
)
async def test_every_person_form_needs_the_csrf_token(http, operator, bob, secrets_seen, action):
    """A console POST without the console's CSRF token is a 403 page and changes nothing."""
    page = await console(http, *operator, secrets_seen)
    assert page.status_code == 200
    response = await http.post(f"/admin/people/{bob}/{action}", data={"csrf": "not-it"})
    assert response.status_code == 403
    assert "This form has expired" in response.text


async def test_the_account_pages_token_is_not_the_consoles(http, operator, bob, secrets_seen):
    """The account pages' CSRF token does not work on a console form."""
    await console(http, *operator, secrets_seen)
    account = await http.get("/account/sessions")
    token = re.search(r'name="csrf" value="([^"]+)"', account.text)
    assert token
    response = await http.post(f"/admin/people/{bob}/disable", data={"csrf": token[1]})
    assert response.status_code == 403


async def test_anonymous_post_changes_nothing(http, bob):
    """A POST without a session goes to sign in, and nothing happens."""
    response = await http.post(f"/admin/people/{bob}/disable", data={"csrf": "x"})
    assert response.status_code == 303
    assert "/interaction/" in response.headers["location"]


# --- people -----------------------------------------------------------------------------------------------------


async def test_find_a_person_by_email(http, operator, bob, secrets_seen):
    page = await console(http, *operator, secrets_seen, "/admin/people?q=bob%40example")
    assert f'href="/admin/people/{bob}">bob</a>' in page.text
    assert ">alice</a>" not in page.text


async def test_finding_nobody_says_so(http, operator, secrets_seen):
    page = await console(http, *operator, secrets_seen, "/admin/people?q=nobody-here")
    assert "Nobody's username or email contains “nobody-here”." in page.text


async def test_unknown_person_is_a_404_page(http, operator, secrets_seen):
    page = await console(http, *operator, secrets_seen, "/admin/people/0123456789abcdef")
    assert page.status_code == 404


async def test_disable_then_enable_a_person(http, fd, operator, bob, secrets_seen):
    """Disabling ends the person's sessions and stops their sign-in; enabling lets them in again; both audited."""
    page = await console(http, *operator, secrets_seen, f"/admin/people/{bob}")
    async with httpx.AsyncClient(transport=http._transport, base_url=ISSUER) as other:
        signed = await follow(
            other,
            await sign_in_form(other, await follow(other, await other.get("/account")), "bob", "bob's long password"),
        )
        assert signed.status_code == 200
    done = await post(http, page, f"/admin/people/{bob}/disable")
    assert done.status_code == 303
    page = await http.get(done.headers["location"])
    assert "The account is disabled" in page.text
    assert "Disabled</span>" in page.text
    with transaction(fd.engine, readonly=True) as conn:
        assert conn.execute(select(Session).where(Session.user_id == bob)).first() is None
    [event] = events(fd, "admin.person.disabled")
    assert event.user_id == bob
    assert f"person:{fd.users.authenticate(*operator).id}" in str(event.detail)

    done = await post(http, page, f"/admin/people/{bob}/enable")
    page = await http.get(done.headers["location"])
    assert "The account is enabled again" in page.text
    assert len(events(fd, "admin.person.enabled")) == 1


async def test_password_reset_without_email_set_up_says_so(http, fd, operator, bob, secrets_seen):
    """Without [email] smtp_url the reset cannot be sent: the page says so in words, with a 409."""
    page = await console(http, *operator, secrets_seen, f"/admin/people/{bob}")
    response = await post(http, page, f"/admin/people/{bob}/password-reset")
    assert response.status_code == 409
    assert 'role="alert"' in response.text
    assert [e.outcome for e in events(fd, "password.reset_sent")] in ([], ["failure"])


async def test_end_sessions_signs_the_person_out(http, fd, operator, bob, secrets_seen):
    page = await console(http, *operator, secrets_seen, f"/admin/people/{bob}")
    done = await post(http, page, f"/admin/people/{bob}/end-sessions")
    assert done.status_code == 303
    page = await http.get(done.headers["location"])
    assert "This person is signed out of every browser." in page.text
    assert len(events(fd, "admin.person.sessions_ended")) == 1


async def test_removing_a_missing_second_factor_is_refused(http, operator, bob, secrets_seen):
    """Bob has no second factor: the form is not offered, and posting it anyway answers 409 in words."""
    page = await console(http, *operator, secrets_seen, f"/admin/people/{bob}")
    assert f"/admin/people/{bob}/remove-second-factor" not in forms_of(page.text)
    from conftest import csrf_of

    response = await http.post(f"/admin/people/{bob}/remove-second-factor", data={"csrf": csrf_of(page.text)})
    assert response.status_code == 409
    assert "has no second factor" in response.text


async def test_removing_the_admins_own_second_factor(http, fd, operator, secrets_seen):
    """The operator's own second factor (enrolled at the console's step) can be removed by an operator; audited."""
    me = fd.users.authenticate(*operator).id
    page = await console(http, *operator, secrets_seen, f"/admin/people/{me}")
    done = await post(http, page, f"/admin/people/{me}/remove-second-factor")
    assert done.status_code == 303
    assert len(events(fd, "admin.person.second_factor_removed")) == 1


async def test_password_reset_email_goes_to_the_person(http, fd, operator, bob, secrets_seen):
    """With SMTP set up, the reset is mailed to the person (a real local SMTP server) and audited as the admin's;
    the link's secret is in the message only, never on the page."""
    with mailbox_at() as box:
        with_email(fd, box.url)
        page = await console(http, *operator, secrets_seen, f"/admin/people/{bob}")
        done = await post(http, page, f"/admin/people/{bob}/password-reset")
        assert done.status_code == 303
        [message] = box.wait_for(1)
    link = link_in(message)
    remember(secrets_seen, token_of(link))
    assert message["To"] == "bob@example.com"
    assert "/password/reset?t=" in link
    page = await http.get(done.headers["location"])
    assert "A link to choose a new password is on its way" in page.text
    assert token_of(link) not in page.text
    [asked] = events(fd, "admin.person.password_reset_requested")
    assert asked.user_id == bob
    [sent] = events(fd, "password.reset_sent")
    assert (sent.user_id, sent.outcome) == (bob, "success")


async def test_confirmation_email_goes_to_the_person(http, fd, operator, bob, secrets_seen):
    """The link that confirms an address is mailed on the admin's word, and the email event names them."""
    with mailbox_at() as box:
        with_email(fd, box.url)
        page = await console(http, *operator, secrets_seen, f"/admin/people/{bob}")
        done = await post(http, page, f"/admin/people/{bob}/verify-email")
        [message] = box.wait_for(1)
    remember(secrets_seen, token_of(link_in(message)))
    assert "/email/verify?t=" in link_in(message)
    assert "A link to confirm the address is on its way" in (await http.get(done.headers["location"])).text
    assert len(events(fd, "admin.person.verification_requested")) == 1


async def test_a_second_factor_enrolled_later_is_asked_for_not_enrolled_again(http, operator, secrets_seen):
    """A person who turned the second step on after signing in is asked for a code from their app (not to enrol
    again) before the console opens."""
    enrolment = await account_page(http, *operator, "/account/second-factor")
    secret = secret_on(enrolment)
    remember(secrets_seen, secret)
    turned_on = await post_code(http, enrolment, totp_code(secret))
    remember(secrets_seen, *recovery_codes_on(turned_on))
    needed = await follow(http, await http.get("/admin/clients"))
    assert "A second step is needed" in needed.text
    asked = await http.get(continue_link(needed))
    assert "Enter your code" in asked.text
    assert "Set up a second step" not in asked.text
    back = await follow(http, await post_code(http, asked, totp_code(secret, time.time() + rfc6238.PERIOD)))
    assert back.status_code == 200
    assert "<h1>Clients</h1>" in back.text


async def test_people_come_a_page_at_a_time(http, monkeypatch, operator, bob, secrets_seen):
    """The list pages by username: a link to the next page while there is one, keeping the search."""
    monkeypatch.setattr("frontdesk.web.admin_people.PAGE_SIZE", 1)
    page = await console(http, *operator, secrets_seen, "/admin/people?q=example")
    assert ">alice</a>" in page.text
    assert ">bob</a>" not in page.text
    following = re.search(r'<a href="(/admin/people\?q=example&amp;cursor=[^"]+)">Next page</a>', page.text)
    assert following
    rest = await http.get(following[1].replace("&amp;", "&"))
    assert ">bob</a>" in rest.text
    assert "Next page" not in rest.text


async def test_delete_a_person(http, fd, operator, bob, secrets_seen):
    """Deleting an account returns to the list, which says so; the person is gone and the deletion audited."""
    page = await console(http, *operator, secrets_seen, f"/admin/people/{bob}")
    done = await post(http, page, f"/admin/people/{bob}/delete")
    assert done.status_code == 303
    listed = await http.get(done.headers["location"])
    assert "The account is deleted" in listed.text
    assert ">bob</a>" not in listed.text
    assert fd.users.authenticate("bob", "bob's long password") is None
    assert len(events(fd, "admin.person.deleted")) == 1


async def test_an_admin_cannot_delete_themselves(http, fd, operator, secrets_seen):
    me = fd.users.authenticate(*operator).id
    page = await console(http, *operator, secrets_seen, f"/admin/people/{me}")
    refused = await post(http, page, f"/admin/people/{me}/delete")
    assert refused.status_code == 409
    assert "you cannot delete yourself" in refused.text
