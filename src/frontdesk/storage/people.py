"""People, their browser sessions and the consents they gave."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..crypto.passwords import DUMMY_HASH, hash_password, verify_password
from ..secret import digest, new_token
from .db import now, transaction
from .schema import Consent, Grant, Session, User

__all__ = ["SessionRow", "UserError", "UserRecord", "UserStore"]

_USERNAME = re.compile(r"[A-Za-z0-9._@+-]{1,255}")


class UserError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: str
    username: str
    email: str | None
    name: str | None
    created_at: int


@dataclass(frozen=True, slots=True)
class SessionRow:
    user_id: str
    auth_time: int
    amr: tuple[str, ...]


def _user(row: Any) -> UserRecord:
    return UserRecord(row.id, row.username, row.email, row.name, row.created_at)


class UserStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, username: str, password: str, email: str | None = None, name: str | None = None) -> UserRecord:
        if not _USERNAME.fullmatch(username):
            raise UserError("username may use letters, digits and . _ @ + - (1 to 255 characters)")
        if len(password) < 8:
            raise UserError("password must be at least 8 characters")
        if email is not None and ("@" not in email or len(email) > 320):
            raise UserError("email is not an address")
        row = {
            "id": secrets.token_hex(16),
            "username": username,
            "email": email,
            "name": name,
            "password_hash": hash_password(password),
            "created_at": now(),
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

    def delete(self, username: str) -> bool:
        with transaction(self._engine) as conn:
            row = conn.execute(select(User.id).where(User.username == username)).first()
            if row is None:
                return False
            # Everything the person granted dies with them: refresh tokens at once, access tokens at introspection.
            conn.execute(
                update(Grant).where(Grant.user_id == row[0], Grant.revoked_at.is_(None)).values(revoked_at=now())
            )
            conn.execute(delete(Session).where(Session.user_id == row[0]))
            conn.execute(delete(Consent).where(Consent.user_id == row[0]))
            conn.execute(delete(User).where(User.id == row[0]))
        return True

    def authenticate(self, username: str, password: str) -> UserRecord | None:
        with transaction(self._engine, readonly=True) as conn:
            row = conn.execute(select(User).where(User.username == username)).first()
        if row is None:
            verify_password(DUMMY_HASH, password)  # same cost as a real check: no enumeration by timing
            return None
        return _user(row) if verify_password(row.password_hash, password) else None


def open_session(conn: Connection, user_id: str, amr: tuple[str, ...], at: int, ttl: int) -> str:
    token = new_token("session")
    conn.execute(
        insert(Session),
        {
            "digest": digest(token),
            "user_id": user_id,
            "auth_time": at,
            "amr": json.dumps(list(amr)),
            "created_at": at,
            "expires_at": at + ttl,
        },
    )
    return token


def session_for(conn: Connection, token: str, at: int) -> SessionRow | None:
    row = conn.execute(
        select(Session.user_id, Session.auth_time, Session.amr).where(
            Session.digest == digest(token), Session.expires_at > at
        )
    ).first()
    return SessionRow(row.user_id, row.auth_time, tuple(json.loads(row.amr))) if row else None


def close_session(conn: Connection, token: str) -> None:
    conn.execute(delete(Session).where(Session.digest == digest(token)))


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
                    {"user_id": user_id, "client_id": client_id, "scope": " ".join(merged), "updated_at": at},
                )
        except IntegrityError:
            # A concurrent request (in this process or another) recorded the first consent meanwhile: merge into it.
            merged = tuple(dict.fromkeys(consented_scope(conn, user_id, client_id) + scope))
            conn.execute(
                update(Consent)
                .where(Consent.user_id == user_id, Consent.client_id == client_id)
                .values(scope=" ".join(merged), updated_at=at)
            )
