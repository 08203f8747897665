"""What sign-out needs from the store: which grants each browser session issued, and the outbox of logout tokens
still to deliver (OpenID Connect Back-Channel Logout 1.0).

A delivery is claimed with one compare-and-set statement on its attempt count, so two processes draining the outbox
at once never send the same attempt twice (DESIGN §4).
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select, update

from .schema import Grant, LogoutDelivery, Session, SessionGrant

__all__ = [
    "DeliveryRow",
    "SessionUse",
    "claim_delivery",
    "close_browser_sessions",
    "drop_delivery",
    "due_deliveries",
    "forget_sessions",
    "postpone_delivery",
    "queue_delivery",
    "record_session_grant",
    "session_of_grant",
    "session_uses",
]


@dataclass(frozen=True, slots=True)
class SessionUse:
    """One grant a session issued: to which client, with which scope."""

    sid: str
    client_id: str
    grant_id: str
    scope: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    jti: str
    client_id: str
    user_id: str
    sid: str | None
    attempts: int


def record_session_grant(
    conn: Connection, *, sid: str, grant_id: str, client_id: str, user_id: str, at: int, expires_at: int
) -> None:
    conn.execute(
        insert(SessionGrant),
        {
            "grant_id": grant_id,
            "sid": sid,
            "user_id": user_id,
            "client_id": client_id,
            "created_at": at,
            "expires_at": expires_at,
        },
    )


def session_of_grant(conn: Connection, grant_id: str) -> str | None:
    """The ``sid`` of the session a grant was issued in, if it was issued in one."""
    row = conn.execute(select(SessionGrant.sid).where(SessionGrant.grant_id == grant_id)).first()
    return str(row[0]) if row else None


def session_uses(conn: Connection, user_id: str, sids: Collection[str] | None) -> list[SessionUse]:
    """The grants issued in those sessions of the person (in every session of theirs when ``sids`` is None)."""
    query = (
        select(SessionGrant.sid, SessionGrant.client_id, SessionGrant.grant_id, Grant.scope)
        .join(Grant, Grant.id == SessionGrant.grant_id)
        .where(SessionGrant.user_id == user_id)
        .order_by(SessionGrant.created_at)
    )
    if sids is not None:
        query = query.where(SessionGrant.sid.in_(list(sids)))
    return [SessionUse(r.sid, r.client_id, r.grant_id, tuple(r.scope.split())) for r in conn.execute(query)]


def close_browser_sessions(conn: Connection, user_id: str, sids: Collection[str] | None) -> int:
    """Close those browser sessions of the person (every one when ``sids`` is None); how many there were."""
    query = delete(Session).where(Session.user_id == user_id)
    if sids is not None:
        query = query.where(Session.id.in_(list(sids)))
    return conn.execute(query).rowcount


def forget_sessions(conn: Connection, user_id: str, sids: Collection[str] | None) -> None:
    query = delete(SessionGrant).where(SessionGrant.user_id == user_id)
    if sids is not None:
        query = query.where(SessionGrant.sid.in_(list(sids)))
    conn.execute(query)


def queue_delivery(conn: Connection, *, client_id: str, user_id: str, sid: str | None, at: int) -> str:
    """Put a logout token in the outbox, due at once; returns its ``jti``."""
    jti = secrets.token_urlsafe(24)
    conn.execute(
        insert(LogoutDelivery),
        {
            "jti": jti,
            "client_id": client_id,
            "user_id": user_id,
            "sid": sid,
            "created_at": at,
            "attempts": 0,
            "next_attempt_at": at,
            "last_error": None,
        },
    )
    return jti


def due_deliveries(conn: Connection, at: int, limit: int) -> list[DeliveryRow]:
    rows = conn.execute(
        select(LogoutDelivery)
        .where(LogoutDelivery.next_attempt_at <= at)
        .order_by(LogoutDelivery.next_attempt_at)
        .limit(limit)
    )
    return [DeliveryRow(r.jti, r.client_id, r.user_id, r.sid, r.attempts) for r in rows]


def claim_delivery(conn: Connection, row: DeliveryRow, at: int, lease: int) -> bool:
    """Take this attempt (counted at once, so a crash mid-send still uses one up); False when another process did."""
    claimed = conn.execute(
        update(LogoutDelivery)
        .where(LogoutDelivery.jti == row.jti, LogoutDelivery.attempts == row.attempts)
        .values(attempts=row.attempts + 1, next_attempt_at=at + lease)
    )
    return claimed.rowcount == 1


def postpone_delivery(conn: Connection, jti: str, next_attempt_at: int, error: str) -> None:
    conn.execute(
        update(LogoutDelivery)
        .where(LogoutDelivery.jti == jti)
        .values(next_attempt_at=next_attempt_at, last_error=error[:500])
    )


def drop_delivery(conn: Connection, jti: str) -> None:
    """Delivered, refused for good, or given up: the audit log keeps the story."""
    conn.execute(delete(LogoutDelivery).where(LogoutDelivery.jti == jti))
