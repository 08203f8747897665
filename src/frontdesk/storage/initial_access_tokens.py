"""Initial access tokens (RFC 7591 §3): bearer tokens an operator hands out that open dynamic registration.

Kept as a SHA-256 digest only (the token is shown once, at creation). A use is spent with one compare-and-set
statement, so two registrations racing for a token's last use can never both win (DESIGN §4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update

from ..secret import digest
from .schema import InitialAccessToken

__all__ = [
    "InitialAccessTokenRow",
    "initial_access_token_for",
    "initial_access_tokens",
    "insert_initial_access_token",
    "revoke_initial_access_token",
    "spend_initial_access_token",
]


@dataclass(frozen=True, slots=True)
class InitialAccessTokenRow:
    id: str
    name: str
    created_at: int
    expires_at: int | None
    uses_left: int | None  # None: no limit on uses
    revoked_at: int | None


def _row(r: Any) -> InitialAccessTokenRow:
    return InitialAccessTokenRow(r.id, r.name, r.created_at, r.expires_at, r.uses_left, r.revoked_at)


def _usable(at: int) -> Any:
    """The condition under which a token may still open a registration at ``at``."""
    return (
        InitialAccessToken.revoked_at.is_(None),
        or_(InitialAccessToken.expires_at.is_(None), InitialAccessToken.expires_at > at),
        or_(InitialAccessToken.uses_left.is_(None), InitialAccessToken.uses_left > 0),
    )


def insert_initial_access_token(
    conn: Connection,
    *,
    token_id: str,
    token: str,
    name: str,
    at: int,
    expires_at: int | None,
    uses_left: int | None,
) -> InitialAccessTokenRow:
    """Store a new token as its digest."""
    row = {
        "id": token_id,
        "digest": digest(token),
        "name": name,
        "created_at": at,
        "expires_at": expires_at,
        "uses_left": uses_left,
        "revoked_at": None,
    }
    conn.execute(insert(InitialAccessToken), row)
    return InitialAccessTokenRow(token_id, name, at, expires_at, uses_left, None)


def initial_access_token_for(conn: Connection, token: str, at: int) -> InitialAccessTokenRow | None:
    """The token if it is known, unrevoked, unexpired and has a use left at ``at``; nothing is spent."""
    row = conn.execute(
        select(InitialAccessToken).where(InitialAccessToken.digest == digest(token), *_usable(at))
    ).first()
    return _row(row) if row is not None else None


def spend_initial_access_token(conn: Connection, token: str, at: int) -> InitialAccessTokenRow | None:
    """Spend one use of the token (compare-and-set): the token as it is after the use, or None when it is unknown,
    revoked, expired or used up by now."""
    row = conn.execute(
        update(InitialAccessToken)
        .where(InitialAccessToken.digest == digest(token), *_usable(at))
        .values(uses_left=InitialAccessToken.uses_left - 1)  # NULL (no limit) stays NULL
        .returning(
            InitialAccessToken.id,
            InitialAccessToken.name,
            InitialAccessToken.created_at,
            InitialAccessToken.expires_at,
            InitialAccessToken.uses_left,
            InitialAccessToken.revoked_at,
        )
    ).first()
    return _row(row) if row is not None else None


def initial_access_tokens(conn: Connection) -> list[InitialAccessTokenRow]:
    """Every token, oldest first (never their values: only digests are stored)."""
    rows = conn.execute(select(InitialAccessToken).order_by(InitialAccessToken.created_at, InitialAccessToken.id)).all()
    return [_row(r) for r in rows]


def revoke_initial_access_token(conn: Connection, token_id: str, at: int) -> bool:
    """Revoke a token; False when there is no unrevoked token of that id."""
    result = conn.execute(
        update(InitialAccessToken)
        .where(InitialAccessToken.id == token_id, InitialAccessToken.revoked_at.is_(None))
        .values(revoked_at=at)
    )
    return result.rowcount == 1
