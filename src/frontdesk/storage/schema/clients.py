"""Registered clients (RFC 7591 metadata names), the scopes they may be granted, the protected resources tokens are
minted for (RFC 8707, RFC 9728), and the initial access tokens that open dynamic registration (RFC 7591 §3)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

__all__ = ["AuthorizationDetailType", "Client", "InitialAccessToken", "Resource", "Scope"]


class Client(Base):
    __tablename__ = "clients"
    client_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    secret_digest: Mapped[str | None] = mapped_column(String(64))
    # Secret rotation with an overlap window: the secret before the last rotation keeps working until this time, so
    # a client's instances can be moved to the new one without an outage.
    previous_secret_digest: Mapped[str | None] = mapped_column(String(64))
    previous_secret_expires_at: Mapped[int | None] = mapped_column(BigInteger)
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
    # Who registered it: "operator" (CLI, admin), "self" (RFC 7591 dynamic registration) or "document" (a client ID
    # metadata document this server fetched): the last two are never trusted without the person's consent.
    registered_by: Mapped[str] = mapped_column(String(20), default="operator", server_default="operator")
    # OpenID Connect Registration 1.0 §2: "web" or "native", which decides the redirect URIs it may use.
    application_type: Mapped[str] = mapped_column(String(10), default="web", server_default="web")
    # RFC 7592 §3: the registration access token, as a digest; only self-registered clients have one.
    registration_token_digest: Mapped[str | None] = mapped_column(String(64))
    # The last day a token was issued to it (written at most once a day), so unused self-registrations are purged.
    last_used_at: Mapped[int | None] = mapped_column(BigInteger)
    # RFC 7591 §2 fields kept for display and read-back only (client_uri, logo_uri, tos_uri, policy_uri, contacts,
    # software_id, software_version).
    extra_metadata: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")  # JSON object
    # A client ID metadata document's freshness: refetch after metadata_expires_at; while a refetch fails, keep the
    # stored copy until metadata_stale_until.
    metadata_expires_at: Mapped[int | None] = mapped_column(BigInteger)
    metadata_stale_until: Mapped[int | None] = mapped_column(BigInteger)
    # RFC 8693: the resources this client may exchange a person's token for (JSON array); empty: no exchange.
    may_exchange_for: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    # RFC 9449 §5.2: refuse this client's token requests without a DPoP proof.
    dpop_bound_access_tokens: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # OpenID Connect CIBA Core 1.0 §4: "poll" or "ping" (None: no CIBA) and, for ping, where to notify.
    backchannel_token_delivery_mode: Mapped[str | None] = mapped_column(String(10))
    backchannel_client_notification_endpoint: Mapped[str | None] = mapped_column(Text)


class Scope(Base):
    __tablename__ = "scopes"
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    description: Mapped[str] = mapped_column(Text)
    # A restricted scope is not open to clients that registered themselves without an initial access token.
    restricted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Resource(Base):
    """A protected resource tokens may be minted for (RFC 8707 §2), with the scopes that belong to it."""

    __tablename__ = "resources"
    uri: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    scope: Mapped[str] = mapped_column(Text)  # space-separated scope names
    access_token_ttl: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(BigInteger)
    # RFC 9449 §7: the resource accepts only DPoP-bound tokens.
    require_dpop: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class AuthorizationDetailType(Base):
    """RFC 9396 §2: an ``authorization_details`` type the operator registered, with the JSON Schema requests of it
    must satisfy and the plain-words template consent and approval pages show."""

    __tablename__ = "authorization_detail_types"
    type: Mapped[str] = mapped_column(String(255), primary_key=True)
    schema: Mapped[str] = mapped_column(Text)  # JSON Schema
    describe: Mapped[str] = mapped_column(Text)  # e.g. "Pay {amount} {currency} to {creditorName}"
    created_at: Mapped[int] = mapped_column(BigInteger)


class InitialAccessToken(Base):
    """RFC 7591 §3: a bearer token an operator hands out that lets its holder register clients; kept as a digest."""

    __tablename__ = "initial_access_tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int | None] = mapped_column(BigInteger)
    uses_left: Mapped[int | None] = mapped_column(Integer)  # None: until it expires or is revoked
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)


# The purge of clients that registered themselves and went unused (storage/purge.py), and an RFC 7592 token's
# lookup by its digest (storage/clients.py), each one indexed read rather than a scan of every client.
Index("ix_clients_registered_by_last_used_at", Client.registered_by, Client.last_used_at)
Index("ix_clients_registration_token_digest", Client.registration_token_digest)
