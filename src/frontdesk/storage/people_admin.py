"""People as the operator sees them (the admin API and console): found by username or email a page at a time,
disabled and enabled, their grants ended. Persistence only: ``frontdesk.admin.people`` decides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, or_, select, update

from .db import revoking
from .schema import Grant, Passkey, TotpSecret, User

__all__ = [
    "PersonRow",
    "person_by_id",
    "person_by_username",
    "person_disabled",
    "revoke_grants_of",
    "search_people",
    "set_disabled",
    "set_profile",
]


@dataclass(frozen=True, slots=True)
class PersonRow:
    id: str
    username: str
    email: str | None
    name: str | None
    created_at: int
    email_verified: bool
    disabled_at: int | None
    second_factor: bool  # a confirmed TOTP authenticator
    passkeys: int


def _query() -> Any:
    totp = (
        select(func.count())
        .where(TotpSecret.user_id == User.id, TotpSecret.confirmed_at.is_not(None))
        .scalar_subquery()
        .label("totp")
    )
    passkeys = select(func.count()).where(Passkey.user_id == User.id).scalar_subquery().label("passkeys")
    return select(
        User.id,
        User.username,
        User.email,
        User.name,
        User.created_at,
        User.email_verified,
        User.disabled_at,
        totp,
        passkeys,
    )


def _row(r: Any) -> PersonRow:
    return PersonRow(
        r.id, r.username, r.email, r.name, r.created_at, bool(r.email_verified), r.disabled_at, r.totp > 0, r.passkeys
    )


def person_by_id(conn: Connection, user_id: str) -> PersonRow | None:
    row = conn.execute(_query().where(User.id == user_id)).first()
    return _row(row) if row is not None else None


def person_by_username(conn: Connection, username: str) -> PersonRow | None:
    row = conn.execute(_query().where(User.username == username)).first()
    return _row(row) if row is not None else None


def search_people(conn: Connection, text: str | None, after: str | None, limit: int) -> list[PersonRow]:
    """People whose username or email contains ``text`` (any case), by username, those after ``after``."""
    query = _query()
    if text:
        needle = text.lower()
        query = query.where(
            or_(
                func.lower(User.username).contains(needle, autoescape=True),
                func.lower(User.email).contains(needle, autoescape=True),
            )
        )
    if after is not None:
        query = query.where(User.username > after)
    return [_row(r) for r in conn.execute(query.order_by(User.username).limit(limit))]


def set_disabled(conn: Connection, user_id: str, at: int | None) -> bool:
    """Disable the person at ``at``, or enable them (None); False for an unknown person."""
    return conn.execute(update(User).where(User.id == user_id).values(disabled_at=at)).rowcount == 1


def person_disabled(conn: Connection, user_id: str) -> bool:
    """Whether the person is disabled (an unknown person is not: there is nobody to sign in)."""
    return conn.execute(select(User.disabled_at).where(User.id == user_id)).scalar() is not None


def revoke_grants_of(conn: Connection, user_id: str, at: int) -> int:
    """Revoke every live grant of the person: their refresh tokens end at once, access tokens at introspection."""
    revoking(conn)
    return conn.execute(
        update(Grant).where(Grant.user_id == user_id, Grant.revoked_at.is_(None)).values(revoked_at=at)
    ).rowcount


def set_profile(conn: Connection, user_id: str, **changes: str | None) -> bool:
    """Replace the person's ``email`` and/or ``name``; a new address is not verified (OpenID Connect Core §5.1)."""
    values: dict[str, object] = dict(changes)
    if "email" in changes:
        current = conn.execute(select(User.email).where(User.id == user_id)).first()
        if current is not None and current[0] != changes["email"]:
            values["email_verified"] = False
    return conn.execute(update(User).where(User.id == user_id).values(**values)).rowcount == 1
