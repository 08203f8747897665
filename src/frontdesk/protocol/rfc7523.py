"""RFC 7523 §2.2/§3: JWT client assertions for ``private_key_jwt`` (OpenID Connect Core §9).

Audience: one string, and one of those the caller names — the issuer identifier, and for a client the operator
relaxed, also the token endpoint URL. RFC 7523 §3 and OpenID Connect Core §9 allowed an array, or any value that
"identifies" the server. The 2025 audience injection findings: a malicious server that announces this server's token
endpoint as its own gets a client to sign an assertion for that audience, and replays it here. The issuer identifier
cannot be borrowed that way (a client checks it against the metadata URL, RFC 8414 §3.3), so
draft-ietf-oauth-rfc7523bis-09 requires it, as a single string; an array is refused even when it holds nothing but
the issuer.
Only asymmetric algorithms; ``none`` and HMAC are refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, KeySetSerialization
from joserfc.jws import extract_compact

from ..errors import InvalidClient

__all__ = ["ASSERTION_TYPE", "ASYMMETRIC_ALGS", "Assertion", "unverified_subject", "verify_assertion"]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASYMMETRIC_ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


@dataclass(frozen=True, slots=True)
class Assertion:
    jti: str
    exp: int


def _storable(value: str) -> bool:
    """A string a store can look up: no NUL (PostgreSQL text refuses it), no lone surrogate (no UTF-8 form)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unverified_subject(assertion: str) -> str | None:
    """The ``sub`` of an assertion before verification, to find whose keys to verify it with; None when there is
    none that could name a client."""
    try:
        claims = json.loads(extract_compact(assertion.encode()).payload)
    except (JoseError, ValueError, UnicodeError, RecursionError):  # RecursionError: nesting deep enough
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub if isinstance(sub, str) and _storable(sub) else None


def verify_assertion(
    assertion: str, jwks: dict[str, Any], client_id: str, audiences: tuple[str, ...], at: int, max_life: int
) -> Assertion:
    try:
        keys = KeySet.import_key_set(cast(KeySetSerialization, jwks))
        token = jwt.decode(assertion, keys, algorithms=ASYMMETRIC_ALGS)
    except (JoseError, ValueError, TypeError, KeyError, RecursionError) as exc:
        raise InvalidClient("client assertion is invalid", detail=f"signature or format: {exc!r}") from None
    claims = token.claims
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise InvalidClient("client assertion iss and sub must be the client_id")
    aud = claims.get("aud")
    if isinstance(aud, list):
        raise InvalidClient("client assertion aud must be the issuer identifier as a single string, not an array")
    if not isinstance(aud, str) or aud not in audiences:
        raise InvalidClient("client assertion aud must be the issuer identifier")
    exp = claims.get("exp")
    if not isinstance(exp, int) or isinstance(exp, bool) or exp <= at:
        raise InvalidClient("client assertion has expired or has no exp")
    if exp > at + max_life:
        raise InvalidClient("client assertion lives too long")
    nbf = claims.get("nbf")
    if isinstance(nbf, int) and nbf > at + 30:
        raise InvalidClient("client assertion is not valid yet")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise InvalidClient("client assertion has no jti")
    return Assertion(jti=jti, exp=exp)
