"""Registered clients (RFC 7591 metadata names) and the scopes they may be granted."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

__all__ = ["Client", "Scope"]


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
    # OpenID Connect RP-Initiated Logout 1.0 §3.1 and Back-Channel Logout 1.0 §2.2.
    post_logout_redirect_uris: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")  # JSON array
    backchannel_logout_uri: Mapped[str | None] = mapped_column(Text)
    backchannel_logout_session_required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # private_key_jwt: the audience its assertions may name (storage/clients.py, draft-ietf-oauth-rfc7523bis-09).
    assertion_audience: Mapped[str] = mapped_column(String(20), default="issuer", server_default="issuer")


class Scope(Base):
    __tablename__ = "scopes"
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    description: Mapped[str] = mapped_column(Text)
