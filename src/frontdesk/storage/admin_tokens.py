"""Admin tokens (the admin API's bearer tokens, kept as SHA-256 digests) and the admin roles people hold (the
console). Persistence only: which role may do what is ``frontdesk.admin.principals``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, or_, select, update

from .schema import AdminRole, AdminToken, User

__all__ = [
    "LAST_USED_EVERY",
    "AdminRoleRow",
    "AdminTokenRow",
    "admin_role_of",
    "admin_roles",
    "admin_token_by_digest",
    "admin_tokens",
    "delete_admin_role",
    "insert_admin_token",
    "put_admin_role",
    "revoke_admin_token",
    "touch_admin_token",
]

# A token's last use is bookkeeping for the operator: written at most once a minute, not at every call.
LAST_USED_EVERY = 60


@dataclass(frozen=True, slots=True)
class AdminTokenRow:
    id: str
    role: str
    name: str
    created_at: int
    expires_at: int | None
    last_used_at: int | None
    revoked_at: int | None


@dataclass(frozen=True, slots=True)
class AdminRoleRow:
    user_id: str
    username: str | None  # None: the person was deleted and the role row outlived them
    role: str
    granted_at: int
    granted_by: str


def _token(r: Any) -> AdminTokenRow:
    return AdminTokenRow(r.id, r.role, r.name, r.created_at, r.expires_at, r.last_used_at, r.revoked_at)


def insert_admin_token(
    conn: Connection, *, token_id: str, token_digest: str, role: str, name: str, at: int, expires_at: int | None
) -> AdminTokenRow:
    conn.execute(
        insert(AdminToken),
        {
            "id": token_id,
            "digest": token_digest,
            "role": role,
            "name": name,
            "created_at": at,
            "expires_at": expires_at,
            "last_used_at": None,
            "revoked_at": None,
        },
    )
    return AdminTokenRow(token_id, role, name, at, expires_at, None, None)


def admin_token_by_digest(conn: Connection, token_digest: str, at: int) -> AdminTokenRow | None:
    """The token of this digest if it is neither revoked nor expired at ``at``."""
    t = AdminToken
    row = conn.execute(
        select(t).where(
            t.digest == token_digest, t.revoked_at.is_(None), or_(t.expires_at.is_(None), t.expires_at > at)
        )
    ).first()
    return _token(row) if row is not None else None


def touch_admin_token(conn: Connection, token_id: str, at: int) -> None:
    """Record a use, unless one was recorded less than ``LAST_USED_EVERY`` seconds ago (one conditional write)."""
    t = AdminToken
    conn.execute(
        update(t)
        .where(t.id == token_id, or_(t.last_used_at.is_(None), t.last_used_at <= at - LAST_USED_EVERY))
        .values(last_used_at=at)
    )


def admin_tokens(conn: Connection) -> list[AdminTokenRow]:
    """Every token, oldest first (their digests stay here)."""
    return [_token(r) for r in conn.execute(select(AdminToken).order_by(AdminToken.created_at, AdminToken.id))]


def revoke_admin_token(conn: Connection, token_id: str, at: int) -> AdminTokenRow | None:
    """Revoke a token; None when there is no unrevoked token of that id."""
    t = AdminToken
    if conn.execute(update(t).where(t.id == token_id, t.revoked_at.is_(None)).values(revoked_at=at)).rowcount != 1:
        return None
    return _token(conn.execute(select(t).where(t.id == token_id)).one())


def _role(r: Any) -> AdminRoleRow:
    return AdminRoleRow(r.user_id, r.username, r.role, r.granted_at, r.granted_by)


def _roles() -> Any:
    return select(AdminRole.user_id, User.username, AdminRole.role, AdminRole.granted_at, AdminRole.granted_by).join(
        User, User.id == AdminRole.user_id, isouter=True
    )


def admin_role_of(conn: Connection, user_id: str) -> AdminRoleRow | None:
    row = conn.execute(_roles().where(AdminRole.user_id == user_id)).first()
    return _role(row) if row is not None else None


def admin_roles(conn: Connection) -> list[AdminRoleRow]:
    return [_role(r) for r in conn.execute(_roles().order_by(User.username, AdminRole.user_id))]


def put_admin_role(conn: Connection, user_id: str, role: str, at: int, by: str) -> None:
    """Give a person a role, replacing the one they held."""
    conn.execute(delete(AdminRole).where(AdminRole.user_id == user_id))
    conn.execute(insert(AdminRole), {"user_id": user_id, "role": role, "granted_at": at, "granted_by": by})


def delete_admin_role(conn: Connection, user_id: str) -> bool:
    return conn.execute(delete(AdminRole).where(AdminRole.user_id == user_id)).rowcount == 1
