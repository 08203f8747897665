"""A person changing their own email address on the account page. The new address is not verified (OpenID
Connect Core §5.1: ``email_verified`` describes the address it comes with), every link sent to the old one stops
working (links are bound to their address: ``oauth.email_links``), and, with email set up, the old address is told
of the change and a link to confirm the new one is sent at once. Audited as ``email.changed``."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..core import Frontdesk
from ..errors import RateLimited
from ..storage import audit
from ..storage.db import transaction
from ..storage.email_links import change_email as store_email
from ..storage.people import UserRecord
from .email_links import EmailNotSent, EmailUnavailable, Purpose, email_configured, send_link
from .email_messages import address_changed_message, site_of
from .mail import MailFailed, send
from .signup import looks_like_address

__all__ = ["EmailChanged", "EmailProblem", "change_email"]


class EmailProblem(StrEnum):
    NOT_AN_ADDRESS = "not_an_address"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class EmailChanged:
    """The address is changed; ``link_sent``: a link to confirm it went out; ``mail_problem``: why it could not
    (None with neither: email is not set up)."""

    email: str
    link_sent: bool
    mail_problem: str | None


def _address_problem(current: str | None, new: str) -> EmailProblem | None:
    if not looks_like_address(new):
        return EmailProblem.NOT_AN_ADDRESS
    if current is not None and new.lower() == current.lower():
        return EmailProblem.UNCHANGED
    return None


def _tell_old_address(fd: Frontdesk, person: UserRecord, old: str, new: str, ip: str | None) -> None:
    """A stolen session must not move the account's mail away unseen: the old address hears of the change."""
    message = address_changed_message(old, person.username, fd.issuer, new)
    try:
        send(fd.settings.email, message, site_of(fd.issuer))
    except MailFailed as exc:
        with transaction(fd.engine) as conn:
            audit.record(conn, "email.change_notice", "failure", user_id=person.id, ip=ip, reason=str(exc))


def change_email(fd: Frontdesk, person: UserRecord, new: str, ip: str | None) -> EmailChanged | EmailProblem:
    new = new.strip()
    problem = _address_problem(person.email, new)
    if problem is not None:
        return problem
    with transaction(fd.engine) as conn:
        store_email(conn, person.id, new)
        audit.record(conn, "email.changed", "success", user_id=person.id, ip=ip)
    if not email_configured(fd):
        return EmailChanged(new, False, None)
    if person.email is not None:
        _tell_old_address(fd, person, person.email, new, ip)
    moved = UserRecord(person.id, person.username, new, person.name, person.created_at, False)
    try:
        send_link(fd, moved, Purpose.VERIFY, requested_by="self", ip=ip)
    except RateLimited:
        return EmailChanged(new, False, "too many emails were sent to you lately; ask for one later")
    except EmailNotSent as exc:
        return EmailChanged(new, False, exc.reason)
    except EmailUnavailable as exc:
        return EmailChanged(new, False, str(exc))
    return EmailChanged(new, True, None)
