"""The rules for a new password on the Security page (``oauth.password.new_password_problem``), in the order the
page reports them; the page itself is tested in test_account.py."""

from __future__ import annotations

from frontdesk.oauth.password import PasswordProblem, new_password_problem

CURRENT = "correct horse battery"


def test_an_acceptable_new_password_has_no_problem():
    assert new_password_problem(CURRENT, "a new long passphrase", "a new long passphrase") is None


def test_two_different_new_passwords_are_refused_first():
    """The repeat is checked before the length: a typo is what the person must hear about."""
    assert new_password_problem(CURRENT, "short", "shorter") is PasswordProblem.NOT_REPEATED


def test_a_new_password_under_eight_characters_is_too_short():
    assert new_password_problem(CURRENT, "seven77", "seven77") is PasswordProblem.TOO_SHORT


def test_the_current_password_again_is_no_change():
    assert new_password_problem(CURRENT, CURRENT, CURRENT) is PasswordProblem.UNCHANGED
