"""Purging expired artefacts in bounded batches, so tables stay the size of what is live (DESIGN §3).

Each statement deletes at most ``batch`` rows through an indexed ``expires_at`` range, so a purge never holds a
long lock; several processes purging at once only repeat each other's work. Audit events are never purged here.
"""

from __future__ import annotations

from sqlalchemy import Engine, delete, select

from .db import transaction
from .schema import (
    AuthorizationCode,
    DeviceCode,
    Grant,
    Interaction,
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

__all__ = ["purge_expired", "saturated"]

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
    (UsedJti, UsedJti.key, UsedJti.expires_at, 0),
    (RateLimit, RateLimit.key, RateLimit.expires_at, 0),
    (WebAuthnChallenge, WebAuthnChallenge.digest, WebAuthnChallenge.expires_at, 0),
    (SessionGrant, SessionGrant.grant_id, SessionGrant.expires_at, 0),
    (SigninFailure, SigninFailure.key, SigninFailure.expires_at, 0),
    (UpstreamLogin, UpstreamLogin.id, UpstreamLogin.expires_at, 0),
    (VaultConnectSession, VaultConnectSession.id, VaultConnectSession.expires_at, 0),
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
