"""A person is told by email when a way into their account changes (OWASP ASVS 4.0.3 §2.2.3): the password changed
or reset, the second step turned on or off (by them, by an administrator, or while signing in), a passkey added or
removed. Only a confirmed address hears of it; the message carries no link; a mail server that fails changes
nothing but the audit trail (``oauth.security_notices``)."""

from __future__ import annotations

import re
from dataclasses import replace
from email.message import EmailMessage

import httpx
import pytest
from sqlalchemy import update

from accounts import Authenticator, account_page, add_passkey
from conftest import ISSUER, Browser, Registered, csrf_of, remember
from frontdesk.admin.people import remove_second_factor
from frontdesk.admin.principals import CLI
from frontdesk.config import SecondFactorPolicy
from frontdesk.core import Frontdesk
from frontdesk.oauth.email_links import start_password_reset
from frontdesk.storage import audit
from frontdesk.storage.db import transaction
from frontdesk.storage.schema import User
from inbox import Mailbox, free_port, link_in, token_of, with_email
from test_second_factor import enrol, enrol_during_sign_in, start

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def fd(fd: Frontdesk, mailbox: Mailbox, secrets_seen: set[str]) -> Frontdesk:
    remember(secrets_seen, NEW_PASSWORD)
    return with_email(fd, mailbox.url)


def confirmed(fd: Frontdesk, username: str = "alice") -> str:
    """Mark the person's address confirmed, as following a verification link does; their id."""
    with transaction(fd.engine) as conn:
        conn.execute(update(User).where(User.username == username).values(email_verified=True))
        return str(conn.execute(User.__table__.select().where(User.username == username)).one().id)


def notices(fd: Frontdesk) -> list[audit.AuditRecord]:
    return [e for e in reversed(audit.tail(fd.engine, 200)) if e.event == "security.notice"]


def the_notice(mailbox: Mailbox, before: int = 0) -> EmailMessage:
    """The one message that arrived after the first ``before``: a notice, to alice, with no link in it."""
    messages = mailbox.messages[before:]
    assert len(messages) == 1, [m["Subject"] for m in messages]
    [message] = messages
    assert message["To"] == "alice@example.com"
    body = message.get_content()
    assert "Hello alice," in body
    assert "http" not in body.replace(f"{ISSUER}/password/forgot", "")  # no link but where to take it back
    assert "If you did not, someone may be using your account" in body
    return message


async def change_password(http: httpx.AsyncClient, current: str) -> httpx.Response:
    page = await http.get("/account/security")
    data = {"csrf": csrf_of(page.text), "current_password": current, "new_password": NEW_PASSWORD}
    return await http.post("/account/password", data={**data, "repeat_password": NEW_PASSWORD})


async def test_a_password_changed_on_the_account_page_is_told_to_the_confirmed_address(
    fd: Frontdesk, http: httpx.AsyncClient, person: tuple[str, str], mailbox: Mailbox
) -> None:
    user_id = confirmed(fd)
    await account_page(http, *person)
    assert (await change_password(http, person[1])).status_code == 303
    message = the_notice(mailbox)
    assert message["Subject"] == "Your password at as.example was changed"
    assert "The password of your account alice at as.example was changed on the account page." in (
        message.get_content()
    )
    [told] = notices(fd)
    assert (told.outcome, told.user_id, told.detail["change"]) == ("success", user_id, "password_changed")


async def test_an_address_not_confirmed_hears_nothing(
    fd: Frontdesk, http: httpx.AsyncClient, person: tuple[str, str], mailbox: Mailbox
) -> None:
    """A mistyped address at sign-up must not learn of someone else's account."""
    await account_page(http, *person)
    assert (await change_password(http, person[1])).status_code == 303
    assert mailbox.messages == []  # the change's answer comes after the mail server's, had there been one
    assert notices(fd) == []


async def test_a_reset_password_is_told_after_the_link(
    fd: Frontdesk, http: httpx.AsyncClient, person: tuple[str, str], mailbox: Mailbox, secrets_seen: set[str]
) -> None:
    """The reset link confirms the address (it reached it), and the notice follows the reset."""
    start_password_reset(fd, confirmed(fd), requested_by="self")
    link = link_in(mailbox.wait_for(1)[0])
    remember(secrets_seen, token_of(link))
    form = await http.get(link.removeprefix(ISSUER))
    data = {"csrf": csrf_of(form.text), "t": token_of(link), "new_password": NEW_PASSWORD}
    assert (await http.post("/password/reset", data={**data, "repeat_password": NEW_PASSWORD})).status_code == 200
    message = the_notice(mailbox, before=1)
    assert message["Subject"] == "Your password at as.example was reset"
    assert "was reset with a link sent to this address" in message.get_content()
    assert [n.detail["change"] for n in notices(fd)] == ["password_reset"]


async def test_the_second_step_turned_on_and_off_is_told(
    fd: Frontdesk, http: httpx.AsyncClient, person: tuple[str, str], mailbox: Mailbox, secrets_seen: set[str]
) -> None:
    confirmed(fd)
    await enrol(http, person, secrets_seen)
    on = the_notice(mailbox)
    assert on["Subject"] == "A second sign-in step was turned on at as.example"
    assert "the app was set up on the account page" in on.get_content()
    security = await http.get("/account/security")
    assert (await http.post("/account/second-factor/remove", data={"csrf": csrf_of(security.text)})).status_code == 303
    off = the_notice(mailbox, before=1)
    assert off["Subject"] == "The second sign-in step was turned off at as.example"
    assert "its recovery codes were removed on the account page" in off.get_content()
    assert sorted(n.detail["change"] for n in notices(fd)) == ["second_factor_off", "second_factor_on"]


async def test_a_second_step_removed_by_an_administrator_says_so(
    fd: Frontdesk, http: httpx.AsyncClient, person: tuple[str, str], mailbox: Mailbox, secrets_seen: set[str]
) -> None:
    user_id = confirmed(fd)
    await enrol(http, person, secrets_seen)
    remove_second_factor(fd, CLI, user_id)
    assert "its recovery codes were removed by an administrator" in the_notice(mailbox, before=1).get_content()


async def test_a_passkey_added_and_removed_is_told_by_its_name(
    fd: Frontdesk, http: httpx.AsyncClient, person: tuple[str, str], mailbox: Mailbox
) -> None:
    confirmed(fd)
    await account_page(http, *person)
    added, _ = await add_passkey(http, Authenticator(), name="Work laptop")
    assert added.status_code == 303, added.text
    message = the_notice(mailbox)
    assert message["Subject"] == "A passkey was added to your account at as.example"
    assert 'A passkey named "Work laptop" was added to your account alice' in message.get_content()
    security = await http.get("/account/security")
    passkey_id = re.findall(r'name="passkey" value="([0-9a-f]+)"', security.text)[0]
    removed = await http.post("/account/passkeys/remove", data={"csrf": csrf_of(security.text), "passkey": passkey_id})
    assert removed.status_code == 303
    assert 'The passkey named "Work laptop" was removed' in the_notice(mailbox, before=1).get_content()


async def test_enrolment_while_signing_in_is_told(
    fd: Frontdesk, browser: Browser, confidential: Registered, mailbox: Mailbox, secrets_seen: set[str]
) -> None:
    """An operator's policy that asks everyone for a second step has the person set it up at sign-in."""
    fd.settings = replace(fd.settings, second_factor=SecondFactorPolicy(required="all"))
    confirmed(fd, browser.username)
    page, _ = await start(browser, confidential)
    await enrol_during_sign_in(browser.http, page, secrets_seen)
    message = mailbox.wait_for(1)[0]
    assert message["Subject"] == "A second sign-in step was turned on at as.example"
    assert "the app was set up while signing in" in message.get_content()


async def test_a_mail_server_that_fails_changes_nothing_but_the_audit(
    fd: Frontdesk, http: httpx.AsyncClient, person: tuple[str, str]
) -> None:
    """The change stands and the page answers as ever; the failed notice is in the audit trail, with why."""
    user_id = confirmed(fd)
    with_email(fd, f"smtp://127.0.0.1:{free_port()}", timeout=2)  # nobody listens there
    await account_page(http, *person)
    assert (await change_password(http, person[1])).status_code == 303
    assert fd.users.authenticate("alice", NEW_PASSWORD) is not None
    [told] = notices(fd)
    assert (told.outcome, told.user_id, told.detail["change"]) == ("failure", user_id, "password_changed")
    assert told.detail["reason"]
