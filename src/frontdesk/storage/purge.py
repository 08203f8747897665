"""Purging expired artefacts in bounded batches, so tables stay the size of what is live (DESIGN §3).

Each statement deletes at most ``batch`` rows through an indexed ``expires_at`` range, so a purge never holds a
long lock; several processes purging at once only repeat each other's work. Audit events are never purged here.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection, Engine, and_, delete, func, select

from .db import transaction
from .schema import (
    AuthorizationCode,
    BackchannelRequest,
    Client,
    Consent,
    DeviceCode,
    EmailLink,
    Grant,
    Interaction,
    LogoutDelivery,
    RateLimit,
    RefreshToken,
    RevokedAccessToken,
    Session,
    SessionGrant,
    SigninFailure,
    UpstreamLogin,
    UsedJti,
    VaultConnectSession,
    WebAuthnChallenge,
)

__all__ = ["delete_unused_clients", "purge_expired", "saturated"]

# A consumed code is kept an hour past its expiry so that a late replay is still recognised as one.
CODE_GRACE = 3600
# A grant outlives its last refresh token by a day: access tokens minted near its end must still find it.
GRANT_GRACE = 86400

_TABLES = (
    (AuthorizationCode, AuthorizationCode.digest, AuthorizationCode.expires_at, CODE_GRACE),
    (RefreshToken, RefreshToken.digest, RefreshToken.expires_at, 0),
    (Grant, Grant.id, Grant.expires_at, GRANT_GRACE),
    (RevokedAccessToken, RevokedAccessToken.jti, RevokedAccessToken.expires_at, 0),
    (Session, Session.digest, Session.expires_at, 0),
    (Interaction, Interaction.id, Interaction.expires_at, 0),
    (DeviceCode, DeviceCode.digest, DeviceCode.expires_at, 0),
    # CIBA §11: kept an hour past expiry, so a client still polling hears expired_token rather than invalid_grant.
    (BackchannelRequest, BackchannelRequest.digest, BackchannelRequest.expires_at, 3600),
    (UsedJti, UsedJti.key, UsedJti.expires_at, 0),
    (RateLimit, RateLimit.key, RateLimit.expires_at, 0),
    (WebAuthnChallenge, WebAuthnChallenge.digest, WebAuthnChallenge.expires_at, 0),
    (SessionGrant, SessionGrant.grant_id, SessionGrant.expires_at, 0),
    (SigninFailure, SigninFailure.key, SigninFailure.expires_at, 0),
    (UpstreamLogin, UpstreamLogin.id, UpstreamLogin.expires_at, 0),
    (VaultConnectSession, VaultConnectSession.id, VaultConnectSession.expires_at, 0),
    # A day past expiry, so that a link followed late still hears "used already" or "expired", not "unknown".
    (EmailLink, EmailLink.digest, EmailLink.expires_at, 86400),
)
BATCH = 1000
MAX_BATCHES = 100


def purge_expired(engine: Engine, at: int, batch: int = BATCH, max_batches: int = MAX_BATCHES) -> dict[str, int]:
    """Delete what expired before ``at``, at most ``batch × max_batches`` rows per table; returns rows deleted per
    table."""
    counts: dict[str, int] = {}
    for model, key, expires_at, grace in _TABLES:
        total = 0
        for _ in range(max_batches):
            with transaction(engine) as conn:
                doomed = select(key).where(expires_at < at - grace).limit(batch).scalar_subquery()
                deleted = conn.execute(delete(model).where(key.in_(doomed))).rowcount
            total += deleted
            if deleted < batch:
                break
        counts[model.__tablename__] = total
    return counts


def saturated(counts: dict[str, int], batch: int = BATCH, max_batches: int = MAX_BATCHES) -> bool:
    """Did a pass stop at its bound with rows left? Then the caller runs the next pass soon, not in ten minutes:
    a store issuing more than a pass can delete in one interval must not grow without end."""
    return any(n >= batch * max_batches for n in counts.values())


def delete_unused_clients(
    conn: Connection, *, registered_by: Collection[str], unused_before: int, limit: int
) -> list[str]:
    """Delete at most ``limit`` clients registered by one of ``registered_by`` and last used (or, never used,
    created) before ``unused_before``, with everything issued to them: grants and their refresh tokens, codes,
    device codes, consents, pending logout deliveries. Returns the client_ids deleted.

    The DELETE checks the condition again, so a client another process used since the SELECT stays (PostgreSQL
    re-reads a row changed under it; SQLite runs one writer at a time)."""
    last_used = func.coalesce(Client.last_used_at, Client.created_at)
    unused = and_(Client.registered_by.in_(list(registered_by)), last_used < unused_before)
    found = list(conn.execute(select(Client.client_id).where(unused).limit(limit)).scalars())
    if not found:
        return []
    gone = list(
        conn.execute(delete(Client).where(Client.client_id.in_(found), unused).returning(Client.client_id)).scalars()
    )
    if gone:
        grants = select(Grant.id).where(Grant.client_id.in_(gone)).scalar_subquery()
        conn.execute(delete(RefreshToken).where(RefreshToken.grant_id.in_(grants)))
        conn.execute(delete(SessionGrant).where(SessionGrant.grant_id.in_(grants)))
        for model in (AuthorizationCode, DeviceCode, Consent, LogoutDelivery, Grant):
            conn.execute(delete(model).where(model.client_id.in_(gone)))
    return gone
