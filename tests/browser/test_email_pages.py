"""Password reset by email in real headless Chromium, against ``frontdesk serve`` with ``[email]`` pointed at a
real SMTP server (aiosmtpd): "Forgot your password?" from the sign-in page, the message, the link, a new password,
and signing in with it (issue 16, item 5)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from inbox import Mailbox, link_in, token_of
from servers import Server

from .conftest import Account

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def frontdesk(mailing_frontdesk: Server) -> Server:
    """frontdesk in its own process, mailing through the module's SMTP server (tests/browser/conftest.py)."""
    return mailing_frontdesk


@pytest.fixture
def account(frontdesk: Server) -> Account:
    username = "person-" + secrets.token_hex(4)
    password = secrets.token_urlsafe(16)
    frontdesk.cli(
        "user",
        "create",
        "--username",
        username,
        "--email",
        f"{username}@example.com",
        "--password-stdin",
        stdin=password,
    )
    return Account(username, password)


def sign_in(page: Page, username: str, password: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_forgot_password_then_the_emailed_link_then_sign_in_with_the_new_password(
    page: Page, frontdesk: Server, account: Account, mailbox: Mailbox, screenshots: Path
) -> None:
    already = len(mailbox.messages)
    page.goto(frontdesk.issuer + "/account")
    page.wait_for_url("**/interaction/*/login")
    page.screenshot(path=str(screenshots / "email-sign-in.png"), full_page=True)
    page.get_by_role("link", name="Forgot your password?").click()
    page.wait_for_url(frontdesk.issuer + "/password/forgot")
    page.screenshot(path=str(screenshots / "email-forgot.png"), full_page=True)
    page.get_by_label("Username or email address").fill(f"{account.username}@example.com")
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()

    message = mailbox.wait_for(already + 1)[already]
    assert message["To"] == f"{account.username}@example.com"
    link = link_in(message)
    assert link.startswith(frontdesk.issuer + "/password/reset?t=fd_pr_")

    page.goto(link)
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    page.screenshot(path=str(screenshots / "email-reset.png"), full_page=True)
    new_password = secrets.token_urlsafe(16)
    page.get_by_label("New password", exact=True).fill(new_password)
    page.get_by_label("New password again").fill(new_password)
    page.get_by_role("button", name="Change my password").click()
    expect(page.get_by_role("heading", name="Password changed")).to_be_visible()

    page.goto(link)  # the link worked once
    expect(page.get_by_text("This link was used already.")).to_be_visible()

    page.goto(frontdesk.issuer + "/account")
    page.wait_for_url("**/interaction/*/login")
    sign_in(page, account.username, account.password)
    expect(page.get_by_text("Wrong username or password.")).to_be_visible()
    sign_in(page, account.username, new_password)
    page.wait_for_url(frontdesk.issuer + "/account")
    expect(page.get_by_text(f"Signed in as {account.username}")).to_be_visible()
    expect(page.get_by_text("(confirmed)")).to_be_visible()  # the link reached the address: it is confirmed
    page.screenshot(path=str(screenshots / "email-account.png"), full_page=True)
    assert token_of(link) not in frontdesk.log_text()
