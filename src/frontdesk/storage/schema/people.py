"""People: accounts, the consents they gave, and their authenticators: passkeys (WebAuthn), the TOTP second
factor (RFC 6238) and recovery codes."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Index, LargeBinary, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

__all__ = ["Consent", "EmailLink", "Passkey", "RecoveryCode", "TotpSecret", "User", "WebAuthnChallenge"]


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(255), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(255))
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    # OpenID Connect Core §5.1: true once the person followed a verification link sent to this address; an email
    # change sets it back to false.
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # A disabled person cannot sign in and their sessions, grants and tokens are ended; the row stays for audit.
    disabled_at: Mapped[int | None] = mapped_column(BigInteger)
    # Signed up (oauth/signup.py) and not yet confirmed their address: cannot sign in until they do (migration 0017).
    verification_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Consent(Base):
    __tablename__ = "consents"
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    scope: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)  # first granted
    updated_at: Mapped[int] = mapped_column(BigInteger)


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


# A client's consents, read or deleted by client alone (a client deleted or purged): the primary key leads with
# the person, so it cannot serve those.
Index("ix_consents_client_id", Consent.client_id)


class EmailLink(Base):
    """A one-time link sent by email (verify an address, reset a password, finish a sign-up): kept as the digest of
    its secret, bound to one person, one purpose and the address it was sent to, used once, short-lived."""

    __tablename__ = "email_links"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16))  # verify | reset | signup
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    email: Mapped[str] = mapped_column(String(320))  # the address it went to: a changed address voids it
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    consumed_at: Mapped[int | None] = mapped_column(BigInteger)
    # Who asked for it: "self" or the admin principal that started a reset, for the audit trail.
    requested_by: Mapped[str] = mapped_column(String(100), default="self", server_default="self")
