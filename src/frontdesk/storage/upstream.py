"""Upstream providers, the trips people make to them and back, and the accounts there linked to accounts here.

A trip's callback is single use: one compare-and-set statement moves it out of ``started`` (DESIGN §4), so a
replayed callback finds nothing to take.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..crypto.passwords import hash_password
from .schema import UpstreamIdentity, UpstreamLogin, UpstreamProvider, User

__all__ = [
    "LoginRow",
    "create_federated_user",
    "delete_provider",
    "finish_login",
    "insert_login",
    "insert_provider",
    "link_identity",
    "linked_user",
    "login_by_state",
    "login_of_interaction",
    "provider_rows",
    "settle_login",
    "take_login",
    "users_with_email",
]


@dataclass(frozen=True, slots=True)
class LoginRow:
    id: str
    provider: str
    interaction_id: str
    browser_digest: str
    nonce_digest: str
    verifier: bytes
    status: str
    user_id: str | None
    subject: str | None
    email: str | None
    expires_at: int


def _login(row: Any) -> LoginRow:
    return LoginRow(
        row.id,
        row.provider,
        row.interaction_id,
        row.browser_digest,
        row.nonce_digest,
        row.verifier,
        row.status,
        row.user_id,
        row.subject,
        row.email,
        row.expires_at,
    )


# --- providers -------------------------------------------------------------------------------------------------------


def insert_provider(conn: Connection, row: dict[str, Any]) -> bool:
    """False when a provider of that name exists."""
    try:
        with conn.begin_nested():
            conn.execute(insert(UpstreamProvider), row)
    except IntegrityError:
        return False
    return True


def provider_rows(conn: Connection, name: str | None = None) -> list[Any]:
    query = select(UpstreamProvider).order_by(UpstreamProvider.created_at, UpstreamProvider.name)
    if name is not None:
        query = query.where(UpstreamProvider.name == name)
    return list(conn.execute(query))


def delete_provider(conn: Connection, name: str) -> bool:
    """The provider, its links to accounts here and its trips in flight."""
    conn.execute(delete(UpstreamIdentity).where(UpstreamIdentity.provider == name))
    conn.execute(delete(UpstreamLogin).where(UpstreamLogin.provider == name))
    return conn.execute(delete(UpstreamProvider).where(UpstreamProvider.name == name)).rowcount == 1


# --- trips -----------------------------------------------------------------------------------------------------------


def insert_login(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(UpstreamLogin), {**row, "status": "started", "user_id": None, "subject": None, "email": None})


def login_by_state(conn: Connection, state_digest: str) -> LoginRow | None:
    row = conn.execute(select(UpstreamLogin).where(UpstreamLogin.state_digest == state_digest)).first()
    return _login(row) if row else None


def take_login(conn: Connection, login_id: str) -> bool:
    """The callback's compare-and-set: False when another request (a replay) took this trip first."""
    taken = conn.execute(
        update(UpstreamLogin)
        .where(UpstreamLogin.id == login_id, UpstreamLogin.status == "started")
        .values(status="exchanging")
    )
    return taken.rowcount == 1


def settle_login(
    conn: Connection, login_id: str, status: str, user_id: str, subject: str | None = None, email: str | None = None
) -> None:
    """What came back: ``returned`` (who signs in) or ``confirm`` (whose account a link awaits confirmation for)."""
    conn.execute(
        update(UpstreamLogin)
        .where(UpstreamLogin.id == login_id)
        .values(status=status, user_id=user_id, subject=subject, email=email)
    )


def login_of_interaction(conn: Connection, interaction_id: str, at: int) -> LoginRow | None:
    """The interaction's latest trip that came back and is not finished yet."""
    row = conn.execute(
        select(UpstreamLogin)
        .where(
            UpstreamLogin.interaction_id == interaction_id,
            UpstreamLogin.status.in_(("returned", "confirm")),
            UpstreamLogin.expires_at > at,
        )
        .order_by(UpstreamLogin.created_at.desc())
        .limit(1)
    ).first()
    return _login(row) if row else None


def finish_login(conn: Connection, login_id: str, status: str) -> bool:
    """Single use of what came back: False when another request finished it first."""
    done = conn.execute(
        update(UpstreamLogin)
        .where(UpstreamLogin.id == login_id, UpstreamLogin.status == status)
        .values(status="finished", subject=None, email=None)
    )
    return done.rowcount == 1


# --- identities and the accounts they lead to ------------------------------------------------------------------------


def linked_user(conn: Connection, provider: str, subject: str, at: int) -> str | None:
    """The account linked to this upstream account, if it still exists (a stale link is removed)."""
    row = conn.execute(
        select(UpstreamIdentity.user_id, User.id.label("live"))
        .outerjoin(User, User.id == UpstreamIdentity.user_id)
        .where(UpstreamIdentity.provider == provider, UpstreamIdentity.subject == subject)
    ).first()
    if row is None:
        return None
    key = (UpstreamIdentity.provider == provider, UpstreamIdentity.subject == subject)
    if row.live is None:
        conn.execute(delete(UpstreamIdentity).where(*key))
        return None
    conn.execute(update(UpstreamIdentity).where(*key).values(last_used_at=at))
    return str(row.user_id)


def link_identity(conn: Connection, provider: str, subject: str, user_id: str, at: int) -> None:
    conn.execute(
        insert(UpstreamIdentity),
        {"provider": provider, "subject": subject, "user_id": user_id, "created_at": at, "last_used_at": at},
    )


def users_with_email(conn: Connection, email: str) -> list[tuple[str, str]]:
    """(id, username) of every account with this address, compared without regard to case."""
    rows = conn.execute(select(User.id, User.username).where(func.lower(User.email) == email.lower()))
    return [(r.id, r.username) for r in rows]


def create_federated_user(conn: Connection, username: str, email: str | None, name: str | None, at: int) -> str:
    """An account for someone who arrived from an upstream provider. Its password is random and never shown: the
    account signs in upstream (or with a passkey added later), yet costs a password check the same time as any."""
    user_id = secrets.token_hex(16)
    candidate = username
    for _ in range(8):
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(User),
                    {
                        "id": user_id,
                        "username": candidate,
                        "email": email,
                        "name": name,
                        "password_hash": hash_password(secrets.token_urlsafe(32)),
                        "created_at": at,
                    },
                )
        except IntegrityError:
            candidate = f"{username[:240]}-{secrets.token_hex(3)}"  # taken: the same name with a random tail
            continue
        return user_id
    raise RuntimeError("no free username for a new federated account")
