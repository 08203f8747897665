"""Admin tokens: bearer tokens for the admin API, with a role and a name, shown once at creation and kept as SHA-256
digests (DESIGN §4: 256 random bits need no slow hash). Failed attempts are counted per address and refused past
``[admin] token_failures_per_ip`` (RFC 6750 §5.3 leaves guessing to the server's limits)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from ..core import Frontdesk
from ..errors import RateLimited
from ..oauth.rate_limits import Limit, check, count_failure
from ..secret import PREFIXES, digest, new_token
from ..storage import audit
from ..storage.admin_tokens import (
    LAST_USED_EVERY,
    AdminTokenRow,
    admin_token_by_digest,
    admin_tokens,
    insert_admin_token,
    revoke_admin_token,
    touch_admin_token,
)
from ..storage.db import now, transaction
from .errors import Invalid, NotFound, TooManyAttempts, Unauthenticated
from .principals import Principal, check_role, record, require

__all__ = ["IssuedToken", "TokenView", "authenticate_token", "create_token", "list_tokens", "revoke_token"]

PREFIX = PREFIXES["admin_token"]
MAX_DAYS = 3650


@dataclass(frozen=True, slots=True)
class TokenView:
    """An admin token as it may be shown: never its value."""

    id: str
    role: str
    name: str
    created_at: int
    expires_at: int | None
    last_used_at: int | None
    revoked_at: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "role": self.role,
            "name": self.name,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "last_used_at": self.last_used_at,
            "revoked_at": self.revoked_at,
        }


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new token and its value, shown this once."""

    token: TokenView
    secret: str = field(repr=False)


def _view(row: AdminTokenRow) -> TokenView:
    return TokenView(row.id, row.role, row.name, row.created_at, row.expires_at, row.last_used_at, row.revoked_at)


def create_token(fd: Frontdesk, by: Principal, *, role: str, name: str, days: int | None = None) -> IssuedToken:
    """A new admin token for ``role``, living ``days`` days (``[admin] token_days`` when None; 0: until revoked)."""
    require(by, "admin_tokens.write")
    checked = check_role(role)
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise Invalid("name the token (1 to 100 characters), e.g. after who or what uses it")
    days = fd.settings.admin.token_days if days is None else days
    if not 0 <= days <= MAX_DAYS:
        raise Invalid(f"days must be between 0 (until revoked) and {MAX_DAYS}")
    value = new_token("admin_token")
    at = now()
    with transaction(fd.engine) as conn:
        row = insert_admin_token(
            conn,
            token_id=secrets.token_hex(8),
            token_digest=digest(value),
            role=checked,
            name=name,
            at=at,
            expires_at=at + days * 86400 if days else None,
        )
        record(conn, by, "token.created", token=row.id, role=checked, name=name)
    return IssuedToken(_view(row), value)


def list_tokens(fd: Frontdesk, by: Principal) -> list[TokenView]:
    require(by, "admin_tokens.read")
    with transaction(fd.engine, readonly=True) as conn:
        return [_view(r) for r in admin_tokens(conn)]


def revoke_token(fd: Frontdesk, by: Principal, token_id: str) -> TokenView:
    require(by, "admin_tokens.write")
    with transaction(fd.engine) as conn:
        row = revoke_admin_token(conn, token_id, now())
        if row is None:
            raise NotFound(f"no unrevoked admin token {token_id[:64]!r}")
        record(conn, by, "token.revoked", token=row.id, role=row.role, name=row.name)
    return _view(row)


def _limits(fd: Frontdesk, ip: str | None) -> list[Limit]:
    return [Limit("admin_token_ip", str(ip), *fd.settings.admin.token_failures_per_ip)]


def authenticate_token(fd: Frontdesk, presented: str, ip: str | None) -> Principal:
    """The principal an admin token stands for. An unknown, expired or revoked token gets one answer
    (:class:`Unauthenticated`), is counted against the address and audited as ``admin.auth`` failure; past the
    limit every attempt from the address is refused (:class:`TooManyAttempts`) without a lookup."""
    limits = _limits(fd, ip)
    try:
        check(fd, limits)
    except RateLimited as exc:
        raise TooManyAttempts(
            "too many failed admin token attempts from this address; try again later", retry_after=exc.retry_after
        ) from None
    at = now()
    row = None
    # Only something shaped like a token is looked up: PostgreSQL text holds no NUL, and a digest of junk finds none.
    if presented.startswith(PREFIX) and len(presented) <= 128 and "\x00" not in presented:
        with transaction(fd.engine, readonly=True) as conn:
            row = admin_token_by_digest(conn, digest(presented), at)
    if row is None:
        count_failure(fd, limits)
        audit.record_soon(fd.engine, "admin.auth", "failure", ip=ip, kind="token")
        raise Unauthenticated("the admin token is unknown, expired or revoked")
    if row.last_used_at is None or at - row.last_used_at >= LAST_USED_EVERY:
        with transaction(fd.engine) as conn:
            touch_admin_token(conn, row.id, at)
    return Principal("token", row.id, check_role(row.role), row.name, ip)
