"""People, their browser sessions and the consents they gave.

A session ends at its absolute expiry or after ``session_idle`` seconds unused, whichever comes first. Its last use
is written at most once a minute (``SEEN_EVERY``), so a busy browser costs one small write a minute, not one a page.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..crypto.passwords import hash_password, verify_password
from ..secret import digest, new_token
from .db import now, transaction
from .schema import (
    AuditEvent,
    Consent,
    Grant,
    Passkey,
    RecoveryCode,
    Session,
    SessionGrant,
    TotpSecret,
    UpstreamIdentity,
    User,
)

__all__ = [
    "ACCOUNT_EVENTS",
    "SEEN_EVERY",
    "AccountEvent",
    "BrowserSession",
    "SessionRow",
    "UserError",
    "UserRecord",
    "UserStore",
    "check_new_password",
    "close_other_sessions",
    "close_session",
    "close_session_by_id",
    "close_sessions",
    "consented_scope",
    "live_sessions",
    "open_session",
    "recent_events",
    "record_consent",
    "session_for",
]

_USERNAME = re.compile(r"[A-Za-z0-9._@+-]{1,255}")
SEEN_EVERY = 60
USER_AGENT_MAX = 512


class UserError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: str
    username: str
    email: str | None
    name: str | None
    created_at: int
    email_verified: bool = False  # OpenID Connect Core §5.1: the person followed a link sent to ``email``


@dataclass(frozen=True, slots=True)
class SessionRow:
    user_id: str
    auth_time: int
    amr: tuple[str, ...]
    id: str = ""
    digest: str = ""


@dataclass(frozen=True, slots=True)
class BrowserSession:
    """A signed-in browser as the account page lists it."""

    id: str
    created_at: int
    last_seen_at: int
    user_agent: str | None
    ip: str | None
    amr: tuple[str, ...]
    current: bool


def _user(row: Any) -> UserRecord:
    return UserRecord(row.id, row.username, row.email, row.name, row.created_at, bool(row.email_verified))


def check_new_password(password: str) -> None:
    if len(password) < 8:
        raise UserError("password must be at least 8 characters")


class UserStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(
        self,
        username: str,
        password: str,
        email: str | None = None,
        name: str | None = None,
        *,
        verification_pending: bool = False,  # signed up: no sign-in until the address is confirmed
    ) -> UserRecord:
        if not _USERNAME.fullmatch(username):
            raise UserError("username may use letters, digits and . _ @ + - (1 to 255 characters)")
        check_new_password(password)
        if email is not None and ("@" not in email or len(email) > 320):
            raise UserError("email is not an address")
        row = {
            "id": secrets.token_hex(16),
            "username": username,
            "email": email,
            "name": name,
            "password_hash": hash_password(password),
            "created_at": now(),
            "verification_pending": verification_pending,
        }
        try:
            with transaction(self._engine) as conn:
                conn.execute(insert(User), row)
        except IntegrityError:
            raise UserError(f"user {username!r} already exists") from None
        return UserRecord(str(row["id"]), username, email, name, int(str(row["created_at"])))

    def list(self) -> list[UserRecord]:
        with transaction(self._engine, readonly=True) as conn:
            return [_user(r) for r in conn.execute(select(User).order_by(User.username))]

    def by_id(self, conn: Connection, user_id: str) -> UserRecord | None:
        row = conn.execute(select(User).where(User.id == user_id)).first()
        return _user(row) if row else None

    def id_of(self, conn: Connection, username: str) -> str | None:
        row = conn.execute(select(User.id).where(User.username == username)).first()
        return str(row[0]) if row else None

    def delete(self, username: str) -> bool:
        with transaction(self._engine) as conn:
            row = conn.execute(select(User.id).where(User.username == username)).first()
            if row is None:
                return False
            # Everything the person granted dies with them: refresh tokens at once, access tokens at introspection.
            conn.execute(
                update(Grant).where(Grant.user_id == row[0], Grant.revoked_at.is_(None)).values(revoked_at=now())
            )
            for model in (Session, Consent, Passkey, TotpSecret, RecoveryCode, SessionGrant, UpstreamIdentity):
                conn.execute(delete(model).where(model.user_id == row[0]))
            conn.execute(delete(User).where(User.id == row[0]))
        return True

    def authenticate(self, username: str, password: str) -> UserRecord | None:
        with transaction(self._engine, readonly=True) as conn:
            row = conn.execute(select(User).where(User.username == username)).first()
        if row is None:
            verify_password(None, password)  # same cost as a real check: no enumeration by timing
            return None
        return _user(row) if verify_password(row.password_hash, password) else None

    def password_matches(self, user_id: str, password: str) -> bool:
        with transaction(self._engine, readonly=True) as conn:
            stored = conn.execute(select(User.password_hash).where(User.id == user_id)).scalar()
        return verify_password(stored, password)

    def set_password(self, conn: Connection, user_id: str, password_hash: str) -> None:
        """Store a hash made by ``hash_password`` outside the transaction (argon2 is slow on purpose)."""
        conn.execute(update(User).where(User.id == user_id).values(password_hash=password_hash))


# --- sessions ---------------------------------------------------------------------------------------------------


def open_session(
    conn: Connection,
    user_id: str,
    amr: tuple[str, ...],
    at: int,
    ttl: int,
    *,
    user_agent: str | None = None,
    ip: str | None = None,
) -> str:
    token = new_token("session")
    conn.execute(
        insert(Session),
        {
            "digest": digest(token),
            "id": secrets.token_hex(16),
            "user_id": user_id,
            "auth_time": at,
            "amr": json.dumps(list(amr)),
            "created_at": at,
            "expires_at": at + ttl,
            "last_seen_at": at,
            "user_agent": user_agent[:USER_AGENT_MAX] if user_agent else None,
            "ip": ip,
        },
    )
    return token


def session_for(conn: Connection, token: str, at: int, idle: int) -> SessionRow | None:
    """The live session of a cookie: neither past its absolute end nor unused for ``idle`` seconds.

    In a write transaction its last use moves forward, at most once every ``SEEN_EVERY`` seconds."""
    token_digest = digest(token)
    s = Session
    row = conn.execute(
        select(s.id, s.user_id, s.auth_time, s.amr, s.last_seen_at).where(
            s.digest == token_digest, s.expires_at > at, s.last_seen_at > at - idle
        )
    ).first()
    if row is None:
        return None
    if at - row.last_seen_at >= SEEN_EVERY and not conn.get_execution_options().get("frontdesk_readonly"):
        conn.execute(update(s).where(s.digest == token_digest, s.last_seen_at < at).values(last_seen_at=at))
    return SessionRow(row.user_id, row.auth_time, tuple(json.loads(row.amr)), row.id, token_digest)


def close_session(conn: Connection, token: str) -> None:
    conn.execute(delete(Session).where(Session.digest == digest(token)))


def live_sessions(conn: Connection, user_id: str, at: int, idle: int, current: str | None) -> list[BrowserSession]:
    """Every browser the person is signed in on, the most recently used first; ``current`` is this one's id."""
    s = Session
    rows = conn.execute(
        select(s.id, s.created_at, s.last_seen_at, s.user_agent, s.ip, s.amr)
        .where(s.user_id == user_id, s.expires_at > at, s.last_seen_at > at - idle)
        .order_by(s.last_seen_at.desc(), s.created_at.desc())
    )
    return [
        BrowserSession(
            r.id, r.created_at, r.last_seen_at, r.user_agent, r.ip, tuple(json.loads(r.amr)), r.id == current
        )
        for r in rows
    ]


def close_session_by_id(conn: Connection, user_id: str, session_id: str) -> bool:
    """Sign out one browser of this person (never another person's, whatever id is posted)."""
    return conn.execute(delete(Session).where(Session.user_id == user_id, Session.id == session_id)).rowcount == 1


def close_other_sessions(conn: Connection, user_id: str, keep_id: str) -> int:
    return conn.execute(delete(Session).where(Session.user_id == user_id, Session.id != keep_id)).rowcount


def close_sessions(conn: Connection, user_id: str) -> int:
    return conn.execute(delete(Session).where(Session.user_id == user_id)).rowcount


# --- consents ---------------------------------------------------------------------------------------------------


def consented_scope(conn: Connection, user_id: str, client_id: str) -> tuple[str, ...]:
    row = conn.execute(select(Consent.scope).where(Consent.user_id == user_id, Consent.client_id == client_id)).first()
    return tuple(row[0].split()) if row else ()


def record_consent(conn: Connection, user_id: str, client_id: str, scope: tuple[str, ...], at: int) -> None:
    merged = tuple(dict.fromkeys(consented_scope(conn, user_id, client_id) + scope))
    updated = conn.execute(
        update(Consent)
        .where(Consent.user_id == user_id, Consent.client_id == client_id)
        .values(scope=" ".join(merged), updated_at=at)
    ).rowcount
    if not updated:
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(Consent),
                    {
                        "user_id": user_id,
                        "client_id": client_id,
                        "scope": " ".join(merged),
                        "created_at": at,
                        "updated_at": at,
                    },
                )
        except IntegrityError:
            # A concurrent request (in this process or another) recorded the first consent meanwhile: merge into it.
            merged = tuple(dict.fromkeys(consented_scope(conn, user_id, client_id) + scope))
            conn.execute(
                update(Consent)
                .where(Consent.user_id == user_id, Consent.client_id == client_id)
                .values(scope=" ".join(merged), updated_at=at)
            )


# --- a person's activity ----------------------------------------------------------------------------------------

# The audit events about a person's own account, as the account's activity page lists them.
ACCOUNT_EVENTS = (
    "signin",
    "second_factor",
    "recovery_code.used",
    "consent",
    "app.revoked",
    "token.revoked",
    "code.replayed",
    "refresh.reused",
    "logout",
    "password.changed",
    "passkey.added",
    "passkey.renamed",
    "passkey.removed",
    "second_factor.enrolled",
    "second_factor.removed",
    "recovery_codes.created",
    "vault.connection.deleted",  # disconnected on the account page (only then is it the person's event)
    "password.reset_sent",  # oauth/email_links.py
    "password.reset",
    "email.verification_sent",
    "email.verified",
    "email.changed",
    "signup",
)


@dataclass(frozen=True, slots=True)
class AccountEvent:
    """One audit event of ``ACCOUNT_EVENTS`` about the person (never a secret: audit details hold none)."""

    at: int
    event: str
    outcome: str
    client_id: str | None
    ip: str | None
    detail: dict[str, Any]


def recent_events(conn: Connection, user_id: str, since: int, limit: int = 50) -> list[AccountEvent]:
    """The person's own ``ACCOUNT_EVENTS`` since ``since``, newest first, at most ``limit``."""
    # Through the (user_id, at) index (migration 0006): only the person's own events are read, newest first, so the
    # page costs the same on a busy server.
    e = AuditEvent
    query = (
        select(e.at, e.event, e.outcome, e.client_id, e.ip, e.detail)
        .where(e.at >= since, e.user_id == user_id, e.event.in_(ACCOUNT_EVENTS))
        .order_by(e.at.desc(), e.id.desc())
        .limit(limit)
    )
    rows = conn.execute(query)
    return [AccountEvent(r.at, r.event, r.outcome, r.client_id, r.ip, json.loads(r.detail)) for r in rows]
