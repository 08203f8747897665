"""One-time links sent by email: verify an address, reset a password. Kept as the SHA-256 digest of their secret,
bound to one person, one purpose and the address they went to; used once by one compare-and-set statement
(DESIGN §4), so two clicks in two processes can never both win.

Also what a verification link changes on the person: the address verified, and a signed-up account let in.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, insert, select, update

from .schema import EmailLink, User

__all__ = [
    "LinkRow",
    "change_email",
    "consume_link",
    "drop_link",
    "insert_link",
    "link_for",
    "mark_email_verified",
    "people_for_login",
    "verification_pending",
    "void_links",
]


@dataclass(frozen=True, slots=True)
class LinkRow:
    """A link as stored, with what its person looks like now (their address may have changed since)."""

    purpose: str
    user_id: str
    email: str  # the address it was sent to
    expires_at: int
    consumed_at: int | None
    requested_by: str
    username: str
    current_email: str | None
    disabled_at: int | None


def insert_link(
    conn: Connection,
    *,
    digest: str,
    purpose: str,
    user_id: str,
    email: str,
    at: int,
    expires_at: int,
    requested_by: str,
) -> None:
    conn.execute(
        insert(EmailLink),
        {
            "digest": digest,
            "purpose": purpose,
            "user_id": user_id,
            "email": email,
            "created_at": at,
            "expires_at": expires_at,
            "consumed_at": None,
            "requested_by": requested_by,
        },
    )


def void_links(conn: Connection, user_id: str, purpose: str) -> int:
    """Forget every unused link of this purpose for the person: a new reset link makes the older ones worthless."""
    stmt = delete(EmailLink).where(
        EmailLink.user_id == user_id, EmailLink.purpose == purpose, EmailLink.consumed_at.is_(None)
    )
    return conn.execute(stmt).rowcount


def drop_link(conn: Connection, digest: str) -> None:
    """Forget one link (it was never delivered)."""
    conn.execute(delete(EmailLink).where(EmailLink.digest == digest))


def link_for(conn: Connection, digest: str) -> LinkRow | None:
    """The link of this digest, used or not, if its person still exists."""
    link, user = EmailLink, User
    row = conn.execute(
        select(
            link.purpose,
            link.user_id,
            link.email,
            link.expires_at,
            link.consumed_at,
            link.requested_by,
            user.username,
            user.email,
            user.disabled_at,
        )
        .join(user, user.id == link.user_id)
        .where(link.digest == digest)
    ).first()
    return LinkRow(*row) if row is not None else None


def consume_link(conn: Connection, digest: str, at: int) -> bool:
    """Mark the link used; False when another request already did, or it expired meanwhile."""
    stmt = (
        update(EmailLink)
        .where(EmailLink.digest == digest, EmailLink.consumed_at.is_(None), EmailLink.expires_at > at)
        .values(consumed_at=at)
    )
    return conn.execute(stmt).rowcount == 1


def mark_email_verified(conn: Connection, user_id: str, email: str) -> bool:
    """The person's address is verified, if it is still the one the link went to; a signed-up account waiting for
    that may now sign in."""
    stmt = (
        update(User)
        .where(User.id == user_id, User.email == email)
        .values(email_verified=True, verification_pending=False)
    )
    return conn.execute(stmt).rowcount == 1


def verification_pending(conn: Connection, user_id: str) -> bool:
    """Whether the person signed up and has not confirmed their address yet (they cannot sign in)."""
    return bool(conn.execute(select(User.verification_pending).where(User.id == user_id)).scalar())


def people_for_login(conn: Connection, login: str, limit: int) -> list[str]:
    """The ids of the enabled people a "forgot password" form may mean: the one with this username, else those
    with this email address (any case; addresses are not unique), at most ``limit``."""
    enabled = User.disabled_at.is_(None)
    row = conn.execute(select(User.id).where(User.username == login, enabled)).first()
    if row is not None:
        return [row[0]]
    found = conn.execute(
        select(User.id).where(func.lower(User.email) == login.lower(), enabled).order_by(User.id).limit(limit)
    )
    return [r[0] for r in found]


def change_email(conn: Connection, user_id: str, email: str) -> bool:
    """Give the person a new address, not verified (OpenID Connect Core §5.1); the links sent to the old one stop
    working, since each is bound to the address it went to."""
    stmt = update(User).where(User.id == user_id).values(email=email, email_verified=False)
    return conn.execute(stmt).rowcount == 1
