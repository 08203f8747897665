"""Password reset and address confirmation by email, against a real SMTP server (aiosmtpd): each message arrives
and says who asked, its link works once, expired, used and voided links are refused in words, "forgot password"
tells nobody whether an account exists, sending is throttled, and ``email_verified`` reaches UserInfo (issue 16,
item 5)."""

from __future__ import annotations

import hashlib
import json
import re

import httpx
import pytest
from sqlalchemy import select, update

from accounts import account_page, follow, sign_in_form
from conftest import ISSUER, Browser, Clock, Registered, basic, code_for, csrf_of, remember
from frontdesk.config import RateLimits
from frontdesk.core import Frontdesk
from frontdesk.errors import RateLimited
from frontdesk.oauth.email_links import (
    EmailNotSent,
    EmailUnavailable,
    start_email_verification,
    start_password_reset,
)
from frontdesk.storage.db import transaction
from frontdesk.storage.schema import AuditEvent, EmailLink, User
from inbox import Mailbox, free_port, link_in, token_of, with_email

NEW_PASSWORD = "a new horse battery"


@pytest.fixture
def fd(fd: Frontdesk, mailbox: Mailbox, secrets_seen: set[str]) -> Frontdesk:
    remember(secrets_seen, NEW_PASSWORD)
    return with_email(fd, mailbox.url)


def alice_id(fd: Frontdesk) -> str:
    with transaction(fd.engine, readonly=True) as conn:
        user_id = fd.users.id_of(conn, "alice")
    assert user_id is not None
    return user_id


def events(fd: Frontdesk, name: str) -> list[tuple[str, dict[str, object]]]:
    with transaction(fd.engine, readonly=True) as conn:
        rows = conn.execute(select(AuditEvent.outcome, AuditEvent.detail).where(AuditEvent.event == name))
        return [(r.outcome, json.loads(r.detail)) for r in rows]


def sent_link(box: Mailbox, n: int, secrets_seen: set[str]) -> str:
    """The link of the n-th message (1-based), remembered as a secret."""
    link = link_in(box.wait_for(n)[n - 1])
    remember(secrets_seen, token_of(link))
    return link


async def reset_with(http: httpx.AsyncClient, link: str, password: str = NEW_PASSWORD) -> httpx.Response:
    form = await http.get(link.removeprefix(ISSUER))
    assert form.status_code == 200, form.text
    data = {"csrf": csrf_of(form.text), "t": token_of(link), "new_password": password, "repeat_password": password}
    return await http.post("/password/reset", data=data)


# --- password reset ---------------------------------------------------------------------------------------------


async def test_an_administrators_reset_arrives_and_its_link_sets_the_password_once(
    fd: Frontdesk, http: httpx.AsyncClient, person: tuple[str, str], mailbox: Mailbox, secrets_seen: set[str]
) -> None:
    start_password_reset(fd, alice_id(fd), requested_by="token:t1", ip="198.51.100.1")
    message = mailbox.wait_for(1)[0]
    assert message["To"] == "alice@example.com"
    assert message["From"] == "frontdesk@as.example"
    body = message.get_content()
    assert "An administrator of as.example" in body
    assert "within 1 hour" in body
    link = sent_link(mailbox, 1, secrets_seen)
    assert re.fullmatch(rf"{ISSUER}/password/reset\?t=fd_pr_[A-Za-z0-9_-]{{43}}", link)
    assert person[1] not in body  # the one secret in a message is its link

    done = await reset_with(http, link)
    assert done.status_code == 200
    assert "Password changed" in done.text
    assert fd.users.authenticate("alice", NEW_PASSWORD) is not None
    assert fd.users.authenticate("alice", person[1]) is None
    again = await reset_with_token(http, link)
    assert again.status_code == 410
    assert "used already" in again.text
    assert [o for o, _ in events(fd, "password.reset")] == ["success"]
    assert events(fd, "password.reset_sent") == [("success", {"by": "token:t1"})]


async def reset_with_token(http: httpx.AsyncClient, link: str) -> httpx.Response:
    """Open a used or dead link: its page refuses before any form."""
    return await http.get(link.removeprefix(ISSUER))


async def test_a_reset_signs_the_person_out_everywhere_and_ends_their_refresh_tokens(
    fd: Frontdesk,
    http: httpx.AsyncClient,
    browser: Browser,
    confidential: Registered,
    mailbox: Mailbox,
    secrets_seen: set[str],
) -> None:
    code, verifier = await code_for(browser, confidential)
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    tokens = (await http.post("/token", auth=basic(confidential), data=data)).json()
    remember(secrets_seen, tokens["refresh_token"], tokens["access_token"])
    assert (await http.get("/account")).status_code == 200  # signed in on this browser

    start_password_reset(fd, alice_id(fd), requested_by="self")
    assert (await reset_with(http, sent_link(mailbox, 1, secrets_seen))).status_code == 200

    refreshed = await http.post(
        "/token",
        auth=basic(confidential),
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"
    assert (await http.get("/account")).status_code == 303  # to sign in again


async def test_a_link_past_its_lifetime_is_refused(
    fd: Frontdesk,
    http: httpx.AsyncClient,
    person: tuple[str, str],
    mailbox: Mailbox,
    secrets_seen: set[str],
    clock: Clock,
) -> None:
    start_password_reset(fd, alice_id(fd), requested_by="self")
    link = sent_link(mailbox, 1, secrets_seen)
    clock.advance(fd.settings.email.reset_link_lifetime + 1)
    page = await reset_with_token(http, link)
    assert page.status_code == 410
    assert "expired" in page.text
    assert 'href="/password/forgot"' in page.text


async def test_a_newer_reset_link_voids_the_older_one(
    fd: Frontdesk, http: httpx.AsyncClient, person: tuple[str, str], mailbox: Mailbox, secrets_seen: set[str]
) -> None:
    start_password_reset(fd, alice_id(fd), requested_by="self")
    start_password_reset(fd, alice_id(fd), requested_by="self")
    older, newer = sent_link(mailbox, 1, secrets_seen), sent_link(mailbox, 2, secrets_seen)
    assert (await reset_with_token(http, older)).status_code == 400
    assert (await reset_with(http, newer)).status_code == 200


async def test_a_changed_address_voids_the_links_sent_to_the_old_one(
    fd: Frontdesk, http: httpx.AsyncClient, person: tuple[str, str], mailbox: Mailbox, secrets_seen: set[str]
) -> None:
    start_password_reset(fd, alice_id(fd), requested_by="self")
    link = sent_link(mailbox, 1, secrets_seen)
    with transaction(fd.engine) as conn:
        conn.execute(update(User).where(User.username == "alice").values(email="alice@elsewhere.example"))
    page = await reset_with_token(http, link)
    assert page.status_code == 400
    assert "no longer has" in page.text


async def test_links_are_kept_as_digests(
    fd: Frontdesk, person: tuple[str, str], mailbox: Mailbox, secrets_seen: set[str]
) -> None:
    """The fd fixture scans every table for the link's secret when the test ends; here, the digest is there."""
    start_password_reset(fd, alice_id(fd), requested_by="self")
    token = token_of(sent_link(mailbox, 1, secrets_seen))
    with transaction(fd.engine, readonly=True) as conn:
        digests = list(conn.execute(select(EmailLink.digest)).scalars())
    assert digests == [hashlib.sha256(token.encode()).hexdigest()]


async def test_a_wrong_csrf_field_on_the_reset_form_is_refused(
    fd: Frontdesk, http: httpx.AsyncClient, person: tuple[str, str], mailbox: Mailbox, secrets_seen: set[str]
) -> None:
    start_password_reset(fd, alice_id(fd), requested_by="self")
    token = token_of(sent_link(mailbox, 1, secrets_seen))
    data = {"csrf": "0" * 64, "t": token, "new_password": NEW_PASSWORD, "repeat_password": NEW_PASSWORD}
    assert (await http.post("/password/reset", data=data)).status_code == 403
    assert fd.users.authenticate("alice", NEW_PASSWORD) is None


async def test_two_different_new_passwords_keep_the_link_for_another_try(
    fd: Frontdesk, http: httpx.AsyncClient, person: tuple[str, str], mailbox: Mailbox, secrets_seen: set[str]
) -> None:
    start_password_reset(fd, alice_id(fd), requested_by="self")
    link = sent_link(mailbox, 1, secrets_seen)
    form = await http.get(link.removeprefix(ISSUER))
    assert "Choose a new password for the account <strong>alice</strong>" in form.text
    data = {"csrf": csrf_of(form.text), "t": token_of(link), "new_password": NEW_PASSWORD, "repeat_password": "other"}
    refused = await http.post("/password/reset", data=data)
    assert refused.status_code == 400
    assert "not the same" in refused.text
    assert (await reset_with(http, link)).status_code == 200


# --- forgot password: the same answer for everyone --------------------------------------------------------------


async def forgot(http: httpx.AsyncClient, login: str) -> httpx.Response:
    form = await http.get("/password/forgot")
    assert form.status_code == 200, form.text
    return await http.post("/password/forgot", data={"csrf": csrf_of(form.text), "login": login})


async def test_forgot_password_answers_the_same_whether_or_not_the_account_exists(
    fd: Frontdesk, http: httpx.AsyncClient, person: tuple[str, str], mailbox: Mailbox, secrets_seen: set[str]
) -> None:
    known = await forgot(http, "alice")
    unknown = await forgot(http, "nobody-here")
    by_address = await forgot(http, "ALICE@example.com")
    assert known.status_code == unknown.status_code == by_address.status_code == 200
    assert known.text == unknown.text == by_address.text
    messages = mailbox.wait_for(2)
    assert [m["To"] for m in messages] == ["alice@example.com", "alice@example.com"]
    body = messages[1].get_content()
    assert "Someone asked to reset the password of your account alice" in body
    remember(secrets_seen, *(token_of(link_in(m)) for m in messages))
    assert [o for o, _ in events(fd, "password.reset_sent")].count("failure") == 1  # the unknown one, audited


async def test_the_forgot_password_form_needs_its_csrf_cookie(fd: Frontdesk, http: httpx.AsyncClient) -> None:
    form = await http.get("/password/forgot")
    http.cookies.clear()
    refused = await http.post("/password/forgot", data={"csrf": csrf_of(form.text), "login": "alice"})
    assert refused.status_code == 403


async def test_the_sign_in_page_links_to_forgot_password(fd: Frontdesk, http: httpx.AsyncClient) -> None:
    page = await follow(http, await http.get("/account"))
    assert 'href="/password/forgot"' in page.text


@pytest.fixture
def rate_limits() -> RateLimits:
    return RateLimits(email_per_person=(2, 3600), email_per_ip=(3, 3600))


async def test_mail_to_one_person_is_throttled(
    fd: Frontdesk, person: tuple[str, str], mailbox: Mailbox, secrets_seen: set[str]
) -> None:
    for _ in range(2):
        start_password_reset(fd, alice_id(fd), requested_by="token:t1")
    with pytest.raises(RateLimited):
        start_email_verification(fd, alice_id(fd), requested_by="token:t1")
    remember(secrets_seen, *(token_of(link_in(m)) for m in mailbox.wait_for(2)))
    assert ("failure", {"by": "token:t1", "reason": "rate_limited"}) in events(fd, "email.verification_sent")


async def test_forgot_password_is_throttled_per_network_address(
    fd: Frontdesk, http: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    for _ in range(3):
        assert (await forgot(http, "nobody-here")).status_code == 200
    refused = await forgot(http, "nobody-here")
    assert refused.status_code == 429
    assert "Wait" in refused.text
    assert refused.headers["retry-after"]


# --- confirming an address --------------------------------------------------------------------------------------


async def userinfo_email(http: httpx.AsyncClient, browser: Browser, client: Registered) -> dict[str, object]:
    code, verifier = await code_for(browser, client, scope="openid email")
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    access = (await http.post("/token", auth=basic(client), data=data)).json()["access_token"]
    info = await http.get("/userinfo", headers={"Authorization": f"Bearer {access}"})
    assert info.status_code == 200, info.text
    return {k: info.json()[k] for k in ("email", "email_verified")}


async def test_confirming_the_address_from_the_account_page_sets_email_verified(
    fd: Frontdesk,
    http: httpx.AsyncClient,
    browser: Browser,
    confidential: Registered,
    mailbox: Mailbox,
    secrets_seen: set[str],
) -> None:
    assert await userinfo_email(http, browser, confidential) == {"email": "alice@example.com", "email_verified": False}
    profile = await account_page(http, "alice", "correct horse battery")
    assert "not confirmed" in profile.text
    sent = await http.post("/account/email/verify", data={"csrf": csrf_of(profile.text)})
    assert sent.status_code == 200
    assert "We sent a link to alice@example.com" in sent.text
    link = sent_link(mailbox, 1, secrets_seen)
    assert link.startswith(f"{ISSUER}/email/verify?t=fd_ev_")
    assert "You asked us to check" in mailbox.messages[0].get_content()

    button = await http.get(link.removeprefix(ISSUER))
    assert button.status_code == 200  # opening it alone changes nothing
    assert "Confirm my address" in button.text
    assert await userinfo_email(http, browser, confidential) == {"email": "alice@example.com", "email_verified": False}
    data = {"csrf": csrf_of(button.text), "t": token_of(link)}
    confirmed = await http.post("/email/verify", data=data)
    assert confirmed.status_code == 200
    assert "is confirmed" in confirmed.text
    assert await userinfo_email(http, browser, confidential) == {"email": "alice@example.com", "email_verified": True}
    assert (await http.post("/email/verify", data=data)).status_code == 410
    assert "(confirmed)" in (await http.get("/account")).text


# --- without a mail server --------------------------------------------------------------------------------------


async def test_a_mail_server_that_is_down_gets_a_plain_answer(
    fd: Frontdesk, http: httpx.AsyncClient, person: tuple[str, str]
) -> None:
    with_email(fd, f"smtp://127.0.0.1:{free_port()}")
    with pytest.raises(EmailNotSent, match="the mail server could not be reached"):
        start_password_reset(fd, alice_id(fd), requested_by="token:t1")
    profile = await account_page(http, *person)
    answer = await http.post("/account/email/verify", data={"csrf": csrf_of(profile.text)})
    assert answer.status_code == 503
    assert "The email could not be sent: the mail server could not be reached. Try again later." in answer.text
    with transaction(fd.engine, readonly=True) as conn:
        assert conn.execute(select(EmailLink)).first() is None  # nothing left that nobody received
    assert {o for o, _ in events(fd, "password.reset_sent")} == {"failure"}


async def test_without_email_set_up_nothing_offers_to_send_one(
    fd: Frontdesk, http: httpx.AsyncClient, person: tuple[str, str]
) -> None:
    with_email(fd, "")
    with pytest.raises(EmailUnavailable, match="email is not set up"):
        start_password_reset(fd, alice_id(fd), requested_by="token:t1")
    page = await http.get("/password/forgot")
    assert page.status_code == 200
    assert "not available on this server" in page.text
    sign_in = await follow(http, await http.get("/account"))
    assert "/password/forgot" not in sign_in.text
    profile = await follow(http, await sign_in_form(http, sign_in, *person))
    assert "Send me a confirmation email" not in profile.text


async def test_a_person_without_an_address_cannot_be_sent_a_link(fd: Frontdesk) -> None:
    bob = fd.users.create("bob", "correct horse battery")
    with pytest.raises(EmailUnavailable, match="bob has no email address"):
        start_password_reset(fd, bob.id, requested_by="token:t1")


async def test_forgot_password_by_address_reaches_every_account_of_it_but_a_disabled_one(
    fd: Frontdesk, http: httpx.AsyncClient, person: tuple[str, str], mailbox: Mailbox, secrets_seen: set[str]
) -> None:
    fd.users.create("alice2", "correct horse battery", email="alice@example.com")
    fd.users.create("alice3", "correct horse battery", email="alice@example.com")
    with transaction(fd.engine) as conn:
        conn.execute(update(User).where(User.username == "alice3").values(disabled_at=1))
    assert (await forgot(http, "alice@example.com")).status_code == 200
    messages = mailbox.wait_for(2)
    remember(secrets_seen, *(token_of(link_in(m)) for m in messages))
    named = sorted(m.get_content().split("your account ", 1)[1].split(" ", 1)[0] for m in messages)
    assert named == ["alice", "alice2"]
    assert (await forgot(http, "alice3")).status_code == 200
    assert len(mailbox.messages) == 2


async def test_a_message_that_failed_leaves_the_links_sent_before_it_working(
    fd: Frontdesk, http: httpx.AsyncClient, person: tuple[str, str], mailbox: Mailbox, secrets_seen: set[str]
) -> None:
    start_email_verification(fd, alice_id(fd), requested_by="self")
    delivered = sent_link(mailbox, 1, secrets_seen)
    with_email(fd, f"smtp://127.0.0.1:{free_port()}")
    with pytest.raises(EmailNotSent):
        start_email_verification(fd, alice_id(fd), requested_by="self")
    with transaction(fd.engine, readonly=True) as conn:
        assert len(conn.execute(select(EmailLink.digest)).all()) == 1  # the undelivered one is gone
    button = await http.get(delivered.removeprefix(ISSUER))
    confirmed = await http.post("/email/verify", data={"csrf": csrf_of(button.text), "t": token_of(delivered)})
    assert confirmed.status_code == 200
