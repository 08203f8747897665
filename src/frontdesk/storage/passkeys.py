"""Passkeys at rest (WebAuthn credentials: public keys, nothing secret) and the challenges handed out for them.

A challenge is stored as a digest, bound to its purpose and subject (the person registering, or the interaction
signing in), lives minutes, and is taken once: one DELETE decides which of two racing requests gets it.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from ..secret import digest
from .schema import Passkey, WebAuthnChallenge

__all__ = [
    "PasskeyRow",
    "add_passkey",
    "passkey_by_credential",
    "passkeys_of",
    "remove_passkey",
    "rename_passkey",
    "store_challenge",
    "take_challenge",
    "used_passkey",
]


@dataclass(frozen=True, slots=True)
class PasskeyRow:
    id: str
    user_id: str
    credential_id: bytes
    public_key: bytes
    sign_count: int
    backup_eligible: bool
    transports: tuple[str, ...]
    name: str
    created_at: int
    last_used_at: int | None


def _row(r: Any) -> PasskeyRow:
    return PasskeyRow(
        r.id,
        r.user_id,
        bytes(r.credential_id),
        bytes(r.public_key),
        r.sign_count,
        bool(r.backup_eligible),
        tuple(json.loads(r.transports)),
        r.name,
        r.created_at,
        r.last_used_at,
    )


def store_challenge(conn: Connection, challenge: bytes, purpose: str, subject: str, at: int, ttl: int) -> None:
    """Keep a new challenge; an earlier one of the same purpose and subject stops working, so asking again and
    again never piles up rows."""
    c = WebAuthnChallenge
    conn.execute(delete(c).where(c.purpose == purpose, c.subject == subject))
    conn.execute(
        insert(WebAuthnChallenge),
        {"digest": digest(challenge.hex()), "purpose": purpose, "subject": subject, "expires_at": at + ttl},
    )


def take_challenge(conn: Connection, challenge: bytes, purpose: str, subject: str, at: int) -> bool:
    """True once for a live challenge of this purpose and subject; False for an unknown, expired or used one."""
    c = WebAuthnChallenge
    result = conn.execute(
        delete(c).where(
            c.digest == digest(challenge.hex()), c.purpose == purpose, c.subject == subject, c.expires_at > at
        )
    )
    return result.rowcount == 1


def add_passkey(
    conn: Connection,
    *,
    user_id: str,
    credential_id: bytes,
    public_key: bytes,
    sign_count: int,
    backup_eligible: bool,
    transports: tuple[str, ...],
    name: str,
    at: int,
) -> str:
    passkey_id = secrets.token_hex(16)
    conn.execute(
        insert(Passkey),
        {
            "id": passkey_id,
            "user_id": user_id,
            "credential_digest": digest(credential_id.hex()),
            "credential_id": credential_id,
            "public_key": public_key,
            "sign_count": sign_count,
            "backup_eligible": backup_eligible,
            "transports": json.dumps(list(transports)),
            "name": name,
            "created_at": at,
            "last_used_at": None,
        },
    )
    return passkey_id


def passkeys_of(conn: Connection, user_id: str) -> list[PasskeyRow]:
    rows = conn.execute(select(Passkey).where(Passkey.user_id == user_id).order_by(Passkey.created_at, Passkey.id))
    return [_row(r) for r in rows]


def passkey_by_credential(conn: Connection, credential_id: bytes) -> PasskeyRow | None:
    row = conn.execute(select(Passkey).where(Passkey.credential_digest == digest(credential_id.hex()))).first()
    return _row(row) if row else None


def used_passkey(conn: Connection, passkey_id: str, old_count: int, new_count: int, at: int) -> bool:
    """Record a sign-in; False when another sign-in with the same signature counter won (a cloned or replayed
    assertion, W3C WebAuthn §6.1.1)."""
    p = Passkey
    result = conn.execute(
        update(p).where(p.id == passkey_id, p.sign_count == old_count).values(sign_count=new_count, last_used_at=at)
    )
    return result.rowcount == 1


def rename_passkey(conn: Connection, user_id: str, passkey_id: str, name: str) -> bool:
    p = Passkey
    return conn.execute(update(p).where(p.id == passkey_id, p.user_id == user_id).values(name=name)).rowcount == 1


def remove_passkey(conn: Connection, user_id: str, passkey_id: str) -> bool:
    p = Passkey
    return conn.execute(delete(p).where(p.id == passkey_id, p.user_id == user_id)).rowcount == 1
