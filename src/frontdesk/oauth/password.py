"""Changing a person's password: the current one is proved first, the new one must be acceptable, and every other
browser is signed out (a password change is what a person does when they fear someone else knows it).

A wrong current password is a wrong password like any other: the sign-in throttle counts it and refuses further
tries for a while (``oauth.signin_throttle``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..core import Frontdesk
from ..crypto.passwords import hash_password
from ..storage import audit
from ..storage.db import now, transaction
from ..storage.people import UserError, UserRecord, check_new_password, close_other_sessions
from .security_notices import Change, tell
from .signin_throttle import Refusal, record_failure, refusal

__all__ = ["Changed", "PasswordProblem", "change_password", "new_password_problem"]


class PasswordProblem(StrEnum):
    """Why a password change was refused, for the page to say in words."""

    WRONG_CURRENT = "wrong_current"
    NOT_REPEATED = "not_repeated"  # the two new passwords differ
    TOO_SHORT = "too_short"
    UNCHANGED = "unchanged"  # the new password is the current one


@dataclass(frozen=True, slots=True)
class Changed:
    """The password is changed, and this many other browsers were signed out."""

    sessions_signed_out: int


def new_password_problem(current: str, new: str, repeated: str) -> PasswordProblem | None:
    """What is wrong with a new password as typed twice, checked in the order the page reports it; None if nothing.
    Pure."""
    if new != repeated:
        return PasswordProblem.NOT_REPEATED
    try:
        check_new_password(new)
    except UserError:
        return PasswordProblem.TOO_SHORT
    if new == current:
        return PasswordProblem.UNCHANGED
    return None


def change_password(
    fd: Frontdesk, person: UserRecord, session_id: str, current: str, new: str, repeated: str, ip: str | None
) -> Refusal | PasswordProblem | Changed:
    """A new password, given the current one; every session but ``session_id`` (the browser asking) is closed.
    Audited as ``password.changed``: a failure for a wrong current password, a success with the sessions closed."""
    refused = refusal(fd, person.username, ip, now())
    if refused is not None:
        return refused
    if not fd.users.password_matches(person.id, current):
        record_failure(fd, person.username, ip, now())
        with transaction(fd.engine) as conn:
            audit.record(conn, "password.changed", "failure", user_id=person.id, ip=ip)
        return PasswordProblem.WRONG_CURRENT
    problem = new_password_problem(current, new, repeated)
    if problem is not None:
        return problem
    password_hash = hash_password(new)  # argon2 is slow on purpose: outside the transaction
    with transaction(fd.engine) as conn:
        fd.users.set_password(conn, person.id, password_hash)
        others = close_other_sessions(conn, person.id, session_id)
        audit.record(conn, "password.changed", "success", user_id=person.id, ip=ip, sessions_signed_out=others)
    tell(fd, person.id, Change.PASSWORD_CHANGED, ip=ip)
    return Changed(others)
