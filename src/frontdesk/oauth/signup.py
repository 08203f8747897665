"""Self sign-up (``[signup] enabled``, off by default): a person creates their own account with a username, an
email address and a password (the same rules as everywhere: ``storage.people.check_new_password``).

With ``[signup] require_verified_email`` and email set up, the new account cannot sign in until its owner follows
the link mailed to the address (``oauth.email_links``, purpose ``signup``); a sign-in with the right password
before that mails a new link (throttled like any) and says so. Sign-ups are counted per network address
(``[rate_limits] signup_per_ip``) and audited as ``signup``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..core import Frontdesk
from ..errors import RateLimited
from ..storage import audit
from ..storage.db import transaction
from ..storage.email_links import verification_pending
from ..storage.people import UserError, UserRecord, check_new_password
from .email_links import EmailNotSent, EmailUnavailable, Purpose, email_configured, send_link
from .rate_limits import Limit, count_and_check

__all__ = [
    "SignedUp",
    "SignupProblem",
    "Unconfirmed",
    "looks_like_address",
    "sign_up",
    "signup_problem",
    "unconfirmed",
]

USERNAME_CHARACTERS = "letters, digits and . _ @ + -"


class SignupProblem(StrEnum):
    """Why a sign-up form was refused, for the page to say in words."""

    USERNAME_INVALID = "username_invalid"
    USERNAME_TAKEN = "username_taken"
    EMAIL_INVALID = "email_invalid"
    NOT_REPEATED = "not_repeated"
    TOO_SHORT = "too_short"


@dataclass(frozen=True, slots=True)
class SignedUp:
    """The account exists. ``must_confirm``: it can sign in only after the emailed link; ``mail_problem``: why that
    email could not be sent (the person may sign in to get another one)."""

    username: str
    email: str
    must_confirm: bool
    mail_problem: str | None


@dataclass(frozen=True, slots=True)
class Unconfirmed:
    """A right password for an account that waits for its address to be confirmed: what to tell the person."""

    message: str


def looks_like_address(email: str) -> bool:
    """Something@somewhere.tld without spaces, up to 320 characters (RFC 5321 §4.5.3.1). The mail server is the
    judge of the rest; the link it carries proves the address. Pure."""
    local, at, domain = email.partition("@")
    return bool(at and local and "." in domain.strip(".") and len(email) <= 320 and not any(c.isspace() for c in email))


def signup_problem(username: str, email: str, password: str, repeated: str) -> SignupProblem | None:
    """What is wrong with a sign-up form, in the order the page reports it; None if nothing. Pure."""
    if not username or len(username) > 255 or not all(c.isascii() and (c.isalnum() or c in "._@+-") for c in username):
        return SignupProblem.USERNAME_INVALID
    if not looks_like_address(email):
        return SignupProblem.EMAIL_INVALID
    if password != repeated:
        return SignupProblem.NOT_REPEATED
    try:
        check_new_password(password)
    except UserError:
        return SignupProblem.TOO_SHORT
    return None


def _must_confirm(fd: Frontdesk) -> bool:
    return fd.settings.signup.require_verified_email and email_configured(fd)


def sign_up(
    fd: Frontdesk, username: str, email: str, password: str, repeated: str, ip: str | None
) -> SignedUp | SignupProblem:
    """Create the account (``RateLimited`` past ``signup_per_ip``) and mail the link that confirms its address."""
    count_and_check(fd, [Limit("signup_ip", str(ip), *fd.settings.rate_limits.signup_per_ip)])
    username, email = username.strip(), email.strip()
    problem = signup_problem(username, email, password, repeated)
    if problem is not None:
        return problem
    must_confirm = _must_confirm(fd)
    try:
        person = fd.users.create(username, password, email=email, verification_pending=must_confirm)
    except UserError:
        return SignupProblem.USERNAME_TAKEN  # the checks above passed: only a duplicate remains
    with transaction(fd.engine) as conn:
        audit.record(conn, "signup", "success", user_id=person.id, ip=ip, must_confirm=must_confirm)
    mail_problem = _send_confirmation(fd, person, ip) if email_configured(fd) else None
    return SignedUp(person.username, email, must_confirm, mail_problem)


def _send_confirmation(fd: Frontdesk, person: UserRecord, ip: str | None) -> str | None:
    """Mail the sign-up link; the plain-words reason when that failed."""
    try:
        send_link(fd, person, Purpose.SIGNUP, requested_by="self", ip=ip)
    except RateLimited:
        return "too many emails were sent to this account lately"
    except EmailNotSent as exc:
        return exc.reason
    except EmailUnavailable as exc:
        return str(exc)
    return None


def unconfirmed(fd: Frontdesk, person: UserRecord, ip: str | None) -> Unconfirmed | None:
    """For a right password: None when the account may sign in; otherwise (it signed up and has not confirmed its
    address) a new link goes to the address, and the words that say so. Audited as a refused sign-in."""
    with transaction(fd.engine, readonly=True) as conn:
        pending = verification_pending(conn, person.id)
    if not pending:
        return None
    with transaction(fd.engine) as conn:
        audit.record(conn, "signin", "failure", user_id=person.id, ip=ip, reason="address_not_confirmed")
    if person.email is None or not email_configured(fd):
        return Unconfirmed(
            "This account cannot be used until its email address is confirmed. Ask the people who run this server."
        )
    problem = _send_confirmation(fd, person, ip)
    if problem is not None:
        return Unconfirmed(f"Confirm your email address first. We could not send you a new link: {problem}.")
    return Unconfirmed(
        f"Confirm your email address first: we sent a new link to {person.email}. Open it, then sign in again."
    )
