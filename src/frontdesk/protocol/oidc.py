"""OpenID Connect Core 1.0: ID token claims and the hash of the access token that goes with it."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

__all__ = ["at_hash", "userinfo_claims"]

_HASHES = {"ES256": hashlib.sha256, "RS256": hashlib.sha256, "EdDSA": hashlib.sha512}


def at_hash(access_token: str, alg: str) -> str:
    """§3.1.3.6: left half of the hash of the ASCII access token, base64url. EdDSA (Ed25519) hashes with SHA-512."""
    digest = _HASHES[alg](access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def userinfo_claims(
    sub: str,
    scopes: tuple[str, ...],
    username: str,
    name: str | None,
    email: str | None,
    email_verified: bool = False,
) -> dict[str, Any]:
    """§5.4: claims released per scope."""
    claims: dict[str, Any] = {"sub": sub}
    if "profile" in scopes:
        claims["preferred_username"] = username
        if name:
            claims["name"] = name
    if "email" in scopes and email:
        claims["email"] = email
        # §5.1: true only once the person followed a link sent to this very address (oauth/email_links.py).
        claims["email_verified"] = email_verified
    return claims
