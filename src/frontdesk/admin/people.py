"""People, as the operator manages them: create, find (by username or email, a page at a time), disable and enable,
delete, send a password reset, remove a second factor, end their sessions. Every change is audited as
``admin.person.*`` naming who made it.

A disabled person cannot sign in (``oauth.signin`` asks :func:`frontdesk.storage.people_admin.person_disabled`),
and disabling ends what they hold: their browser sessions (with Back-Channel Logout, ``oauth.logout``), their
grants and with them every refresh token (RFC 6749 §10.4: a revoked grant's refresh tokens are refused), and their
access tokens at introspection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core import Frontdesk
from ..errors import RateLimited
from ..oauth.email_links import EmailNotSent, EmailUnavailable, start_email_verification, start_password_reset
from ..oauth.logout import end_sessions as logout_sessions
from ..oauth.security_notices import Change, tell
from ..storage.admin_tokens import admin_role_of, admin_roles, delete_admin_role
from ..storage.db import now, transaction
from ..storage.people import UserError
from ..storage.people_admin import (
    PersonRow,
    person_by_id,
    person_by_username,
    revoke_grants_of,
    search_people,
    set_disabled,
    set_profile,
)
from ..storage.second_factor import remove_second_factor as remove_totp
from .errors import Conflict, Invalid, NotFound, TooManyAttempts, Unavailable
from .paging import Page, check_limit, decode_cursor, page_of
from .principals import Principal, record, require

__all__ = [
    "PersonView",
    "create_person",
    "delete_person",
    "disable_person",
    "enable_person",
    "end_person_sessions",
    "find_person",
    "list_people",
    "person",
    "remove_second_factor",
    "send_email_verification",
    "send_password_reset",
    "update_person",
]


@dataclass(frozen=True, slots=True)
class PersonView:
    """A person as the operator sees them (never a password hash or an authenticator's secret)."""

    id: str
    username: str
    email: str | None
    name: str | None
    created_at: int
    email_verified: bool
    disabled_at: int | None
    second_factor: bool
    passkeys: int
    admin_role: str | None

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "email": self.email,
            "name": self.name,
            "created_at": self.created_at,
            "email_verified": self.email_verified,
            "disabled": self.disabled,
            "disabled_at": self.disabled_at,
            "second_factor": self.second_factor,
            "passkeys": self.passkeys,
            "admin_role": self.admin_role,
        }


class Unset:
    """A field an update leaves as it is (None clears it)."""


UNSET = Unset()


def _view(row: PersonRow, role: str | None) -> PersonView:
    return PersonView(
        row.id,
        row.username,
        row.email,
        row.name,
        row.created_at,
        row.email_verified,
        row.disabled_at,
        row.second_factor,
        row.passkeys,
        role,
    )


def _read(fd: Frontdesk, user_id: str) -> PersonView:
    with transaction(fd.engine, readonly=True) as conn:
        row = person_by_id(conn, user_id)
        role = admin_role_of(conn, user_id) if row is not None else None
    if row is None:
        raise NotFound(f"no person {user_id[:64]!r}")
    return _view(row, role.role if role is not None else None)


def person(fd: Frontdesk, by: Principal, user_id: str) -> PersonView:
    require(by, "people.read")
    return _read(fd, user_id)


def find_person(fd: Frontdesk, by: Principal, username: str) -> PersonView:
    """The person with this username (the command line names people by username)."""
    require(by, "people.read")
    with transaction(fd.engine, readonly=True) as conn:
        row = person_by_username(conn, username)
    if row is None:
        raise NotFound(f"no user {username!r}")
    return _read(fd, row.id)


def list_people(
    fd: Frontdesk, by: Principal, *, search: str | None = None, cursor: str | None = None, limit: int = 50
) -> Page[PersonView]:
    """People by username; with ``search``, those whose username or email contains it (any case)."""
    require(by, "people.read")
    check_limit(limit)
    if search is not None and len(search) > 320:
        raise Invalid("search is at most 320 characters")
    with transaction(fd.engine, readonly=True) as conn:
        rows = search_people(conn, search or None, decode_cursor(cursor), limit + 1)
        roles = {r.user_id: r.role for r in admin_roles(conn)}  # admins are few: one read for the page
    views = [_view(r, roles.get(r.id)) for r in rows]
    return page_of(views, limit, lambda p: p.username)


def create_person(
    fd: Frontdesk, by: Principal, *, username: str, password: str, email: str | None = None, name: str | None = None
) -> PersonView:
    require(by, "people.write")
    if name is not None and len(name) > 255:
        raise Invalid("name is at most 255 characters")
    try:
        user = fd.users.create(username, password, email=email, name=name)
    except UserError as exc:
        raise (Conflict if "already exists" in str(exc) else Invalid)(str(exc)) from None
    with transaction(fd.engine) as conn:
        record(conn, by, "person.created", user_id=user.id, username=user.username)
    return _read(fd, user.id)


def update_person(
    fd: Frontdesk, by: Principal, user_id: str, *, email: str | Unset | None = UNSET, name: str | Unset | None = UNSET
) -> PersonView:
    """Change the person's email address and/or name (None clears it); a changed address must be verified again."""
    require(by, "people.write")
    changes: dict[str, str | None] = {}
    if not isinstance(email, Unset):
        if email is not None and ("@" not in email or len(email) > 320 or not email.isprintable()):
            raise Invalid("email is not an address")
        changes["email"] = email
    if not isinstance(name, Unset):
        if name is not None and (len(name) > 255 or not name.isprintable()):
            raise Invalid("name is at most 255 printable characters")
        changes["name"] = name
    if changes:
        with transaction(fd.engine) as conn:
            if not set_profile(conn, user_id, **changes):
                raise NotFound(f"no person {user_id[:64]!r}")
            record(conn, by, "person.updated", user_id=user_id, fields=sorted(changes))
    return _read(fd, user_id)


def disable_person(fd: Frontdesk, by: Principal, user_id: str) -> PersonView:
    """The person can no longer sign in; their sessions, grants and refresh tokens end now."""
    require(by, "people.write")
    at = now()
    with transaction(fd.engine) as conn:
        current = person_by_id(conn, user_id)
        if current is None:
            raise NotFound(f"no person {user_id[:64]!r}")
        if current.disabled_at is None:
            set_disabled(conn, user_id, at)
        revoked = revoke_grants_of(conn, user_id, at)
        record(conn, by, "person.disabled", user_id=user_id, grants_revoked=revoked)
    # Back-Channel Logout 1.0: the clients the person used in those sessions are told (and it is audited there).
    logout_sessions(fd, user_id, ip=by.ip)
    return _read(fd, user_id)


def enable_person(fd: Frontdesk, by: Principal, user_id: str) -> PersonView:
    require(by, "people.write")
    with transaction(fd.engine) as conn:
        if not set_disabled(conn, user_id, None):
            raise NotFound(f"no person {user_id[:64]!r}")
        record(conn, by, "person.enabled", user_id=user_id)
    return _read(fd, user_id)


def delete_person(fd: Frontdesk, by: Principal, user_id: str) -> None:
    """Delete the person, everything they granted and their admin role; their audit history stays."""
    require(by, "people.write")
    current = _read(fd, user_id)
    if by.kind == "person" and by.id == user_id:
        raise Conflict("you cannot delete yourself; ask another admin")
    logout_sessions(fd, user_id, ip=by.ip)
    if not fd.users.delete(current.username):
        raise NotFound(f"no person {user_id[:64]!r}")
    with transaction(fd.engine) as conn:
        delete_admin_role(conn, user_id)
        record(conn, by, "person.deleted", user_id=user_id, username=current.username)


def remove_second_factor(fd: Frontdesk, by: Principal, user_id: str) -> PersonView:
    """Remove the person's authenticator app and recovery codes (a lost phone): they sign in with their password
    and may enrol again."""
    require(by, "people.write")
    _read(fd, user_id)
    with transaction(fd.engine) as conn:
        if not remove_totp(conn, user_id):
            raise Conflict("this person has no second factor")
        record(conn, by, "person.second_factor_removed", user_id=user_id)
    tell(fd, user_id, Change.SECOND_FACTOR_OFF, ip=by.ip, where="admin")
    return _read(fd, user_id)


def end_person_sessions(fd: Frontdesk, by: Principal, user_id: str) -> int:
    """Sign the person out of every browser (Back-Channel Logout to the clients they used); how many sessions."""
    require(by, "people.write")
    _read(fd, user_id)
    ended = logout_sessions(fd, user_id, ip=by.ip)
    with transaction(fd.engine) as conn:
        record(conn, by, "person.sessions_ended", user_id=user_id, sessions=ended.sessions)
    return ended.sessions


def send_password_reset(fd: Frontdesk, by: Principal, user_id: str) -> None:
    """Email the person a single-use, short-lived link to choose a new password (``oauth.email_links``, which
    audits the message as sent or failed, naming the principal)."""
    _send(fd, by, user_id, start_password_reset, "person.password_reset_requested")


def send_email_verification(fd: Frontdesk, by: Principal, user_id: str) -> None:
    """Email the person a link that confirms their address (``email_verified``)."""
    _send(fd, by, user_id, start_email_verification, "person.verification_requested")


def _send(fd: Frontdesk, by: Principal, user_id: str, start: Callable[..., None], event: str) -> None:
    require(by, "people.write")
    _read(fd, user_id)
    with transaction(fd.engine) as conn:
        record(conn, by, event, user_id=user_id)
    try:
        start(fd, user_id, requested_by=by.actor, ip=by.ip)
    except EmailNotSent as exc:
        raise Unavailable(str(exc), error="email_not_sent") from None
    except EmailUnavailable as exc:
        raise Unavailable(str(exc)) from None
    except RateLimited as exc:
        raise TooManyAttempts(
            "too many messages to this person lately; try again later", retry_after=exc.retry_after
        ) from None
