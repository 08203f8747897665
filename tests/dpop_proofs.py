"""DPoP proofs (RFC 9449 §4.2) signed by real joserfc keys, for the tests of the token endpoint, the server's
resources and the resource-server kit."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import warnings
from typing import Any

from joserfc import jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey

ISSUER = "https://as.example"
TOKEN_URL = f"{ISSUER}/token"
Key = ECKey | OKPKey | RSAKey


def new_key(alg: str = "ES256") -> Key:
    if alg == "ES256":
        return ECKey.generate_key("P-256")
    if alg == "EdDSA":
        return OKPKey.generate_key("Ed25519")
    return RSAKey.generate_key(2048)


def jkt_of(key: Key) -> str:
    """RFC 7638, recomputed here from the required members rather than taken from the code under test."""
    public = key.as_dict(private=False)
    members = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x"), "RSA": ("e", "kty", "n")}[public["kty"]]
    canonical = json.dumps({m: public[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def ath_of(token: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()


def proof(
    key: Key,
    htm: str = "POST",
    htu: str = TOKEN_URL,
    *,
    alg: str | None = None,
    now: float | None = None,
    drop: tuple[str, ...] = (),
    header: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    """A proof for ``htm`` ``htu`` signed with ``key``; ``claims`` add to or replace the defaults, ``drop`` removes
    claims or header members, ``header`` replaces header members."""
    alg = alg or {"EC": "ES256", "OKP": "EdDSA", "RSA": "RS256"}[key.key_type]
    head: dict[str, Any] = {"typ": "dpop+jwt", "alg": alg, "jwk": key.as_dict(private=False)}
    head.update(header or {})
    body: dict[str, Any] = {"jti": secrets.token_urlsafe(16), "htm": htm, "htu": htu, "iat": int(now or time.time())}
    body.update(claims)
    for name in drop:
        head.pop(name, None)
        body.pop(name, None)
    with warnings.catch_warnings():  # RFC 9864 deprecates the name "EdDSA"; RFC 9449 clients still send it
        warnings.simplefilter("ignore", SecurityWarning)
        return jws.serialize_compact(head, json.dumps(body), key, algorithms=[alg])


def claims_of(jwt: str) -> dict[str, Any]:
    """A JWT's payload, unverified (the tests read what the server put in its own token)."""
    payload = jwt.split(".")[1]
    result: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return result
