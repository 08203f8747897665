"""The relational schema (SQLAlchemy 2 typed models).

Timestamps are integer seconds since the epoch, UTC by definition: the same on SQLite and PostgreSQL, cheap to
compare in ``WHERE expires_at > :now`` and free of naive-datetime mistakes. Secrets appear only as digests.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "ApiKey",
    "AuditEvent",
    "AuthorizationCode",
    "Base",
    "Client",
    "Consent",
    "DeviceCode",
    "Grant",
    "Interaction",
    "RateLimit",
    "RefreshToken",
    "RevokedAccessToken",
    "Scope",
    "Session",
    "SigningKey",
    "UsedJti",
    "User",
    "VaultConnectSession",
    "VaultConnection",
    "VaultIntegration",
]

# Stable constraint names keep migrations reviewable across databases.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Client(Base):
    __tablename__ = "clients"
    client_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    secret_digest: Mapped[str | None] = mapped_column(String(64))
    auth_method: Mapped[str] = mapped_column(String(40))
    redirect_uris: Mapped[str] = mapped_column(Text)  # JSON array
    grant_types: Mapped[str] = mapped_column(Text)  # JSON array
    scope: Mapped[str] = mapped_column(Text)
    jwks: Mapped[str | None] = mapped_column(Text)  # JSON JWK Set
    jwks_uri: Mapped[str | None] = mapped_column(Text)
    # Resource URIs this client serves as a resource server: it may introspect tokens addressed to them.
    resources: Mapped[str] = mapped_column(Text, default="[]")  # JSON array
    access_token_ttl: Mapped[int | None] = mapped_column(Integer)
    id_token_alg: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[int] = mapped_column(BigInteger)


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(255), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(255))
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)


class Scope(Base):
    __tablename__ = "scopes"
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    description: Mapped[str] = mapped_column(Text)


class SigningKey(Base):
    __tablename__ = "signing_keys"
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(10))  # next | active | retired
    private_jwk: Mapped[bytes] = mapped_column(LargeBinary)  # AES-256-GCM envelope
    public_jwk: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    # A retired key stays published until everything it signed has expired.
    publish_until: Mapped[int | None] = mapped_column(BigInteger)


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


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(64), index=True)
    client_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    consumed_at: Mapped[int | None] = mapped_column(BigInteger)


class RevokedAccessToken(Base):
    __tablename__ = "revoked_access_tokens"
    jti: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class Session(Base):
    __tablename__ = "sessions"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    auth_time: Mapped[int] = mapped_column(BigInteger)
    amr: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class Interaction(Base):
    """An authorization request waiting for the person: sign-in and consent work on its id."""

    __tablename__ = "interactions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    binding_digest: Mapped[str] = mapped_column(String(64))
    params: Mapped[str] = mapped_column(Text)  # JSON
    user_id: Mapped[str | None] = mapped_column(String(64))
    auth_time: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    consumed_at: Mapped[int | None] = mapped_column(BigInteger)


class Consent(Base):
    __tablename__ = "consents"
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    scope: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[int] = mapped_column(BigInteger)


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
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class UsedJti(Base):
    """RFC 7523 §3: a client assertion's ``jti`` is accepted once."""

    __tablename__ = "used_jtis"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class RateLimit(Base):
    """A fixed-window counter shared by every process: the key names the limit and its subject."""

    __tablename__ = "rate_limits"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[int] = mapped_column(BigInteger, index=True)
    event: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    client_id: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)  # JSON


Index("ix_refresh_tokens_grant_consumed", RefreshToken.grant_id, RefreshToken.consumed_at)


# --- the vault (DESIGN §6) -------------------------------------------------------------------------------------


class ApiKey(Base):
    """A key for the platform's backend to call the vault API; shown once, kept as a digest."""

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    # "vault" for the platform's backend; "vault:export" may also read raw tokens (audited).
    scope: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)


class VaultIntegration(Base):
    """The platform's own app registered at a provider: its client id and (sealed) secret."""

    __tablename__ = "vault_integrations"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(Text)
    client_secret: Mapped[bytes | None] = mapped_column(LargeBinary)  # AES-256-GCM envelope, AAD = name
    key_id: Mapped[str | None] = mapped_column(String(16), index=True)
    scopes: Mapped[str] = mapped_column(Text)  # JSON array
    params: Mapped[str] = mapped_column(Text)  # JSON object: template variables such as tenant
    created_at: Mapped[int] = mapped_column(BigInteger)


class VaultConnection(Base):
    """One person's account at one integration: the sealed credential and what may be said about it."""

    __tablename__ = "vault_connections"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    integration: Mapped[str] = mapped_column(String(64))
    user: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))  # active | needs_reauth | revoked
    scopes: Mapped[str] = mapped_column(Text)  # JSON array: granted
    meta: Mapped[str] = mapped_column(Text)  # JSON object: kept response fields and connection variables
    credentials: Mapped[bytes] = mapped_column(LargeBinary)  # AES-256-GCM envelope, AAD = id
    key_id: Mapped[str] = mapped_column(String(16), index=True)
    expires_at: Mapped[int | None] = mapped_column(BigInteger, index=True)
    refreshed_at: Mapped[int | None] = mapped_column(BigInteger)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    retry_at: Mapped[int | None] = mapped_column(BigInteger)  # back-off after a transient refresh failure
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class VaultConnectSession(Base):
    """A short-lived, single-use link that lets one person connect one integration."""

    __tablename__ = "vault_connect_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)  # of the link token
    state_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    browser_digest: Mapped[str | None] = mapped_column(String(64))  # the browser that opened the link
    user: Mapped[str] = mapped_column(String(255))
    integration: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(Text)  # JSON array
    params: Mapped[str] = mapped_column(Text)  # JSON object: connection variables such as shop
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)  # PKCE verifier, AES-256-GCM, AAD = id
    return_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    opened_at: Mapped[int | None] = mapped_column(BigInteger)
    consumed_at: Mapped[int | None] = mapped_column(BigInteger)
    connection_id: Mapped[str | None] = mapped_column(String(64))


Index("uq_vault_connections_integration_user", VaultConnection.integration, VaultConnection.user, unique=True)
