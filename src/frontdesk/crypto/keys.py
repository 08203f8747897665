"""The signing key ring: per algorithm one *active* key that signs, one *next* key published ahead of use, and
*retired* keys kept in the JWKS until everything they signed has expired.

Private keys live in the database sealed under the master key. Each process keeps parsed key objects and reloads
the ring at most every ``RELOAD_SECONDS`` so that a rotation made by any process is picked up everywhere.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, KeyParameters, OKPKey, RSAKey
from joserfc.jws import extract_compact
from sqlalchemy import Engine, insert, select, update

from ..config import SIGNING_ALGS
from ..storage.db import KEY_RING_LOCK, now, serialize, transaction
from ..storage.schema import SigningKey
from ..wire import dumps
from .aead import MasterKey

__all__ = ["SIGNING_ALGS", "KeyInfo", "KeyRing"]

# RFC 9864 deprecates the polymorphic "EdDSA" name; relying parties still ask for it, so we still offer it.
warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)

log = logging.getLogger("frontdesk.keys")
RELOAD_SECONDS = 30.0
VERIFIED_CACHE = 4096
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


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


class _Signer:
    """Compact JWS (RFC 7515 §7.1) with one key: the protected header of each ``typ`` is encoded once, and the
    signature is made with the parsed key object directly (what joserfc does, less its per-call set-up)."""

    __slots__ = ("_headers", "_sign", "alg", "key", "kid")

    def __init__(self, kid: str, alg: str, key: Key) -> None:
        self.kid, self.alg, self.key = kid, alg, key
        self._headers: dict[str, bytes] = {}
        private = key.private_key
        if alg == "ES256":
            assert isinstance(private, ec.EllipticCurvePrivateKey)

            ecdsa = ec.ECDSA(hashes.SHA256())

            def es256(data: bytes) -> bytes:
                # RFC 7518 §3.4: R and S as two 32-byte big-endian integers, not DER.
                r, s = decode_dss_signature(private.sign(data, ecdsa))
                return r.to_bytes(32, "big") + s.to_bytes(32, "big")

            self._sign = es256
        elif alg == "RS256":
            assert isinstance(private, rsa.RSAPrivateKey)
            self._sign = lambda data: private.sign(data, padding.PKCS1v15(), hashes.SHA256())
        else:
            assert isinstance(private, ed25519.Ed25519PrivateKey)
            self._sign = private.sign

    def sign(self, claims: dict[str, Any], typ: str) -> str:
        header = self._headers.get(typ)
        if header is None:
            header = _b64(json.dumps({"alg": self.alg, "kid": self.kid, "typ": typ}, separators=(",", ":")).encode())
            self._headers[typ] = header
        signing_input = header + b"." + _b64(dumps(claims))
        return (signing_input + b"." + _b64(self._sign(signing_input))).decode("ascii")


@dataclass(frozen=True, slots=True)
class _Loaded:
    signing: dict[str, _Signer]  # alg -> the active key's signer
    verifying: dict[str, Key]  # kid -> key, every published key
    by_row: dict[tuple[str, str, bytes], Key]  # (kid, alg, sealed private key) -> parsed key, reused on reload
    jwks: bytes
    loaded_at: float
    # Tokens that verified against this ring, by their exact text; a reload starts afresh, so a key that stops
    # being published takes its tokens with it within RELOAD_SECONDS, as it leaves ``verifying``.
    verified: dict[str, jwt.Token] = field(default_factory=dict)


class KeyRing:
    def __init__(self, engine: Engine, master: MasterKey, retire_for: Callable[[], int]) -> None:
        self._engine = engine
        self._master = master
        self._retire_for = retire_for  # seconds a retired key must stay published
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()
        self._reloading = threading.Lock()  # held while a background reload runs: one at a time

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
        """The ring as last read. Past ``RELOAD_SECONDS`` a background thread re-reads it while requests go on
        with the one they have: a request never waits for the database here (it may be inside a transaction that
        holds the last pooled connection), except for the very first read."""
        loaded = self._loaded
        if loaded is None:
            with self._lock:
                if self._loaded is None:
                    self._loaded = self._read()
                return self._loaded
        if time.monotonic() - loaded.loaded_at >= RELOAD_SECONDS and self._reloading.acquire(blocking=False):
            threading.Thread(target=self._reload, args=(loaded,), name="frontdesk-keyring", daemon=True).start()
        return loaded

    def _reload(self, stale: _Loaded) -> None:
        try:
            fresh = self._read()
            with self._lock:
                # ensure() or rotate() in this process replaced the ring meanwhile: their read is the newer one.
                if self._loaded is stale:
                    self._loaded = fresh
        except Exception:  # the old ring stays in use; the next request past the deadline tries again
            log.exception("signing key ring reload failed")
        finally:
            self._reloading.release()

    def _read(self) -> _Loaded:
        at = now()
        with transaction(self._engine, readonly=True) as conn:
            rows = conn.execute(select(SigningKey).order_by(SigningKey.created_at)).all()
        previous = self._loaded.by_row if self._loaded is not None else {}
        signing: dict[str, _Signer] = {}
        verifying: dict[str, Key] = {}
        by_row: dict[tuple[str, str, bytes], Key] = {}
        public: list[dict[str, Any]] = []
        for row in rows:
            if row.state == "retired" and (row.publish_until or 0) <= at:
                continue
            public.append(json.loads(row.public_jwk))
            # Parsed key objects are kept across reloads: an RSA import alone costs milliseconds.
            sealed = b"" if row.state == "next" else row.private_jwk
            ident = (row.kid, row.alg, sealed)
            key = previous.get(ident)
            if key is None:
                if row.state == "next":
                    key = _import(row.alg, json.loads(row.public_jwk))
                else:
                    opened = self._master.open(row.private_jwk, b"signing_key:" + row.kid.encode())
                    key = _import(row.alg, json.loads(opened))
            by_row[ident] = key
            verifying[row.kid] = key
            if row.state == "active":
                signing[row.alg] = _Signer(row.kid, row.alg, key)
        jwks = json.dumps({"keys": public}, separators=(",", ":")).encode()
        return _Loaded(signing, verifying, by_row, jwks, time.monotonic())

    @property
    def jwks(self) -> bytes:
        return self._load().jwks

    def sign(self, claims: dict[str, Any], alg: str, typ: str = "JWT") -> str:
        return self._load().signing[alg].sign(claims, typ)

    def verify(self, token: str) -> jwt.Token:
        """Verify a JWT signed by this ring; raises ``ValueError`` (or a joserfc error) when it is not ours.

        A token that verified once is remembered (by its exact text) until the next reload of the ring, so a
        resource server introspecting the same token again costs no second signature check."""
        loaded = self._load()
        hit = loaded.verified.get(token)
        if hit is not None:
            return hit
        header = extract_compact(token.encode()).protected
        kid = header.get("kid")
        alg = header.get("alg")
        key = loaded.verifying.get(str(kid))
        if key is None or alg != key.get("alg") or alg not in SIGNING_ALGS:
            raise ValueError("unknown signing key")
        decoded = jwt.decode(token, key, algorithms=[alg])
        if len(loaded.verified) >= VERIFIED_CACHE:
            loaded.verified.clear()
        loaded.verified[token] = decoded
        return decoded
