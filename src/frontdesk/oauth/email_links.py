"""One-time links by email: confirming an address (OpenID Connect Core §5.1 ``email_verified``) and resetting a
forgotten password.

A link is ``{issuer}/email/verify?t=…`` or ``{issuer}/password/reset?t=…`` with a 256-bit random, prefixed secret
kept only as its SHA-256 digest (DESIGN §4); it is used once (one compare-and-set statement), lives
``[email] verify_link_lifetime`` or ``reset_link_lifetime`` seconds, and is bound to the address it went to: when
the person's address changes, it no longer works. A new reset link voids the older ones.

Sending is throttled per person and, when a person asks for themselves, per network address (``[rate_limits]
email_per_person``, ``email_per_ip``). "Forgot password" says the same whether or not an account matched: the page
answers before anything is looked up or sent (``forgot_password`` runs after the response), so neither its words
nor its timing tell who has an account here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Connection

from ..core import Frontdesk
from ..crypto.passwords import hash_password
from ..errors import RateLimited
from ..secret import digest, new_token
from ..storage import audit
from ..storage.db import now, transaction
from ..storage.email_links import (
    LinkRow,
    consume_link,
    drop_link,
    insert_link,
    link_for,
    mark_email_verified,
    people_for_login,
    void_links,
)
from ..storage.people import UserError, UserRecord, check_new_password
from ..storage.people_admin import revoke_grants_of
from .email_messages import reset_message, site_of, verify_message
from .logout import end_sessions
from .mail import Mail, MailFailed, send
from .password import PasswordProblem
from .rate_limits import Limit, count_and_check
from .security_notices import Change, tell

__all__ = [
    "EmailNotSent",
    "EmailUnavailable",
    "LinkProblem",
    "PasswordReset",
    "Purpose",
    "Verified",
    "email_configured",
    "forgot_password",
    "forgot_password_limits",
    "link_problem",
    "reset_link_for",
    "reset_link_problem",
    "reset_password",
    "start_email_verification",
    "start_password_reset",
    "verify_email",
    "verify_link_problem",
]

# A "forgot password" form naming an address several accounts share sends each of them a link, up to this many.
ACCOUNTS_PER_ADDRESS = 5


class EmailUnavailable(Exception):
    """No message can be sent: email is not set up, or the person has no address. ``str()`` says so in plain
    words."""


class EmailNotSent(EmailUnavailable):
    """The mail server did not take the message; ``str()`` says so in a sentence, ``reason`` why in a few plain
    words ("the mail server could not be reached"). Audited."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"The email could not be sent: {reason}. Try again later.")
        self.reason = reason


class Purpose(StrEnum):
    VERIFY = "verify"
    RESET = "reset"
    SIGNUP = "signup"  # a verification link sent at sign-up: following it also lets the account sign in


_KIND = {
    Purpose.VERIFY: "email_verify_link",
    Purpose.SIGNUP: "email_verify_link",
    Purpose.RESET: "password_reset_link",
}
_PATH = {Purpose.VERIFY: "/email/verify", Purpose.SIGNUP: "/email/verify", Purpose.RESET: "/password/reset"}
_EVENT = {
    Purpose.VERIFY: "email.verification_sent",
    Purpose.SIGNUP: "email.verification_sent",
    Purpose.RESET: "password.reset_sent",
}


class LinkProblem(StrEnum):
    """Why a link does not work, for the page to say in words."""

    UNKNOWN = "unknown"  # never issued, or voided by a newer one
    USED = "used"
    EXPIRED = "expired"
    ADDRESS_CHANGED = "address_changed"  # the person's address is not the one the link went to
    DISABLED = "disabled"  # the account is disabled


@dataclass(frozen=True, slots=True)
class Verified:
    """The address is confirmed; ``signup``: the link finished a sign-up."""

    username: str
    email: str
    signup: bool


@dataclass(frozen=True, slots=True)
class PasswordReset:
    """The password is set; this many browsers were signed out and grants revoked."""

    username: str
    sessions_signed_out: int
    grants_revoked: int


def email_configured(fd: Frontdesk) -> bool:
    return bool(fd.settings.email.smtp_url)


def link_problem(row: LinkRow | None, purposes: tuple[Purpose, ...], at: int) -> LinkProblem | None:
    """What is wrong with a link as stored (None: it works), in the order a person can act on. Pure."""
    if row is None or row.purpose not in purposes:
        return LinkProblem.UNKNOWN
    if row.consumed_at is not None:
        return LinkProblem.USED
    if row.expires_at <= at:
        return LinkProblem.EXPIRED
    if row.disabled_at is not None:
        return LinkProblem.DISABLED
    if row.current_email is None or row.current_email != row.email:
        return LinkProblem.ADDRESS_CHANGED
    return None


# --- sending ----------------------------------------------------------------------------------------------------


def _limits(fd: Frontdesk, user_id: str, ip: str | None, requested_by: str) -> list[Limit]:
    rl = fd.settings.rate_limits
    limits = [Limit("email_person", user_id, *rl.email_per_person)]
    if requested_by == "self":  # an administrator's address is not a stranger's
        limits.append(Limit("email_ip", str(ip), *rl.email_per_ip))
    return limits


def _person(fd: Frontdesk, user_id: str) -> UserRecord:
    if not email_configured(fd):
        raise EmailUnavailable("email is not set up on this server, so no message can be sent")
    with transaction(fd.engine, readonly=True) as conn:
        person = fd.users.by_id(conn, user_id)
    if person is None:
        raise EmailUnavailable("there is no such person")
    if not person.email:
        raise EmailUnavailable(f"{person.username} has no email address to send a link to")
    return person


def _issue(
    conn: Connection, fd: Frontdesk, person: UserRecord, purpose: Purpose, token: str, requested_by: str, at: int
) -> str:
    """Store a new link for the person's current address; returns its URL (the only place the secret goes)."""
    assert person.email is not None
    email = fd.settings.email
    lifetime = email.reset_link_lifetime if purpose is Purpose.RESET else email.verify_link_lifetime
    if purpose is Purpose.RESET:
        void_links(conn, person.id, Purpose.RESET)
    insert_link(
        conn,
        digest=digest(token),
        purpose=purpose,
        user_id=person.id,
        email=person.email,
        at=at,
        expires_at=at + lifetime,
        requested_by=requested_by,
    )
    return f"{fd.issuer}{_PATH[purpose]}?t={token}"


def _message(fd: Frontdesk, person: UserRecord, purpose: Purpose, link: str, requested_by: str) -> Mail:
    assert person.email is not None
    email = fd.settings.email
    if purpose is Purpose.RESET:
        return reset_message(person.email, person.username, fd.issuer, link, email.reset_link_lifetime, requested_by)
    signup = purpose is Purpose.SIGNUP
    return verify_message(
        person.email, person.username, fd.issuer, link, email.verify_link_lifetime, requested_by, signup=signup
    )


def send_link(fd: Frontdesk, person: UserRecord, purpose: Purpose, *, requested_by: str, ip: str | None) -> None:
    """Throttle, store and mail one link to the person's address; audited as sent or as failed. Raises
    ``RateLimited`` or ``EmailNotSent``."""
    try:
        count_and_check(fd, _limits(fd, person.id, ip, requested_by))
    except RateLimited:
        with transaction(fd.engine) as conn:
            audit.record(
                conn, _EVENT[purpose], "failure", user_id=person.id, ip=ip, by=requested_by, reason="rate_limited"
            )
        raise
    at = now()
    token = new_token(_KIND[purpose])
    with transaction(fd.engine) as conn:
        link = _issue(conn, fd, person, purpose, token, requested_by, at)
    mail = _message(fd, person, purpose, link, requested_by)
    try:
        send(fd.settings.email, mail, site_of(fd.issuer))
    except MailFailed as exc:
        with transaction(fd.engine) as conn:
            drop_link(conn, digest(token))  # never delivered: nobody holds it
            audit.record(conn, _EVENT[purpose], "failure", user_id=person.id, ip=ip, by=requested_by, reason=str(exc))
        raise EmailNotSent(str(exc)) from None
    with transaction(fd.engine) as conn:
        audit.record(conn, _EVENT[purpose], "success", user_id=person.id, ip=ip, by=requested_by)


def start_password_reset(fd: Frontdesk, user_id: str, *, requested_by: str, ip: str | None = None) -> None:
    """Mail the person a link to choose a new password; older reset links stop working. ``requested_by`` is
    "self" or the admin principal ("token:<id>", "person:<user_id>"), named in the message and the audit trail.

    Raises ``EmailUnavailable`` (no email set up, no such person, no address), ``EmailNotSent`` (a subclass: the
    mail server failed) or ``RateLimited`` (too many messages to this person lately)."""
    send_link(fd, _person(fd, user_id), Purpose.RESET, requested_by=requested_by, ip=ip)


def start_email_verification(fd: Frontdesk, user_id: str, *, requested_by: str, ip: str | None = None) -> None:
    """Mail the person a link that confirms their current address (``email_verified``). Raises like
    ``start_password_reset``."""
    send_link(fd, _person(fd, user_id), Purpose.VERIFY, requested_by=requested_by, ip=ip)


def forgot_password_limits(fd: Frontdesk, ip: str | None) -> None:
    """Count a "forgot password" form from this address; ``RateLimited`` past ``email_per_ip``. Checked before
    the page answers: it says nothing about any account."""
    count_and_check(fd, [Limit("forgot_ip", str(ip), *fd.settings.rate_limits.email_per_ip)])


def forgot_password(fd: Frontdesk, login: str, ip: str | None) -> int:
    """Mail a reset link to each enabled account that ``login`` (a username or an email address) names; returns how
    many were sent. Runs after the page has answered, so it raises nothing: what happened is in the audit trail."""
    login = login.strip()[:320]
    if not login or not email_configured(fd):
        return 0
    with transaction(fd.engine, readonly=True) as conn:
        ids = people_for_login(conn, login, ACCOUNTS_PER_ADDRESS)
    sent = 0
    for user_id in ids:
        try:
            send_link(fd, _person(fd, user_id), Purpose.RESET, requested_by="self", ip=ip)
            sent += 1
        except (EmailUnavailable, RateLimited):
            continue  # audited where it happened (or the account has no address to send to)
    if not ids:
        with transaction(fd.engine) as conn:
            audit.record(conn, "password.reset_sent", "failure", ip=ip, by="self", reason="no_account")
    return sent


# --- following a link -------------------------------------------------------------------------------------------


def _row(fd: Frontdesk, token: str) -> LinkRow | None:
    with transaction(fd.engine, readonly=True) as conn:
        return link_for(conn, digest(token))


def verify_email(fd: Frontdesk, token: str, ip: str | None) -> Verified | LinkProblem:
    """Confirm the address a verification (or sign-up) link went to, once. Audited as ``email.verified``."""
    at = now()
    with transaction(fd.engine) as conn:
        row = link_for(conn, digest(token))
        problem = link_problem(row, (Purpose.VERIFY, Purpose.SIGNUP), at)
        if problem is None and row is not None and consume_link(conn, digest(token), at):
            mark_email_verified(conn, row.user_id, row.email)
            audit.record(conn, "email.verified", "success", user_id=row.user_id, ip=ip, by=row.requested_by)
            return Verified(row.username, row.email, row.purpose == Purpose.SIGNUP)
        problem = problem or LinkProblem.USED  # lost the compare-and-set to another click
        audit.record(conn, "email.verified", "failure", user_id=row.user_id if row else None, ip=ip, reason=problem)
    return problem


def reset_link_problem(fd: Frontdesk, token: str) -> LinkProblem | None:
    """Whether a reset link still works (nothing is used yet)."""
    return link_problem(_row(fd, token), (Purpose.RESET,), now())


def reset_link_for(fd: Frontdesk, token: str) -> str | LinkProblem:
    """The username a working reset link is for, for the page that asks for the new password; or its problem."""
    row = _row(fd, token)
    problem = link_problem(row, (Purpose.RESET,), now())
    if problem is not None or row is None:
        return problem or LinkProblem.UNKNOWN
    return row.username


def verify_link_problem(fd: Frontdesk, token: str) -> LinkProblem | None:
    """Whether a verification link still works, for the page with the button that uses it."""
    return link_problem(_row(fd, token), (Purpose.VERIFY, Purpose.SIGNUP), now())


def _password_problem(new: str, repeated: str) -> PasswordProblem | None:
    if new != repeated:
        return PasswordProblem.NOT_REPEATED
    try:
        check_new_password(new)
    except UserError:
        return PasswordProblem.TOO_SHORT
    return None


def reset_password(
    fd: Frontdesk, token: str, new: str, repeated: str, ip: str | None
) -> PasswordReset | LinkProblem | PasswordProblem:
    """Set a new password with a reset link, once: every browser of the person is signed out and every grant
    revoked (whoever knew the old password is out), and the address is confirmed (the link reached it). Audited
    as ``password.reset``."""
    problem = reset_link_problem(fd, token)
    if problem is not None:
        return problem
    password_problem = _password_problem(new, repeated)
    if password_problem is not None:
        return password_problem
    password_hash = hash_password(new)  # argon2 is slow on purpose: outside the transaction
    at = now()
    with transaction(fd.engine) as conn:
        row = link_for(conn, digest(token))
        problem = link_problem(row, (Purpose.RESET,), at)
        if problem is not None or row is None or not consume_link(conn, digest(token), at):
            problem = problem or LinkProblem.USED
            audit.record(conn, "password.reset", "failure", user_id=row.user_id if row else None, ip=ip, reason=problem)
            return problem
        fd.users.set_password(conn, row.user_id, password_hash)
        mark_email_verified(conn, row.user_id, row.email)
        grants = revoke_grants_of(conn, row.user_id, at)
        void_links(conn, row.user_id, Purpose.RESET)
        audit.record(
            conn, "password.reset", "success", user_id=row.user_id, ip=ip, by=row.requested_by, grants_revoked=grants
        )
    ended = end_sessions(fd, row.user_id, ip=ip)  # Back-Channel Logout to the clients of every session
    tell(fd, row.user_id, Change.PASSWORD_RESET, ip=ip)
    return PasswordReset(row.username, ended.sessions, grants)
