"""The relational schema (SQLAlchemy 2 typed models).

Timestamps are integer seconds since the epoch, UTC by definition: the same on SQLite and PostgreSQL, cheap to
compare in ``WHERE expires_at > :now`` and free of naive-datetime mistakes. Secrets appear only as digests.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Index, Integer, LargeBinary, MetaData, String, Text, false, true
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
    "LogoutDelivery",
    "Passkey",
    "RateLimit",
    "RecoveryCode",
    "RefreshToken",
    "RevokedAccessToken",
    "Scope",
    "Session",
    "SessionGrant",
    "SigninFailure",
    "SigningKey",
    "TotpSecret",
    "UpstreamIdentity",
    "UpstreamLogin",
    "UpstreamProvider",
    "UsedJti",
    "User",
    "VaultConnectSession",
    "VaultConnection",
    "VaultIntegration",
    "WebAuthnChallenge",
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
    # OpenID Connect RP-Initiated Logout 1.0 §3.1 and Back-Channel Logout 1.0 §2.2.
    post_logout_redirect_uris: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")  # JSON array
    backchannel_logout_uri: Mapped[str | None] = mapped_column(Text)
    backchannel_logout_session_required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # private_key_jwt: the audience its assertions may name (storage/clients.py, draft-ietf-oauth-rfc7523bis-09).
    assertion_audience: Mapped[str] = mapped_column(String(20), default="issuer", server_default="issuer")


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
    grant_id: Mapped[str] = mapped_column(String(64))  # indexed with consumed_at, below
    client_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    consumed_at: Mapped[int | None] = mapped_column(BigInteger)


class RevokedAccessToken(Base):
    __tablename__ = "revoked_access_tokens"
    jti: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class Session(Base):
    """A signed-in browser. The cookie holds the token; the row its digest, and a public id for the account page."""

    __tablename__ = "sessions"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(32), unique=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    auth_time: Mapped[int] = mapped_column(BigInteger)
    amr: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)  # absolute end
    last_seen_at: Mapped[int] = mapped_column(BigInteger)  # idle end = last_seen_at + lifetimes.session_idle
    user_agent: Mapped[str | None] = mapped_column(String(512))
    ip: Mapped[str | None] = mapped_column(String(64))


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
    # Who passed the first factor and how, while the second is still owed; user_id is set only once both are done.
    pending_user_id: Mapped[str | None] = mapped_column(String(64))
    pending_amr: Mapped[str | None] = mapped_column(Text)  # JSON array
    # The session whose sign-in this interaction carries (``sessions.id``): consent and the code are answered only
    # to a browser that still holds it (revision 0009).
    session_id: Mapped[str | None] = mapped_column(String(32))


class Consent(Base):
    __tablename__ = "consents"
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    scope: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)  # first granted
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
    amr: Mapped[str | None] = mapped_column(Text)  # JSON array: how the approving person signed in (RFC 8176)
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
# The account activity page: one person's events of the last days, newest first (``web.account.recent_events``).
Index("ix_audit_events_user_id_at", AuditEvent.user_id, AuditEvent.at)


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


# --- people: passkeys and the second factor (issue 5) ---------------------------------------------------------------


class Passkey(Base):
    """A WebAuthn credential (a discoverable one: the person signs in without typing a username)."""

    __tablename__ = "passkeys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    credential_digest: Mapped[str] = mapped_column(String(64), unique=True)  # of the credential id, for lookup
    credential_id: Mapped[bytes] = mapped_column(LargeBinary)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # COSE_Key
    sign_count: Mapped[int] = mapped_column(BigInteger)
    # Backup eligible (synced) keys are "swk" in amr, device-bound ones "hwk" (RFC 8176 §2).
    backup_eligible: Mapped[bool] = mapped_column(Boolean)
    transports: Mapped[str] = mapped_column(Text)  # JSON array
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger)


class WebAuthnChallenge(Base):
    """A challenge handed to the browser: stored as a digest, bound to its purpose and subject, used once."""

    __tablename__ = "webauthn_challenges"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16))  # register | authenticate
    # The person (register) or the interaction (authenticate): one live challenge each.
    subject: Mapped[str] = mapped_column(String(64), index=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class TotpSecret(Base):
    """RFC 6238 shared secret: recoverable, so sealed under the master key (AAD = user id); confirmed once the
    person typed a first code from it."""

    __tablename__ = "totp_secrets"
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret: Mapped[bytes] = mapped_column(LargeBinary)  # AES-256-GCM envelope
    confirmed_at: Mapped[int | None] = mapped_column(BigInteger)
    # RFC 6238 §5.2: a code is accepted once; a later sign-in needs a later time step.
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)


class RecoveryCode(Base):
    """A one-time code for when the authenticator app is lost: shown once, kept as a keyed digest."""

    __tablename__ = "recovery_codes"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger)


# --- sign-out and upstream providers (issue 5) ----------------------------------------------------------------------


class SessionGrant(Base):
    """A grant issued in a browser session: the clients to tell when that session ends (Back-Channel Logout 1.0)."""

    __tablename__ = "session_grants"
    grant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sid: Mapped[str] = mapped_column(String(32), index=True)  # the session's public id, the ID token's ``sid``
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    client_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)  # the session's longest possible end


class LogoutDelivery(Base):
    """The outbox of logout tokens still to deliver: a restart loses none. The token is signed at each attempt
    from these claims, so no bearer-like artefact rests in the database."""

    __tablename__ = "logout_deliveries"
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(String(64))
    sid: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[int] = mapped_column(BigInteger, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)


class SigninFailure(Base):
    """Recent failed sign-ins of one subject (an account, an address, or both), for progressive delays."""

    __tablename__ = "signin_failures"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # digest of the kind and subject
    failures: Mapped[int] = mapped_column(Integer)
    last_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)  # forgotten after this


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
