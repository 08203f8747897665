"""The pure rules behind the email pages: which link works and why not, what a sign-up form lacks, a lifetime in
words, and the compare-and-set that uses a link once (issue 16, item 5)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frontdesk.config import ConfigError
from frontdesk.config.operations import Email
from frontdesk.core import Frontdesk
from frontdesk.oauth.email_links import LinkProblem, Purpose, link_problem
from frontdesk.oauth.email_messages import duration, reset_message, verify_message
from frontdesk.oauth.signup import SignupProblem, looks_like_address, signup_problem
from frontdesk.storage.db import transaction
from frontdesk.storage.email_links import LinkRow, consume_link, insert_link

AT = 1_800_000_000


LIVE = LinkRow(
    purpose="reset",
    user_id="u1",
    email="a@example.com",
    expires_at=AT + 60,
    consumed_at=None,
    requested_by="self",
    username="a",
    current_email="a@example.com",
    disabled_at=None,
)


def row(**changes: Any) -> LinkRow:
    return replace(LIVE, **changes)


@pytest.mark.parametrize(
    ("changes", "purposes", "expected"),
    [
        ({}, (Purpose.RESET,), None),
        ({}, (Purpose.VERIFY, Purpose.SIGNUP), LinkProblem.UNKNOWN),  # a reset link is no verification link
        ({"consumed_at": AT - 1}, (Purpose.RESET,), LinkProblem.USED),
        ({"consumed_at": AT - 1, "expires_at": AT - 5}, (Purpose.RESET,), LinkProblem.USED),  # used says more
        ({"expires_at": AT}, (Purpose.RESET,), LinkProblem.EXPIRED),
        ({"disabled_at": AT - 9}, (Purpose.RESET,), LinkProblem.DISABLED),
        ({"current_email": "b@example.com"}, (Purpose.RESET,), LinkProblem.ADDRESS_CHANGED),
        ({"current_email": None}, (Purpose.RESET,), LinkProblem.ADDRESS_CHANGED),
        ({"purpose": "signup"}, (Purpose.VERIFY, Purpose.SIGNUP), None),
    ],
)
def test_what_is_wrong_with_a_link(
    changes: dict[str, Any], purposes: tuple[Purpose, ...], expected: LinkProblem | None
) -> None:
    assert link_problem(row(**changes), purposes, AT) is expected


def test_no_link_at_all_is_an_unknown_one() -> None:
    assert link_problem(None, (Purpose.RESET,), AT) is LinkProblem.UNKNOWN


@pytest.mark.parametrize(
    ("username", "email", "password", "repeated", "expected"),
    [
        ("carol", "carol@example.com", "long enough", "long enough", None),
        ("", "carol@example.com", "long enough", "long enough", SignupProblem.USERNAME_INVALID),
        ("carol smith", "carol@example.com", "long enough", "long enough", SignupProblem.USERNAME_INVALID),
        ("çarol", "carol@example.com", "long enough", "long enough", SignupProblem.USERNAME_INVALID),
        ("carol", "carol@localhost", "long enough", "long enough", SignupProblem.EMAIL_INVALID),
        ("carol", "carol@example.com", "long enough", "long enougH", SignupProblem.NOT_REPEATED),
        ("carol", "carol@example.com", "short", "short", SignupProblem.TOO_SHORT),
    ],
)
def test_what_a_sign_up_form_lacks(
    username: str, email: str, password: str, repeated: str, expected: SignupProblem | None
) -> None:
    assert signup_problem(username, email, password, repeated) is expected


@given(st.text(max_size=400))
def test_an_address_with_a_line_break_or_space_is_never_one(text: str) -> None:
    """Whatever is accepted can be written into a To: header: no whitespace, one @, a dotted domain."""
    if looks_like_address(text):
        assert not any(c.isspace() for c in text)
        assert "@" in text
        assert len(text) <= 320


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(3600, "1 hour"), (86400, "1 day"), (7200, "2 hours"), (1800, "30 minutes"), (90, "1 minute"), (60, "1 minute")],
)
def test_a_lifetime_in_words(seconds: int, words: str) -> None:
    assert duration(seconds) == words


def test_messages_say_who_asked() -> None:
    link = "https://as.example/password/reset?t=fd_pr_x"
    by_admin = reset_message("a@example.com", "a", "https://as.example", link, 3600, "token:t1").text
    by_self = reset_message("a@example.com", "a", "https://as.example", link, 3600, "self").text
    signup = verify_message("a@example.com", "a", "https://as.example", link, 3600, "self", signup=True).text
    assert "An administrator of as.example" in by_admin
    assert "Someone asked to reset the password of your account a at as.example" in by_self
    assert "Someone created the account a at as.example" in signup
    assert all(text.count(link) == 1 for text in (by_admin, by_self, signup))


def test_an_smtp_deadline_out_of_range_is_refused_at_start() -> None:
    with pytest.raises(ConfigError, match=r"email\.timeout"):
        Email(smtp_url="smtp://127.0.0.1", from_address="a@example.com", timeout=0).check()


def test_a_link_is_used_once_however_many_try(fd: Frontdesk) -> None:
    """The compare-and-set: of several uses of one link, exactly one wins (DESIGN §4)."""
    user = fd.users.create("dora", "long enough password", email="dora@example.com")
    with transaction(fd.engine) as conn:
        insert_link(
            conn,
            digest="d" * 64,
            purpose="reset",
            user_id=user.id,
            email="dora@example.com",
            at=AT,
            expires_at=AT + 60,
            requested_by="self",
        )
    wins = []
    for _ in range(3):
        with transaction(fd.engine) as conn:
            wins.append(consume_link(conn, "d" * 64, AT + 1))
    assert wins == [True, False, False]
    with transaction(fd.engine) as conn:
        assert not consume_link(conn, "e" * 64, AT + 1)
