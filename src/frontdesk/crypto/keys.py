"""The signing key ring: per algorithm one *active* key that signs, one *next* key published ahead of use, and
*retired* keys kept in the JWKS until everything they signed has expired.

Private keys live in the database sealed under the master key. Each process keeps parsed key objects and reloads
the ring at most every ``RELOAD_SECONDS`` so that a rotation made by any process is picked up everywhere.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, KeyParameters, OKPKey, RSAKey
from joserfc.jws import extract_compact
from sqlalchemy import Engine, insert, select, update

from ..config import SIGNING_ALGS
from ..storage.db import KEY_RING_LOCK, now, serialize, transaction
from ..storage.schema import SigningKey
from .aead import MasterKey

__all__ = ["SIGNING_ALGS", "KeyInfo", "KeyRing"]

# RFC 9864 deprecates the polymorphic "EdDSA" name; relying parties still ask for it, so we still offer it.
warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)

RELOAD_SECONDS = 30.0
Key = ECKey | RSAKey | OKPKey


def _generate(alg: str, kid: str) -> Key:
    params: KeyParameters = {"kid": kid, "alg": alg, "use": "sig"}
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters=params, private=True)
    if alg == "RS256":
        return RSAKey.generate_key(2048, parameters=params, private=True)
    return OKPKey.generate_key("Ed25519", parameters=params, private=True)


def _import(alg: str, data: dict[str, Any]) -> Key:
    if alg == "ES256":
        return ECKey.import_key(data)
    if alg == "RS256":
        return RSAKey.import_key(data)
    return OKPKey.import_key(data)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    kid: str
    alg: str
    state: str
    created_at: int
    publish_until: int | None


@dataclass(frozen=True, slots=True)
class _Loaded:
    signing: dict[str, tuple[str, Key]]  # alg -> (kid, key)
    verifying: dict[str, Key]  # kid -> key, every published key
    jwks: bytes
    loaded_at: float


class KeyRing:
    def __init__(self, engine: Engine, master: MasterKey, retire_for: Callable[[], int]) -> None:
        self._engine = engine
        self._master = master
        self._retire_for = retire_for  # seconds a retired key must stay published
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()

    def _seal(self, key: Key) -> bytes:
        kid = str(key.kid)
        return self._master.seal(json.dumps(key.as_dict(private=True)).encode(), aad=b"signing_key:" + kid.encode())

    def _row(self, alg: str, state: str, at: int) -> dict[str, Any]:
        kid = secrets.token_urlsafe(12)
        key = _generate(alg, kid)
        return {
            "kid": kid,
            "alg": alg,
            "state": state,
            "private_jwk": self._seal(key),
            "public_jwk": json.dumps(key.as_dict(private=False)),
            "created_at": at,
            "publish_until": None,
        }

    def ensure(self) -> list[str]:
        """Create an active and a next key for every algorithm that has none; returns the kids created."""
        created: list[str] = []
        with transaction(self._engine) as conn:
            serialize(conn, KEY_RING_LOCK)
            states = {(r.alg, r.state) for r in conn.execute(select(SigningKey.alg, SigningKey.state))}
            for alg in SIGNING_ALGS:
                for state in ("active", "next"):
                    if (alg, state) not in states:
                        row = self._row(alg, state, now())
                        conn.execute(insert(SigningKey), row)
                        created.append(row["kid"])
        self._loaded = None
        return created

    def rotate(self) -> list[str]:
        """Promote each next key to active, retire the active one, and publish a fresh next key."""
        at = now()
        created: list[str] = []
        with transaction(self._engine) as conn:
            serialize(conn, KEY_RING_LOCK)
            rows = conn.execute(
                select(SigningKey.kid, SigningKey.alg, SigningKey.state).where(SigningKey.state.in_(("active", "next")))
            ).all()
            by = {(r.alg, r.state): r.kid for r in rows}
            for alg in SIGNING_ALGS:
                if (alg, "active") in by:
                    conn.execute(
                        update(SigningKey)
                        .where(SigningKey.kid == by[(alg, "active")])
                        .values(state="retired", publish_until=at + self._retire_for())
                    )
                if (alg, "next") in by:
                    conn.execute(update(SigningKey).where(SigningKey.kid == by[(alg, "next")]).values(state="active"))
                else:
                    conn.execute(insert(SigningKey), self._row(alg, "active", at))
                row = self._row(alg, "next", at)
                conn.execute(insert(SigningKey), row)
                created.append(row["kid"])
        self._loaded = None
        return created

    def list(self) -> list[KeyInfo]:
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

    def _load(self) -> _Loaded:
        loaded = self._loaded
        if loaded is not None and time.monotonic() - loaded.loaded_at < RELOAD_SECONDS:
            return loaded
        with self._lock:
            loaded = self._loaded
            if loaded is not None and time.monotonic() - loaded.loaded_at < RELOAD_SECONDS:
                return loaded
            at = now()
            with transaction(self._engine, readonly=True) as conn:
                rows = conn.execute(select(SigningKey).order_by(SigningKey.created_at)).all()
            signing: dict[str, tuple[str, Key]] = {}
            verifying: dict[str, Key] = {}
            public: list[dict[str, Any]] = []
            for row in rows:
                if row.state == "retired" and (row.publish_until or 0) <= at:
                    continue
                public.append(json.loads(row.public_jwk))
                if row.state == "next":
                    verifying[row.kid] = _import(row.alg, json.loads(row.public_jwk))
                    continue
                key = _import(
                    row.alg,
                    json.loads(self._master.open(row.private_jwk, b"signing_key:" + row.kid.encode())),
                )
                verifying[row.kid] = key
                if row.state == "active":
                    signing[row.alg] = (row.kid, key)
            jwks = json.dumps({"keys": public}, separators=(",", ":")).encode()
            self._loaded = _Loaded(signing, verifying, jwks, time.monotonic())
            return self._loaded

    @property
    def jwks(self) -> bytes:
        return self._load().jwks

    def sign(self, claims: dict[str, Any], alg: str, typ: str = "JWT") -> str:
        kid, key = self._load().signing[alg]
        return jwt.encode({"alg": alg, "kid": kid, "typ": typ}, claims, key, algorithms=[alg])

    def verify(self, token: str) -> jwt.Token:
        """Verify a JWT signed by this ring; raises ``ValueError`` (or a joserfc error) when it is not ours."""
        header = extract_compact(token.encode()).protected
        kid = header.get("kid")
        alg = header.get("alg")
        loaded = self._load()
        key = loaded.verifying.get(str(kid))
        if key is None or alg != key.get("alg") or alg not in SIGNING_ALGS:
            raise ValueError("unknown signing key")
        return jwt.decode(token, key, algorithms=[alg])
