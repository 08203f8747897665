"""Grants and the artefacts issued from them: authorization codes, refresh tokens, revoked access tokens.

Single use is one compare-and-set statement (``UPDATE … WHERE consumed_at IS NULL``): two requests in two processes
can never both win (DESIGN §4). A grant is the family: revoking it ends every refresh token of it, and every access
token of it at introspection and UserInfo.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, update
from sqlalchemy.exc import IntegrityError

from ..secret import digest, new_token
from .db import DB, Raw, fetch, revoking, run
from .schema import AuthorizationCode, Grant, RevokedAccessToken

__all__ = [
    "CODE_COLUMNS",
    "REFRESH_COLUMNS",
    "CodeRow",
    "GrantRow",
    "RefreshRow",
    "access_token_revoked",
    "bind_grant_key",
    "code_for",
    "code_row",
    "consume_code",
    "consume_refresh",
    "grant_for",
    "grant_revoked",
    "insert_code",
    "insert_grant",
    "insert_refresh",
    "refresh_for",
    "refresh_row",
    "revoke_access_token",
    "revoke_grant",
    "session_of",
    "token_revoked",
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
    dpop_jkt: str | None = None  # RFC 9449 §5: a public client's refresh tokens are bound to this key
    # RFC 9396: the authorization details the person approved, carried by every token of the grant and on refresh.
    authorization_details: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class CodeRow:
    grant: GrantRow
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    expires_at: int
    consumed_at: int | None
    dpop_jkt: str | None = None  # RFC 9449 §10: the key named at /authorize that must redeem the code
    sid: str | None = None  # the session the grant was issued in (``session_of``), for the ID token


@dataclass(frozen=True, slots=True)
class RefreshRow:
    grant: GrantRow
    client_id: str
    expires_at: int
    consumed_at: int | None
    sid: str | None = None  # the session the grant was issued in (``session_of``), for the ID token


# The token paths read and write with plain SQL on the driver's connection (storage/db.py says why); the grant's
# columns come last in each joined row, in this order.
_GRANT_COLUMNS = (
    "g.id, g.client_id, g.user_id, g.scope, g.resource, g.auth_time, g.amr, g.expires_at, g.revoked_at, g.dpop_jkt, "
    "g.authorization_details"
)


def _grant(row: Sequence[Any]) -> GrantRow:
    grant_id, client_id, user_id, scope, resource, auth_time, amr, expires_at, revoked_at, dpop_jkt, details = row
    return GrantRow(
        id=grant_id,
        client_id=client_id,
        user_id=user_id,
        scope=tuple(scope.split()),
        resource=tuple(json.loads(resource)),
        auth_time=auth_time,
        amr=tuple(json.loads(amr)) if amr else (),
        expires_at=expires_at,
        revoked_at=revoked_at,
        dpop_jkt=dpop_jkt,
        authorization_details=tuple(json.loads(details)) if details else (),
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
    authorization_details: Sequence[dict[str, Any]] = (),
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
        "authorization_details": json.dumps(list(authorization_details)) if authorization_details else None,
    }
    conn.execute(insert(Grant), row)
    return GrantRow(
        grant_id,
        client_id,
        user_id,
        scope,
        resource,
        auth_time,
        amr,
        expires_at,
        None,
        authorization_details=tuple(authorization_details),
    )


def insert_code(
    conn: Connection,
    *,
    grant_id: str,
    client_id: str,
    redirect_uri: str,
    code_challenge: str,
    nonce: str | None,
    expires_at: int,
    dpop_jkt: str | None = None,
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
            "dpop_jkt": dpop_jkt,
        },
    )
    return code


# The ``sid`` an ID token issued from the grant will carry (``session_of``), read with the row: one statement, and
# on PostgreSQL one round trip, less per code redemption and refresh.
_SID = "(SELECT s.sid FROM session_grants s WHERE s.grant_id = g.id LIMIT 1)"

# What ``code_for`` reads of a code ``c`` and its grant ``g`` (and storage/redemption.py's one statement).
CODE_COLUMNS = (
    "c.client_id, c.redirect_uri, c.code_challenge, c.nonce, c.expires_at, c.consumed_at, c.dpop_jkt, "
    f"{_SID}, {_GRANT_COLUMNS}"
)
_CODE_FOR = f"SELECT {CODE_COLUMNS} FROM authorization_codes c JOIN grants g ON g.id = c.grant_id WHERE c.digest = ?"  # noqa: S608


def code_for(db: DB, code: str) -> CodeRow | None:
    """The code with its grant and the grant's ``sid``; in ``db``'s transaction, or alone (``storage.redemption``)."""
    rows = fetch(db, _CODE_FOR, (digest(code),))
    return code_row(rows[0]) if rows else None


def code_row(row: Sequence[Any]) -> CodeRow:
    """A row of ``CODE_COLUMNS`` as a ``CodeRow``."""
    client_id, redirect_uri, code_challenge, nonce, expires_at, consumed_at, dpop_jkt, sid, *grant = row
    return CodeRow(
        _grant(grant), client_id, redirect_uri, code_challenge, nonce, expires_at, consumed_at, dpop_jkt, sid
    )


def consume_code(conn: Connection | Raw, code: str, at: int) -> bool:
    """Mark a code used; False when another request already did (a replay)."""
    updated = run(
        conn,
        "UPDATE authorization_codes SET consumed_at = ? WHERE digest = ? AND consumed_at IS NULL",
        (at, digest(code)),
    )
    return updated == 1


def insert_refresh(conn: Connection | Raw, *, grant: GrantRow, at: int, idle: int) -> str:
    token = new_token("refresh_token")
    # RFC 9700 §4.14.2: expire after inactivity, and never outlive the grant.
    expires_at = min(grant.expires_at, at + idle)
    run(
        conn,
        "INSERT INTO refresh_tokens (digest, grant_id, client_id, created_at, expires_at, consumed_at) "
        "VALUES (?, ?, ?, ?, ?, NULL)",
        (digest(token), grant.id, grant.client_id, at, expires_at),
    )
    return token


# What ``refresh_for`` reads of a refresh token ``r`` and its grant ``g`` (and storage/redemption.py's rotation).
REFRESH_COLUMNS = f"r.client_id, r.expires_at, r.consumed_at, {_SID}, {_GRANT_COLUMNS}"
_REFRESH_FOR = f"SELECT {REFRESH_COLUMNS} FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id WHERE r.digest = ?"  # noqa: S608


def refresh_for(db: DB, token: str) -> RefreshRow | None:
    """The refresh token with its grant and the grant's ``sid``; in ``db``'s transaction, or alone
    (``storage.redemption``)."""
    rows = fetch(db, _REFRESH_FOR, (digest(token),))
    return refresh_row(rows[0]) if rows else None


def refresh_row(row: Sequence[Any]) -> RefreshRow:
    """A row of ``REFRESH_COLUMNS`` as a ``RefreshRow``."""
    client_id, expires_at, consumed_at, sid, *grant = row
    return RefreshRow(_grant(grant), client_id, expires_at, consumed_at, sid)


def consume_refresh(conn: Connection | Raw, token: str, at: int) -> bool:
    updated = run(
        conn,
        "UPDATE refresh_tokens SET consumed_at = ? WHERE digest = ? AND consumed_at IS NULL",
        (at, digest(token)),
    )
    return updated == 1


def bind_grant_key(conn: Connection | Raw, grant_id: str, jkt: str) -> bool:
    """Bind a grant's refresh tokens to a key's thumbprint (RFC 9449 §5), once: False when it was bound already."""
    return run(conn, "UPDATE grants SET dpop_jkt = ? WHERE id = ? AND dpop_jkt IS NULL", (jkt, grant_id)) == 1


def revoke_grant(conn: Connection, grant_id: str, at: int) -> bool:
    revoking(conn)
    result = conn.execute(update(Grant).where(Grant.id == grant_id, Grant.revoked_at.is_(None)).values(revoked_at=at))
    return result.rowcount == 1


def grant_for(conn: DB, grant_id: str) -> GrantRow | None:
    """The grant with this id, revoked or not; None when there is none."""
    rows = fetch(conn, f"SELECT {_GRANT_COLUMNS} FROM grants g WHERE g.id = ?", (grant_id,))  # noqa: S608
    return _grant(rows[0]) if rows else None


def grant_revoked(conn: DB, grant_id: str) -> bool:
    """True when the grant is revoked or unknown."""
    rows = fetch(conn, "SELECT revoked_at FROM grants WHERE id = ?", (grant_id,))
    return not rows or rows[0][0] is not None


def revoke_access_token(conn: Connection, jti: str, expires_at: int) -> None:
    revoking(conn)
    try:
        with conn.begin_nested():
            conn.execute(insert(RevokedAccessToken), {"jti": jti, "expires_at": expires_at})
    except IntegrityError:
        pass  # already revoked: RFC 7009 §2.2 answers 200 all the same


def session_of(conn: Connection | Raw, grant_id: str) -> str | None:
    """The ``sid`` of the session a grant was issued in (``storage.logout.session_of_grant``, as plain SQL); a code
    or refresh token read with ``code_for`` or ``refresh_for`` carries it already (``sid``)."""
    rows = fetch(conn, "SELECT sid FROM session_grants WHERE grant_id = ?", (grant_id,))
    return str(rows[0][0]) if rows else None


def token_revoked(db: DB, jti: str, grant_id: str | None) -> bool:
    """``access_token_revoked`` or, for a token of a grant, ``grant_revoked``: one statement, one round trip."""
    if grant_id is None:
        return access_token_revoked(db, jti)
    rows = fetch(
        db,
        "SELECT (SELECT COUNT(*) FROM revoked_access_tokens WHERE jti = ?), "
        "(SELECT COUNT(*) FROM grants WHERE id = ? AND revoked_at IS NULL)",
        (jti, grant_id),
    )
    revoked, live_grant = rows[0]
    return bool(revoked) or not live_grant


def access_token_revoked(conn: DB, jti: str) -> bool:
    return bool(fetch(conn, "SELECT 1 FROM revoked_access_tokens WHERE jti = ?", (jti,)))
