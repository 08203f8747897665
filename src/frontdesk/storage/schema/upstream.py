"""Upstream providers people may sign in with, trips to them and back, and the accounts linked there."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

__all__ = ["UpstreamIdentity", "UpstreamLogin", "UpstreamProvider"]


class UpstreamProvider(Base):
    """Another provider people may sign in with: OpenID Connect (by discovery) or plain OAuth 2.0 (by endpoints)."""

    __tablename__ = "upstream_providers"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(10))  # oidc | oauth2
    issuer: Mapped[str | None] = mapped_column(Text)
    authorization_endpoint: Mapped[str] = mapped_column(Text)
    token_endpoint: Mapped[str] = mapped_column(Text)
    userinfo_endpoint: Mapped[str | None] = mapped_column(Text)
    jwks_uri: Mapped[str | None] = mapped_column(Text)
    token_auth_method: Mapped[str] = mapped_column(String(40))
    iss_parameter: Mapped[bool] = mapped_column(Boolean)  # RFC 9207: the provider names itself in its answer
    client_id: Mapped[str] = mapped_column(Text)
    client_secret: Mapped[bytes | None] = mapped_column(LargeBinary)  # AES-256-GCM envelope, AAD = name
    scope: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)


class UpstreamLogin(Base):
    """One trip to an upstream provider and back: ``state``, ``nonce`` and the PKCE verifier, used once; then what
    came back, until the interaction that started it signs the person in."""

    __tablename__ = "upstream_logins"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    state_digest: Mapped[str] = mapped_column(String(64), unique=True)
    browser_digest: Mapped[str] = mapped_column(String(64))  # the browser that left for the provider
    provider: Mapped[str] = mapped_column(String(32))
    interaction_id: Mapped[str] = mapped_column(String(64), index=True)
    nonce_digest: Mapped[str] = mapped_column(String(64))
    verifier: Mapped[bytes] = mapped_column(LargeBinary)  # PKCE code_verifier, AES-256-GCM, AAD = id
    status: Mapped[str] = mapped_column(String(10))  # started | returned | confirm | finished
    user_id: Mapped[str | None] = mapped_column(String(64))  # returned: who signs in; confirm: whose account
    subject: Mapped[str | None] = mapped_column(String(255))  # the provider's sub, while a link awaits confirmation
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class UpstreamIdentity(Base):
    """A person's account at an upstream provider, linked to their frontdesk account."""

    __tablename__ = "upstream_identities"
    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_used_at: Mapped[int] = mapped_column(BigInteger)
