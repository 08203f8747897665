"""The vault (DESIGN §6): API keys, integrations, people's connections and the links that make them."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Index, Integer, LargeBinary, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

__all__ = ["ApiKey", "VaultConnectSession", "VaultConnection", "VaultIntegration"]


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
    # Integrations made before revision 0008 kept only the operator's extra scopes and asked for the catalog's
    # defaults on top (true); since then ``scopes`` is the whole list asked for (false).
    adds_default_scopes: Mapped[bool] = mapped_column(Boolean, default=False, server_default=true())


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
    # Who last called through it: the API key's name, or the client (and actor chain) of a person-bound token.
    last_used_by: Mapped[str | None] = mapped_column(String(255))
    # The frontdesk person it is (``vault.connect.owner``), set with the credentials by the link that connected it:
    # the connect sessions that say so are purged once expired, the person's access to it must not go with them.
    person: Mapped[str | None] = mapped_column(String(64), index=True)
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
    # Who the platform says the connection is for, shown before the person is sent on (a forwarded link names its
    # owner); and, where platform users are frontdesk people, the one who must be signed in to use the link.
    display_name: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    opened_at: Mapped[int | None] = mapped_column(BigInteger)
    consumed_at: Mapped[int | None] = mapped_column(BigInteger)
    connection_id: Mapped[str | None] = mapped_column(String(64))


Index("uq_vault_connections_integration_user", VaultConnection.integration, VaultConnection.user, unique=True)
