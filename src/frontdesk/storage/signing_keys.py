"""The signing key ring's rows (crypto/key_ring.py): adding missing keys and rotating, each one transaction under
``KEY_RING_LOCK``, so that processes starting or rotating at once take turns; and the reads behind the JWKS.

Private keys arrive sealed under the master key (crypto/keys.py); nothing here opens them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from sqlalchemy import Engine, insert, select, update

from ..crypto.key_ring import NewKey
from ..crypto.keys import KeyInfo, StoredKey
from .db import KEY_RING_LOCK, now, serialize, transaction
from .schema import SigningKey

__all__ = ["SigningKeyStore"]


class SigningKeyStore:
    """The key ring's ``KeyStore`` on the database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add_missing(self, algs: Sequence[str], new_key: NewKey) -> list[str]:
        """Add an active and a next key for every algorithm that lacks one; returns the kids added."""
        created: list[str] = []
        with transaction(self._engine) as conn:
            serialize(conn, KEY_RING_LOCK)
            states = {(r.alg, r.state) for r in conn.execute(select(SigningKey.alg, SigningKey.state))}
            for alg in algs:
                for state in ("active", "next"):
                    if (alg, state) not in states:
                        key = new_key(alg, state, now())
                        conn.execute(insert(SigningKey), asdict(key))
                        created.append(key.kid)
        return created

    def rotate(self, algs: Sequence[str], retire_for: int, new_key: NewKey) -> list[str]:
        """Retire each active key (published ``retire_for`` seconds more), promote the next one (or add an active
        key where none is next), and add a fresh next key; returns the kids of the new next keys."""
        at = now()
        created: list[str] = []
        with transaction(self._engine) as conn:
            serialize(conn, KEY_RING_LOCK)
            rows = conn.execute(
                select(SigningKey.kid, SigningKey.alg, SigningKey.state).where(SigningKey.state.in_(("active", "next")))
            ).all()
            by = {(r.alg, r.state): r.kid for r in rows}
            for alg in algs:
                if (alg, "active") in by:
                    conn.execute(
                        update(SigningKey)
                        .where(SigningKey.kid == by[(alg, "active")])
                        .values(state="retired", publish_until=at + retire_for)
                    )
                if (alg, "next") in by:
                    conn.execute(update(SigningKey).where(SigningKey.kid == by[(alg, "next")]).values(state="active"))
                else:
                    conn.execute(insert(SigningKey), asdict(new_key(alg, "active", at)))
                key = new_key(alg, "next", at)
                conn.execute(insert(SigningKey), asdict(key))
                created.append(key.kid)
        return created

    def infos(self) -> list[KeyInfo]:
        """Every stored key, without its private part, oldest first."""
        with transaction(self._engine, readonly=True) as conn:
            rows = conn.execute(
                select(
                    SigningKey.kid,
                    SigningKey.alg,
                    SigningKey.state,
                    SigningKey.created_at,
                    SigningKey.publish_until,
                ).order_by(SigningKey.created_at, SigningKey.alg)
            ).all()
        return [KeyInfo(r.kid, r.alg, r.state, r.created_at, r.publish_until) for r in rows]

    def published(self) -> list[StoredKey]:
        """The keys in the JWKS now, oldest first: all but those retired past their ``publish_until``."""
        at = now()
        with transaction(self._engine, readonly=True) as conn:
            rows = conn.execute(select(SigningKey).order_by(SigningKey.created_at)).all()
        return [
            StoredKey(r.kid, r.alg, r.state, r.private_jwk, r.public_jwk, r.created_at, r.publish_until)
            for r in rows
            if not (r.state == "retired" and (r.publish_until or 0) <= at)
        ]
