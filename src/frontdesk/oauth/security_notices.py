"""Telling a person by email that a way into their account changed: the password (changed on the account page, or
reset with a link), the second sign-in step (turned on, or off by them or an administrator), a passkey (added or
removed). OWASP ASVS 4.0.3 §2.2.3 asks for this after every update to authentication details: whoever holds a
stolen session, or a stolen password, can change these, and the person is the one who can tell it was not them.

The message goes to the account's address only once it is confirmed (OpenID Connect Core §5.1 ``email_verified``):
an address typed wrong at sign-up must not learn of someone else's account. It carries no link and no secret. The
change has happened whatever becomes of the message: a mail server that refuses or does not answer in time
(``mail.send``'s timeout) is recorded as a failed ``security.notice`` audit event, and the page answers as usual.
A message handed to the mail server is recorded as a successful one, so an operator can tell a person what they
were told. Without email set up (``[email]``), nothing is sent and nothing recorded.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from ..core import Frontdesk
from ..storage import audit
from ..storage.db import transaction
from .email_messages import security_notice_message, site_of
from .mail import MailFailed, send

__all__ = ["Change", "tell"]


class Change(StrEnum):
    """What changed; the audit event's ``change``."""

    PASSWORD_CHANGED = "password_changed"
    PASSWORD_RESET = "password_reset"
    SECOND_FACTOR_ON = "second_factor_on"
    SECOND_FACTOR_OFF = "second_factor_off"
    PASSKEY_ADDED = "passkey_added"
    PASSKEY_REMOVED = "passkey_removed"


# The subject ({site}) and the sentence ({username}, {site}, {by}, {name}) of each notice.
_WORDS: dict[Change, tuple[str, str]] = {
    Change.PASSWORD_CHANGED: (
        "Your password at {site} was changed",
        "The password of your account {username} at {site} was changed on the account page. Every other browser"
        " signed in to the account was signed out.",
    ),
    Change.PASSWORD_RESET: (
        "Your password at {site} was reset",
        "The password of your account {username} at {site} was reset with a link sent to this address. Every"
        " browser signed in to the account was signed out, and apps you let in will ask you to sign in again.",
    ),
    Change.SECOND_FACTOR_ON: (
        "A second sign-in step was turned on at {site}",
        "Signing in to your account {username} at {site} now also asks for a code from an authenticator app: the"
        " app was set up {by}.",
    ),
    Change.SECOND_FACTOR_OFF: (
        "The second sign-in step was turned off at {site}",
        "Signing in to your account {username} at {site} no longer asks for a code from an authenticator app: the"
        " second step and its recovery codes were removed {by}.",
    ),
    Change.PASSKEY_ADDED: (
        "A passkey was added to your account at {site}",
        'A passkey named "{name}" was added to your account {username} at {site} {by}. It signs in to the account'
        " without a password.",
    ),
    Change.PASSKEY_REMOVED: (
        "A passkey was removed from your account at {site}",
        'The passkey named "{name}" was removed from your account {username} at {site} {by}.',
    ),
}


_WHERE = {"account": "on the account page", "admin": "by an administrator", "sign-in": "while signing in"}


def tell(
    fd: Frontdesk,
    user_id: str,
    change: Change,
    *,
    ip: str | None,
    where: Literal["account", "admin", "sign-in"] = "account",
    name: str = "",
) -> bool:
    """Mail the person ``user_id`` that ``change`` happened to their account, once the change has committed; True
    if the message was handed to the mail server. ``where``: who made it, in words; ``name``: the passkey's."""
    if not fd.settings.email.smtp_url:  # email is not set up (oauth/email_links.py ``email_configured``)
        return False
    with transaction(fd.engine, readonly=True) as conn:
        person = fd.users.by_id(conn, user_id)
    if person is None or not person.email or not person.email_verified:
        return False
    subject, what = _WORDS[change]
    site = site_of(fd.issuer)
    sentence = what.format(username=person.username, site=site, by=_WHERE[where], name=name)
    message = security_notice_message(person.email, person.username, fd.issuer, subject, sentence)
    try:
        send(fd.settings.email, message, site)
    except MailFailed as exc:
        with transaction(fd.engine) as conn:
            audit.record(conn, "security.notice", "failure", user_id=user_id, ip=ip, change=change, reason=str(exc))
        return False
    with transaction(fd.engine) as conn:
        audit.record(conn, "security.notice", "success", user_id=user_id, ip=ip, change=change)
    return True
