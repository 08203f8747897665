"""RFC 9449 DPoP: checking a proof JWT (§4.2, §4.3), the ``htu`` comparison (§4.3 item 9, RFC 3986 §6), the access
token hash ``ath`` (§4.2) and the JWK thumbprint (RFC 7638) that binds a token to the proof's key (§6).

Pure: the caller supplies the time, the request's method and public URL, and judges replay and nonces
(``frontdesk.oauth.dpop``), which need state. Every refusal is ``InvalidDpopProof``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry

from ..errors import InvalidDpopProof

__all__ = [
    "ALGORITHMS",
    "MAX_JTI",
    "MAX_PROOF",
    "Proof",
    "access_token_hash",
    "check_proof",
    "normalize_htu",
    "thumbprint",
]

# §5.1: asymmetric algorithms only (never "none", never a MAC: §4.3 item 5). What discovery advertises.
ALGORITHMS = ("ES256", "EdDSA", "RS256", "PS256")
# §11.1: the jti is remembered for the window, so its size is capped; a proof with a 4096-bit RSA key fits well.
MAX_JTI = 256
MAX_PROOF = 8192
MIN_RSA_BITS = 2048
# §4.3 item 7: a proof's jwk holds the public key only.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# RFC 7638 §3.2: the required members of each key type, which alone make up the thumbprint.
_THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x"), "RSA": ("e", "kty", "n")}
# Which key an algorithm needs (RFC 7518 §3.4, RFC 8037 §3.1).
_KEY_FOR_ALG = {"ES256": ("EC", "P-256"), "EdDSA": ("OKP", "Ed25519"), "RS256": ("RSA", None), "PS256": ("RSA", None)}
_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
# The key travels in the protected header (§4.2): joserfc's 512-byte default is too small for an RSA key's.
_REGISTRY = jws.JWSRegistry(algorithms=list(ALGORITHMS))
_REGISTRY.max_header_length = 2048


@dataclass(frozen=True, slots=True)
class Proof:
    """A proof that passed :func:`check_proof`: the thumbprint of its key and what replay and nonce checks need."""

    jkt: str
    jti: str
    htu: str  # normalised
    iat: int
    nonce: str | None


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 §3: base64url(SHA-256) of the required members, sorted, without whitespace."""
    members = _THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None or any(not isinstance(jwk.get(m), str) for m in members):
        raise InvalidDpopProof("the proof's jwk is not a public EC, OKP or RSA key")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return _b64encode(hashlib.sha256(canonical.encode()).digest())


def access_token_hash(access_token: str) -> str:
    """§4.2 ``ath``: base64url(SHA-256) of the ASCII access token."""
    return _b64encode(hashlib.sha256(access_token.encode("ascii", "replace")).digest())


def _percent(match: re.Match[str]) -> str:
    # RFC 3986 §6.2.2.1-2: hex digits compare in upper case, and an encoded unreserved character is the character.
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, for an absolute path."""
    segments = path.split("/")
    out: list[str] = []
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment in (".", ".."):
            if segment == ".." and len(out) > 1:
                out.pop()
            if last:
                out.append("")
            continue
        out.append(segment)
    return "/".join(out)


def normalize_htu(url: str) -> str:
    """§4.3 item 9: the URL as compared, after RFC 3986 §6.2.2 syntax-based and §6.2.3 scheme-based normalisation
    (scheme and host in lower case, no default port, an empty path is "/"), without query and fragment (§4.2).
    ``ValueError`` for anything that is no absolute http(s) URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        raise ValueError("not an absolute http(s) URL without userinfo")
    host = parts.hostname  # lower case, brackets of an IPv6 literal removed
    port = parts.port  # ValueError when not a number in range
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    path = _remove_dot_segments(_PERCENT.sub(_percent, parts.path or "/"))
    return f"{scheme}://{netloc}{path or '/'}"


def _json_segment(segment: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(segment))
    except (ValueError, UnicodeError):
        raise InvalidDpopProof(f"the proof's {what} is not base64url JSON") from None
    if not isinstance(value, dict):
        raise InvalidDpopProof(f"the proof's {what} is not a JSON object")
    return value


def _public_key(header: Mapping[str, Any], algorithms: Collection[str]) -> tuple[str, dict[str, Any]]:
    """§4.3 items 4, 5 and 7: ``typ``, an allowed asymmetric ``alg`` and a public ``jwk`` of the kind it needs."""
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() != "dpop+jwt":
        raise InvalidDpopProof("the proof's typ is not dpop+jwt")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms or alg not in _KEY_FOR_ALG:
        raise InvalidDpopProof(f"the proof's alg must be one of {', '.join(a for a in ALGORITHMS if a in algorithms)}")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict):
        raise InvalidDpopProof("the proof carries no jwk")
    if _PRIVATE_MEMBERS & set(jwk):
        raise InvalidDpopProof("the proof's jwk holds a private key")
    kty, crv = _KEY_FOR_ALG[alg]
    if jwk.get("kty") != kty or (crv is not None and jwk.get("crv") != crv):
        raise InvalidDpopProof(f"the proof's jwk is not a key for {alg}")
    if kty == "RSA":
        n = jwk.get("n")
        try:
            bits = int.from_bytes(_b64decode(n), "big").bit_length() if isinstance(n, str) else 0
        except ValueError:
            bits = 0
        if bits < MIN_RSA_BITS:
            raise InvalidDpopProof(f"the proof's RSA key is shorter than {MIN_RSA_BITS} bits")
    return alg, jwk


def _ed25519_payload(proof: str, jwk: Mapping[str, Any]) -> bytes:
    # RFC 8037 §3.1 by hand: joserfc warns on the "EdDSA" name RFC 9864 deprecates, which RFC 9449 clients still send.
    head, payload, signature = proof.split(".")
    try:
        Ed25519PublicKey.from_public_bytes(_b64decode(str(jwk.get("x")))).verify(
            _b64decode(signature), f"{head}.{payload}".encode()
        )
    except InvalidSignature:
        raise ValueError("bad signature") from None
    return _b64decode(payload)


def _verified_claims(proof: str, alg: str, jwk: dict[str, Any]) -> dict[str, Any]:
    """§4.3 item 6: the signature verifies with the header's own key."""
    try:
        if alg == "EdDSA":
            payload = _ed25519_payload(proof, jwk)
        else:
            key = JWKRegistry.import_key(jwk)
            payload = jws.deserialize_compact(proof, key, algorithms=[alg], registry=_REGISTRY).payload
        claims = json.loads(payload)
    except (JoseError, ValueError, TypeError, KeyError, UnicodeError):
        raise InvalidDpopProof("the proof's signature does not verify") from None
    if not isinstance(claims, dict):
        raise InvalidDpopProof("the proof's claims are not a JSON object")
    return claims


def _claim(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidDpopProof(f"the proof lacks {name}")
    return value


def check_proof(
    proof: str,
    *,
    method: str,
    url: str,
    now: int,
    window: int,
    algorithms: Collection[str] = ALGORITHMS,
    access_token: str | None = None,
) -> Proof:
    """The checks of §4.3 that need no state, for a request ``method`` to the public ``url``, at time ``now``:
    items 2-9 and 11 (``iat`` within ``window`` seconds either way) and, with ``access_token`` (a protected
    resource, §7.1), 12's ``ath``. The caller checks the nonce (item 10), replay (§11.1) and, at a resource, that
    the key is the token's (``Proof.jkt`` against ``cnf.jkt``)."""
    if len(proof) > MAX_PROOF or proof.count(".") != 2 or not proof.isascii():
        raise InvalidDpopProof("the proof is not a JWT")
    alg, jwk = _public_key(_json_segment(proof.partition(".")[0], "header"), algorithms)
    claims = _verified_claims(proof, alg, jwk)
    jti = _claim(claims, "jti")
    if len(jti) > MAX_JTI:
        raise InvalidDpopProof(f"the proof's jti is longer than {MAX_JTI} characters")
    if _claim(claims, "htm") != method:
        raise InvalidDpopProof("the proof's htm is not this request's method")
    try:
        htu = normalize_htu(_claim(claims, "htu"))
        expected = normalize_htu(url)
    except ValueError:
        raise InvalidDpopProof("the proof's htu is not an http(s) URL") from None
    if htu != expected:
        raise InvalidDpopProof("the proof's htu is not this request's URL")
    iat = claims.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, int | float):
        raise InvalidDpopProof("the proof lacks iat")
    if abs(now - iat) > window:
        raise InvalidDpopProof("the proof's iat is outside the acceptance window")
    nonce = claims.get("nonce")
    if nonce is not None and not isinstance(nonce, str):
        raise InvalidDpopProof("the proof's nonce is not a string")
    if access_token is not None:
        ath = claims.get("ath")
        if not isinstance(ath, str) or not hmac.compare_digest(ath, access_token_hash(access_token)):
            raise InvalidDpopProof("the proof's ath does not match the access token")
    return Proof(thumbprint(jwk), jti, htu, int(iat), nonce)
