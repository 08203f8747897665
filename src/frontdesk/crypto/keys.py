"""Signing key material (RFC 7517 JWK, RFC 7515 JWS): generating a key and sealing it under the master key, opening
stored keys into a :class:`KeySet` that signs with the active key of each algorithm, verifies against every published
one and serves them as the JWKS. Pure: the rows come from storage (storage/signing_keys.py) through the key ring
(crypto/key_ring.py), which decides when to read them.
"""

from __future__ import annotations

import binascii
import json
import secrets
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, KeyParameters, OKPKey, RSAKey
from joserfc.jws import extract_compact

from ..config import SIGNING_ALGS
from ..wire import dumps
from .aead import MasterKey

__all__ = ["Key", "KeyInfo", "KeySet", "StoredKey", "new_stored_key", "read_key_set"]

# RFC 9864 deprecates the polymorphic "EdDSA" name; relying parties still ask for it, so we still offer it.
warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)

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


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A signing key as stored: the private JWK sealed under the master key, the public JWK in clear."""

    kid: str
    alg: str
    state: str  # "active" signs, "next" is published ahead of use, "retired" stays published until publish_until
    private_jwk: bytes
    public_jwk: str
    created_at: int
    publish_until: int | None


def _aad(kid: str) -> bytes:
    return b"signing_key:" + kid.encode()


def new_stored_key(master: MasterKey, alg: str, state: str, at: int) -> StoredKey:
    """A freshly generated key of ``alg``, sealed for storage."""
    kid = secrets.token_urlsafe(12)
    key = _generate(alg, kid)
    sealed = master.seal(json.dumps(key.as_dict(private=True)).encode(), aad=_aad(kid))
    return StoredKey(kid, alg, state, sealed, json.dumps(key.as_dict(private=False)), at, None)


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data: bytes) -> bytes:
    # RFC 7515 §2 base64url without padding: base64.urlsafe_b64encode's own two steps, without its two Python calls.
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=")


def _raw_p256(der: bytes) -> bytes:
    """A P-256 ECDSA signature as OpenSSL gives it (DER: SEQUENCE of INTEGER r, INTEGER s; X.690 §8.3) turned into
    RFC 7518 §3.4's R || S, read off the bytes: each integer is at most 33 bytes (a leading zero keeps it positive),
    so every length is one byte. Anything else is left to the ASN.1 decoder."""
    size = len(der)
    r_len = der[3] if size > 8 else size
    s_at = 4 + r_len
    if s_at + 2 < size and der[0] == 0x30 and der[1] == size - 2 and der[2] == 0x02 and der[s_at] == 0x02:
        s_len = der[s_at + 1]
        if r_len <= 33 and s_len <= 33 and s_at + 2 + s_len == size:
            r, s = der[4:s_at], der[s_at + 2 :]
            return r[-32:].rjust(32, b"\0") + s[-32:].rjust(32, b"\0")
    r_int, s_int = decode_dss_signature(der)
    return r_int.to_bytes(32, "big") + s_int.to_bytes(32, "big")


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
                return _raw_p256(private.sign(data, ecdsa))

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
class KeySet:
    """The ring as read at ``loaded_at`` (a monotonic time)."""

    signing: dict[str, _Signer]  # alg -> the active key's signer
    verifying: dict[str, Key]  # kid -> key, every published key
    by_row: dict[tuple[str, str, bytes], Key]  # (kid, alg, sealed private key) -> parsed key, reused on reload
    jwks: bytes
    loaded_at: float
    # Tokens that verified against this ring, by their exact text; a reload starts afresh, so a key that stops
    # being published takes its tokens with it within the key ring's reload interval, as it leaves ``verifying``.
    verified: dict[str, jwt.Token] = field(default_factory=dict)

    def sign(self, claims: dict[str, Any], alg: str, typ: str = "JWT") -> str:
        return self.signing[alg].sign(claims, typ)

    def verify(self, token: str) -> jwt.Token:
        """Verify a JWT signed by one of these keys; raises ``ValueError`` (or a joserfc error) when it is not ours.

        A token that verified once is remembered (by its exact text) for the life of this set, so a resource
        server introspecting the same token again costs no second signature check."""
        hit = self.verified.get(token)
        if hit is not None:
            return hit
        header = extract_compact(token.encode()).protected
        kid = header.get("kid")
        alg = header.get("alg")
        key = self.verifying.get(str(kid))
        if key is None or alg != key.get("alg") or alg not in SIGNING_ALGS:
            raise ValueError("unknown signing key")
        decoded = jwt.decode(token, key, algorithms=[alg])
        if len(self.verified) >= VERIFIED_CACHE:
            self.verified.clear()
        self.verified[token] = decoded
        return decoded


def read_key_set(
    published: Sequence[StoredKey], master: MasterKey, loaded_at: float, previous: KeySet | None = None
) -> KeySet:
    """The set of the ``published`` keys (oldest first; a retired key past ``publish_until`` is not among them, so it
    is gone from the JWKS and verifies nothing). Keys parsed for ``previous`` are reused."""
    known = previous.by_row if previous is not None else {}
    signing: dict[str, _Signer] = {}
    verifying: dict[str, Key] = {}
    by_row: dict[tuple[str, str, bytes], Key] = {}
    public: list[dict[str, Any]] = []
    for row in published:
        public.append(json.loads(row.public_jwk))
        # Parsed key objects are kept across reloads: an RSA import alone costs milliseconds.
        sealed = b"" if row.state == "next" else row.private_jwk
        ident = (row.kid, row.alg, sealed)
        key = known.get(ident)
        if key is None:
            if row.state == "next":
                key = _import(row.alg, json.loads(row.public_jwk))
            else:
                key = _import(row.alg, json.loads(master.open(row.private_jwk, _aad(row.kid))))
        by_row[ident] = key
        verifying[row.kid] = key
        if row.state == "active":
            signing[row.alg] = _Signer(row.kid, row.alg, key)
    jwks = json.dumps({"keys": public}, separators=(",", ":")).encode()
    return KeySet(signing, verifying, by_row, jwks, loaded_at)
