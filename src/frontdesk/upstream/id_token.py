"""Validating an upstream provider's ID token, as its client: OpenID Connect Core 1.0 §3.1.3.7.

No I/O here: the caller fetches the provider's JWKS and hands it in with what it expects.
"""

from __future__ import annotations

from typing import Any, cast

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, KeySetSerialization
from joserfc.jws import extract_compact

from ..secret import digest, same

__all__ = ["ALGORITHMS", "InvalidIdToken", "unverified_kid", "validate_id_token"]

# Asymmetric algorithms only: "none" and the client-secret HMACs are never accepted from upstream.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
LEEWAY = 60  # seconds of clock skew tolerated between the provider and this server


class InvalidIdToken(ValueError):
    """The ID token fails a check of §3.1.3.7; the message names which (logged and audited, never shown)."""


def unverified_kid(token: str) -> str | None:
    """The ``kid`` the token's header names, unchecked: only to choose which key set to check it against."""
    try:
        kid = extract_compact(token.encode()).protected.get("kid")
    except (JoseError, ValueError, KeyError, TypeError):
        return None  # validate_id_token refuses it with the reason
    return kid if isinstance(kid, str) else None


def _verified(token: str, jwks: dict[str, Any]) -> jwt.Token:
    try:
        keys = KeySet.import_key_set(cast(KeySetSerialization, jwks))
        header = extract_compact(token.encode()).protected
        if header.get("alg") not in ALGORITHMS:
            raise InvalidIdToken(f"alg {header.get('alg')!r} is not accepted")
        # §10.1: a provider with a single key may leave kid out.
        key: Any = keys.keys[0] if "kid" not in header and len(keys.keys) == 1 else keys
        return jwt.decode(token, key, algorithms=ALGORITHMS)
    except (JoseError, ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, InvalidIdToken):
            raise
        raise InvalidIdToken(f"signature: {type(exc).__name__}") from None


def validate_id_token(
    token: str, *, jwks: dict[str, Any], issuer: str, client_id: str, nonce_digest: str, at: int
) -> dict[str, Any]:
    """The ID token's claims, once its signature, issuer, audience, lifetime and nonce all check out.

    ``nonce_digest`` is the digest of the nonce sent in the authorization request (only the digest is stored)."""
    claims: dict[str, Any] = _verified(token, jwks).claims
    if claims.get("iss") != issuer:  # §3.1.3.7 (2)
        raise InvalidIdToken("iss is not the provider's issuer")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if client_id not in audiences:  # (3)
        raise InvalidIdToken("aud does not name this client")
    if (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != client_id:  # (4), (5)
        raise InvalidIdToken("azp does not name this client")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float) or exp + LEEWAY <= at:  # (9)
        raise InvalidIdToken("the ID token has expired")
    if not isinstance(iat, int | float) or iat - LEEWAY > at:  # (10)
        raise InvalidIdToken("iat is missing or in the future")
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not same(digest(nonce), nonce_digest):  # (11)
        raise InvalidIdToken("nonce does not match the authorization request")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not 0 < len(sub) <= 255:
        raise InvalidIdToken("sub is missing")
    return claims
