"""A person changing their address on the account page (it is no longer verified, the links sent to the old one
stop working, the old one is told, a link to confirm the new one is mailed), the account's activity in words, and
the purge of expired links (issue 16, item 5)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from accounts import account_page
from conftest import ISSUER, Clock, csrf_of, remember
from frontdesk.core import Frontdesk
from frontdesk.oauth.email_links import start_email_verification, start_password_reset
from frontdesk.oauth.housekeeping import purge
from frontdesk.storage.db import transaction
from frontdesk.storage.schema import AuditEvent, EmailLink, User
from inbox import Mailbox, link_in, token_of, with_email


@pytest.fixture
def fd(fd: Frontdesk, mailbox: Mailbox) -> Frontdesk:
    return with_email(fd, mailbox.url)


def alice(fd: Frontdesk) -> tuple[str, str | None, bool]:
    with transaction(fd.engine, readonly=True) as conn:
        row = conn.execute(select(User.id, User.email, User.email_verified).where(User.username == "alice")).one()
    return row.id, row.email, bool(row.email_verified)


async def confirm(http: httpx.AsyncClient, link: str) -> httpx.Response:
    button = await http.get(link.removeprefix(ISSUER))
    assert button.status_code == 200, button.text
    return await http.post("/email/verify", data={"csrf": csrf_of(button.text), "t": token_of(link)})


async def test_a_new_address_is_unconfirmed_and_the_old_links_stop_working(
    fd: Frontdesk, http: httpx.AsyncClient, person: tuple[str, str], mailbox: Mailbox, secrets_seen: set[str]
) -> None:
    user_id, _, _ = alice(fd)
    start_email_verification(fd, user_id, requested_by="self")
    start_password_reset(fd, user_id, requested_by="self")
    old_verify, old_reset = (link_in(m) for m in mailbox.wait_for(2))
    remember(secrets_seen, token_of(old_verify), token_of(old_reset))
    assert (await confirm(http, old_verify)).status_code == 200
    assert alice(fd)[1:] == ("alice@example.com", True)

    profile = await account_page(http, *person)
    changed = await http.post("/account/email", data={"csrf": csrf_of(profile.text), "email": "alice@new.example"})
    assert changed.status_code == 200
    assert "Your address is now alice@new.example. We sent a link to it" in changed.text
    assert alice(fd)[1:] == ("alice@new.example", False)
    notice, confirmation = mailbox.wait_for(4)[2:]
    assert notice["To"] == "alice@example.com"  # the old address hears of it, and is given no link
    assert "was changed on the account page to alice@new.example" in notice.get_content()
    assert "?t=" not in notice.get_content()
    assert confirmation["To"] == "alice@new.example"
    new_link = link_in(confirmation)
    remember(secrets_seen, token_of(new_link))

    refused = await http.get(old_reset.removeprefix(ISSUER))
    assert refused.status_code == 400
    assert "no longer has" in refused.text
    assert (await confirm(http, new_link)).status_code == 200
    assert alice(fd)[1:] == ("alice@new.example", True)


async def test_an_address_that_is_not_one_is_refused_in_words(
    fd: Frontdesk, http: httpx.AsyncClient, person: tuple[str, str], mailbox: Mailbox
) -> None:
    profile = await account_page(http, *person)
    refused = await http.post("/account/email", data={"csrf": csrf_of(profile.text), "email": "alice at home"})
    assert refused.status_code == 400
    assert "does not look like an email address" in refused.text
    assert alice(fd)[1] == "alice@example.com"
    assert mailbox.messages == []


async def test_the_activity_page_tells_the_person_what_happened_in_words(
    fd: Frontdesk, http: httpx.AsyncClient, person: tuple[str, str], mailbox: Mailbox, secrets_seen: set[str]
) -> None:
    start_password_reset(fd, alice(fd)[0], requested_by="token:t1")
    remember(secrets_seen, token_of(link_in(mailbox.wait_for(1)[0])))
    activity = await account_page(http, *person, path="/account/activity")
    assert "A link to choose a new password was emailed to you at an administrator&#39;s request" in activity.text


async def test_links_are_purged_a_day_after_they_expire(
    fd: Frontdesk, person: tuple[str, str], mailbox: Mailbox, secrets_seen: set[str], clock: Clock
) -> None:
    start_password_reset(fd, alice(fd)[0], requested_by="self")
    remember(secrets_seen, token_of(link_in(mailbox.wait_for(1)[0])))
    clock.advance(fd.settings.email.reset_link_lifetime + 3600)
    assert purge(fd).deleted["email_links"] == 0
    clock.advance(86400)
    assert purge(fd).deleted["email_links"] == 1
    with transaction(fd.engine, readonly=True) as conn:
        assert conn.execute(select(EmailLink)).first() is None
        assert conn.execute(select(AuditEvent).where(AuditEvent.event == "password.reset_sent")).first() is not None
