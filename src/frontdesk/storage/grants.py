"""Grants and the artefacts issued from them: authorization codes, refresh tokens, revoked access tokens.

Single use is one compare-and-set statement (``UPDATE … WHERE consumed_at IS NULL``): two requests in two processes
can never both win (DESIGN §4). A grant is the family: revoking it ends every refresh token of it, and every access
token of it at introspection and UserInfo.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..secret import digest, new_token
from .schema import AuthorizationCode, Grant, RefreshToken, RevokedAccessToken

__all__ = [
    "CodeRow",
    "GrantRow",
    "RefreshRow",
    "access_token_revoked",
    "code_for",
    "consume_code",
    "consume_refresh",
    "grant_revoked",
    "insert_code",
    "insert_grant",
    "insert_refresh",
    "refresh_for",
    "revoke_access_token",
    "revoke_grant",
]


@dataclass(frozen=True, slots=True)
class GrantRow:
    id: str
    client_id: str
    user_id: str | None
    scope: tuple[str, ...]
    resource: tuple[str, ...]
    auth_time: int | None
    amr: tuple[str, ...]
    expires_at: int
    revoked_at: int | None


@dataclass(frozen=True, slots=True)
class CodeRow:
    grant: GrantRow
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    expires_at: int
    consumed_at: int | None


@dataclass(frozen=True, slots=True)
class RefreshRow:
    grant: GrantRow
    client_id: str
    expires_at: int
    consumed_at: int | None


# The grant's columns, labelled so that they sit beside a code's or refresh token's own in one joined row.
_GRANT = [column.label("g_" + column.key) for column in Grant.__table__.c]


def _grant(row: Any) -> GrantRow:
    return GrantRow(
        id=row.g_id,
        client_id=row.g_client_id,
        user_id=row.g_user_id,
        scope=tuple(row.g_scope.split()),
        resource=tuple(json.loads(row.g_resource)),
        auth_time=row.g_auth_time,
        amr=tuple(json.loads(row.g_amr)) if row.g_amr else (),
        expires_at=row.g_expires_at,
        revoked_at=row.g_revoked_at,
    )


def insert_grant(
    conn: Connection,
    *,
    client_id: str,
    user_id: str | None,
    scope: tuple[str, ...],
    resource: tuple[str, ...],
    auth_time: int | None,
    amr: tuple[str, ...],
    at: int,
    expires_at: int,
) -> GrantRow:
    grant_id = secrets.token_urlsafe(16)
    row = {
        "id": grant_id,
        "client_id": client_id,
        "user_id": user_id,
        "scope": " ".join(scope),
        "resource": json.dumps(list(resource)),
        "auth_time": auth_time,
        "amr": json.dumps(list(amr)),
        "created_at": at,
        "expires_at": expires_at,
        "revoked_at": None,
    }
    conn.execute(insert(Grant), row)
    return GrantRow(grant_id, client_id, user_id, scope, resource, auth_time, amr, expires_at, None)


def insert_code(
    conn: Connection,
    *,
    grant_id: str,
    client_id: str,
    redirect_uri: str,
    code_challenge: str,
    nonce: str | None,
    expires_at: int,
) -> str:
    code = new_token("code")
    conn.execute(
        insert(AuthorizationCode),
        {
            "digest": digest(code),
            "grant_id": grant_id,
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "code_challenge": code_challenge,
            "nonce": nonce,
            "expires_at": expires_at,
            "consumed_at": None,
        },
    )
    return code


def code_for(conn: Connection, code: str) -> CodeRow | None:
    c = AuthorizationCode
    row = conn.execute(
        select(c.client_id, c.redirect_uri, c.code_challenge, c.nonce, c.expires_at, c.consumed_at, *_GRANT)
        .join(Grant, Grant.id == c.grant_id)
        .where(c.digest == digest(code))
    ).first()
    if row is None:
        return None
    return CodeRow(
        _grant(row), row.client_id, row.redirect_uri, row.code_challenge, row.nonce, row.expires_at, row.consumed_at
    )


def consume_code(conn: Connection, code: str, at: int) -> bool:
    """Mark a code used; False when another request already did (a replay)."""
    result = conn.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.digest == digest(code), AuthorizationCode.consumed_at.is_(None))
        .values(consumed_at=at)
    )
    return result.rowcount == 1


def insert_refresh(conn: Connection, *, grant: GrantRow, at: int, idle: int) -> str:
    token = new_token("refresh_token")
    conn.execute(
        insert(RefreshToken),
        {
            "digest": digest(token),
            "grant_id": grant.id,
            "client_id": grant.client_id,
            "created_at": at,
            # RFC 9700 §4.14.2: expire after inactivity, and never outlive the grant.
            "expires_at": min(grant.expires_at, at + idle),
            "consumed_at": None,
        },
    )
    return token


def refresh_for(conn: Connection, token: str) -> RefreshRow | None:
    r = RefreshToken
    row = conn.execute(
        select(r.client_id, r.expires_at, r.consumed_at, *_GRANT)
        .join(Grant, Grant.id == r.grant_id)
        .where(r.digest == digest(token))
    ).first()
    if row is None:
        return None
    return RefreshRow(_grant(row), row.client_id, row.expires_at, row.consumed_at)


def consume_refresh(conn: Connection, token: str, at: int) -> bool:
    result = conn.execute(
        update(RefreshToken)
        .where(RefreshToken.digest == digest(token), RefreshToken.consumed_at.is_(None))
        .values(consumed_at=at)
    )
    return result.rowcount == 1


def revoke_grant(conn: Connection, grant_id: str, at: int) -> bool:
    result = conn.execute(update(Grant).where(Grant.id == grant_id, Grant.revoked_at.is_(None)).values(revoked_at=at))
    return result.rowcount == 1


def grant_revoked(conn: Connection, grant_id: str) -> bool:
    """True when the grant is revoked or unknown."""
    revoked = conn.execute(select(Grant.revoked_at).where(Grant.id == grant_id)).first()
    return revoked is None or revoked[0] is not None


def revoke_access_token(conn: Connection, jti: str, expires_at: int) -> None:
    try:
        with conn.begin_nested():
            conn.execute(insert(RevokedAccessToken), {"jti": jti, "expires_at": expires_at})
    except IntegrityError:
        pass  # already revoked: RFC 7009 §2.2 answers 200 all the same


def access_token_revoked(conn: Connection, jti: str) -> bool:
    return conn.execute(select(RevokedAccessToken.jti).where(RevokedAccessToken.jti == jti)).first() is not None
