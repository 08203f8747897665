"""Self sign-up (``[signup] enabled``, off by default) against a real SMTP server: the page exists only when it is
on; a new account cannot sign in until its address is confirmed (a sign-in before that mails a new link); the
form's problems are said in words; sign-ups are throttled per network address and audited (issue 16, item 5)."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest
from sqlalchemy import select

from accounts import follow, sign_in_form
from conftest import ISSUER, csrf_of, remember
from frontdesk.asgi import served
from frontdesk.config import RateLimits
from frontdesk.config.operations import Signup
from frontdesk.core import Frontdesk
from frontdesk.storage.db import transaction
from frontdesk.storage.schema import AuditEvent, User
from inbox import Mailbox, free_port, link_in, token_of, with_email

PASSWORD = "a long enough password"


@pytest.fixture
def fd(fd: Frontdesk, mailbox: Mailbox, secrets_seen: set[str]) -> Frontdesk:
    """Sign-up on, email set up (the app is made after this: its routes follow these settings)."""
    remember(secrets_seen, PASSWORD)
    with_email(fd, mailbox.url)
    fd.settings = replace(fd.settings, signup=Signup(enabled=True))
    return fd


@pytest.fixture
def rate_limits() -> RateLimits:
    return RateLimits(signup_per_ip=(3, 3600))


async def sign_up(
    http: httpx.AsyncClient, username: str = "carol", email: str = "carol@example.com", repeat: str = PASSWORD
) -> httpx.Response:
    form = await http.get("/signup")
    assert form.status_code == 200, form.text
    data = {
        "csrf": csrf_of(form.text),
        "username": username,
        "email": email,
        "password": PASSWORD,
        "repeat_password": repeat,
    }
    return await http.post("/signup", data=data)


async def sign_in(http: httpx.AsyncClient, username: str = "carol") -> httpx.Response:
    page = await follow(http, await http.get("/account"))
    return await sign_in_form(http, page, username, PASSWORD)


async def confirm(http: httpx.AsyncClient, link: str) -> httpx.Response:
    button = await http.get(link.removeprefix(ISSUER))
    assert button.status_code == 200, button.text
    return await http.post("/email/verify", data={"csrf": csrf_of(button.text), "t": token_of(link)})


async def test_the_sign_up_page_does_not_exist_unless_turned_on(fd: Frontdesk) -> None:
    fd.settings = replace(fd.settings, signup=Signup())
    transport = httpx.ASGITransport(app=served(fd))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        assert (await http.get("/signup")).status_code == 404
        sign_in_page = await follow(http, await http.get("/account"))
        assert "Create an account" not in sign_in_page.text


async def test_a_new_account_signs_in_only_once_its_address_is_confirmed(
    fd: Frontdesk, http: httpx.AsyncClient, mailbox: Mailbox, secrets_seen: set[str]
) -> None:
    sign_in_page = await follow(http, await http.get("/account"))
    assert 'href="/signup"' in sign_in_page.text
    done = await sign_up(http)
    assert done.status_code == 200
    assert "We sent a link to carol@example.com" in done.text
    first = mailbox.wait_for(1)[0]
    assert "Someone created the account carol" in first.get_content()
    remember(secrets_seen, token_of(link_in(first)))

    refused = await sign_in(http)
    assert refused.status_code == 403
    assert "Confirm your email address first: we sent a new link to carol@example.com" in refused.text
    second = link_in(mailbox.wait_for(2)[1])
    remember(secrets_seen, token_of(second))

    confirmed = await confirm(http, second)
    assert "Your account is ready: you can sign in now." in confirmed.text
    profile = await follow(http, await sign_in(http))
    assert profile.status_code == 200
    assert "Signed in as <strong>carol</strong>" in profile.text
    with transaction(fd.engine, readonly=True) as conn:
        audited = conn.execute(select(AuditEvent.outcome).where(AuditEvent.event == "signup")).scalars().all()
        verified = conn.execute(select(User.email_verified).where(User.username == "carol")).scalar()
    assert audited == ["success"]
    assert verified is True


@pytest.mark.parametrize(
    ("username", "email", "repeat", "words"),
    [
        ("carol smith", "carol@example.com", PASSWORD, "Choose a username of letters"),
        ("alice", "carol@example.com", PASSWORD, "That username is taken"),
        ("carol", "not-an-address", PASSWORD, "does not look like an email address"),
        ("carol", "carol@example.com", "something else", "not the same"),
    ],
)
async def test_a_sign_up_form_with_a_problem_says_which(
    fd: Frontdesk,
    http: httpx.AsyncClient,
    person: tuple[str, str],
    mailbox: Mailbox,
    username: str,
    email: str,
    repeat: str,
    words: str,
) -> None:
    refused = await sign_up(http, username, email, repeat)
    assert refused.status_code == 400
    assert words in refused.text
    assert mailbox.messages == []


async def test_the_sign_up_form_needs_its_csrf_cookie(fd: Frontdesk, http: httpx.AsyncClient) -> None:
    form = await http.get("/signup")
    http.cookies.clear()
    data = {"csrf": csrf_of(form.text), "username": "carol", "email": "carol@example.com", "password": PASSWORD}
    assert (await http.post("/signup", data={**data, "repeat_password": PASSWORD})).status_code == 403


async def test_sign_ups_are_throttled_per_network_address(
    fd: Frontdesk, http: httpx.AsyncClient, mailbox: Mailbox, secrets_seen: set[str]
) -> None:
    for n in range(3):
        assert (await sign_up(http, f"user{n}", f"user{n}@example.com")).status_code == 200
    refused = await sign_up(http, "user3", "user3@example.com")
    assert refused.status_code == 429
    assert "Wait" in refused.text
    remember(secrets_seen, *(token_of(link_in(m)) for m in mailbox.wait_for(3)))


async def test_without_email_set_up_a_new_account_is_ready_at_once(fd: Frontdesk, http: httpx.AsyncClient) -> None:
    with_email(fd, "")
    done = await sign_up(http)
    assert "Your account carol is ready" in done.text
    profile = await follow(http, await sign_in(http))
    assert "Signed in as <strong>carol</strong>" in profile.text


async def test_a_mail_server_that_is_down_at_sign_up_is_said_in_words(fd: Frontdesk, http: httpx.AsyncClient) -> None:
    with_email(fd, f"smtp://127.0.0.1:{free_port()}")
    done = await sign_up(http)
    assert done.status_code == 503
    assert "we could not send the email that confirms your address: the mail server could not be reached" in done.text
    refused = await sign_in(http)
    assert refused.status_code == 403
    assert "We could not send you a new link" in refused.text


@pytest.mark.parametrize("path", ["/password/forgot", "/password/reset", "/email/verify", "/signup"])
@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"t": "x"}'),
        ("application/x-www-form-urlencoded", b"t=%00&csrf=%ff%fe&login=" + b"a" * 5000),
        ("application/x-www-form-urlencoded", b"t=" + b"x" * 70000),
        ("application/x-www-form-urlencoded", b"csrf=&t=&&&==&login"),
    ],
)
async def test_bad_input_to_the_email_pages_is_a_4xx_in_words(
    fd: Frontdesk, http: httpx.AsyncClient, path: str, content_type: str, body: bytes
) -> None:
    await http.get("/signup")  # a form binding cookie, as a browser would hold
    answer = await http.post(path, content=body, headers={"Content-Type": content_type})
    assert 400 <= answer.status_code < 500
    assert "<p" in answer.text
