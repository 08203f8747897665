"""The grant family and what is issued from it: authorization codes (RFC 6749 §4.1), refresh tokens, revoked
access tokens, device codes (RFC 8628) and the assertion ``jti`` values already seen (RFC 7523 §3)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

__all__ = [
    "AuthorizationCode",
    "BackchannelRequest",
    "CacheGeneration",
    "DeviceCode",
    "Grant",
    "RefreshToken",
    "RevokedAccessToken",
    "UsedJti",
]


class Grant(Base):
    """One consent turned into tokens: the family every code, refresh and access token of it belongs to."""

    __tablename__ = "grants"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(255), index=True)
    user_id: Mapped[str | None] = mapped_column(String(64), index=True)
    scope: Mapped[str] = mapped_column(Text)
    resource: Mapped[str] = mapped_column(Text)  # JSON array
    auth_time: Mapped[int | None] = mapped_column(BigInteger)
    amr: Mapped[str | None] = mapped_column(Text)  # JSON array
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
    # RFC 9396: what exactly was approved, kept with the grant and carried on refresh (JSON array).
    authorization_details: Mapped[str | None] = mapped_column(Text)
    # RFC 9449 §5: the key a public client's refresh tokens are bound to (RFC 7638 thumbprint).
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))


class AuthorizationCode(Base):
    __tablename__ = "authorization_codes"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(255))
    redirect_uri: Mapped[str] = mapped_column(Text)
    code_challenge: Mapped[str] = mapped_column(String(128))
    nonce: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    consumed_at: Mapped[int | None] = mapped_column(BigInteger)
    # RFC 9449 §10: the key named at /authorize (dpop_jkt) that the code must be redeemed with.
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(64))  # indexed with consumed_at, below
    client_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    consumed_at: Mapped[int | None] = mapped_column(BigInteger)


class RevokedAccessToken(Base):
    __tablename__ = "revoked_access_tokens"
    jti: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class CacheGeneration(Base):
    """A counter every process's in-memory copy of some shared state is checked against (storage/notify.py): on
    PostgreSQL the triggers of migration 0016 add one to ``revocation`` in every transaction that revokes a grant or
    an access token or deletes a grant, so a process that missed the notification still sees the change."""

    __tablename__ = "cache_generations"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger)


class DeviceCode(Base):
    __tablename__ = "device_codes"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_code: Mapped[str] = mapped_column(String(16), unique=True)
    client_id: Mapped[str] = mapped_column(String(255))
    scope: Mapped[str] = mapped_column(Text)
    resource: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))  # pending | approved | denied | consumed
    interval: Mapped[int] = mapped_column(Integer)
    last_polled_at: Mapped[int | None] = mapped_column(BigInteger)
    user_id: Mapped[str | None] = mapped_column(String(64))
    auth_time: Mapped[int | None] = mapped_column(BigInteger)
    amr: Mapped[str | None] = mapped_column(Text)  # JSON array: how the approving person signed in (RFC 8176)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class BackchannelRequest(Base):
    """OpenID Connect CIBA Core 1.0 §7: a client asks a person, out of band, to approve what it wants to do."""

    __tablename__ = "backchannel_requests"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # of the auth_req_id
    client_id: Mapped[str] = mapped_column(String(255), index=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    scope: Mapped[str] = mapped_column(Text)
    resource: Mapped[str] = mapped_column(Text)  # JSON array
    authorization_details: Mapped[str | None] = mapped_column(Text)  # JSON array (RFC 9396)
    binding_message: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))  # pending | approved | denied | consumed
    interval: Mapped[int] = mapped_column(Integer)
    last_polled_at: Mapped[int | None] = mapped_column(BigInteger)
    # Ping mode (§10.2): the client's bearer token for its notification endpoint, sealed under the master key.
    notification_token: Mapped[bytes | None] = mapped_column(LargeBinary)
    auth_time: Mapped[int | None] = mapped_column(BigInteger)
    amr: Mapped[str | None] = mapped_column(Text)  # JSON array
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    decided_at: Mapped[int | None] = mapped_column(BigInteger)


class UsedJti(Base):
    """RFC 7523 §3: a client assertion's ``jti`` is accepted once."""

    __tablename__ = "used_jtis"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


Index("ix_refresh_tokens_grant_consumed", RefreshToken.grant_id, RefreshToken.consumed_at)
