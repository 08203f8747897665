"""RFC 7636 Proof Key for Code Exchange, S256 only (OAuth 2.1 §4.1.1; RFC 9700 §2.1.1)."""

from __future__ import annotations

import base64
import hashlib
import re

from ..errors import InvalidGrant, InvalidRequest
from ..secret import same

__all__ = ["check_challenge", "s256", "verify", "well_formed"]

# RFC 7636 §4.1: 43..128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# An S256 challenge is BASE64URL(SHA-256): exactly 43 characters without padding.
_S256 = re.compile(r"[A-Za-z0-9\-_]{43}")


def check_challenge(challenge: str | None, method: str | None) -> str:
    if challenge is None:
        raise InvalidRequest("code_challenge is required (PKCE, RFC 7636)")
    if method is None:
        # RFC 7636 §4.3 defaults to "plain", which OAuth 2.1 lets a server refuse; we refuse it.
        raise InvalidRequest("code_challenge_method is required and must be S256")
    if method != "S256":
        raise InvalidRequest("code_challenge_method must be S256")
    if not _S256.fullmatch(challenge):
        raise InvalidRequest("code_challenge is not a valid S256 challenge")
    return challenge


def s256(verifier: str) -> str:
    """The S256 challenge of a verifier: BASE64URL(SHA-256(ASCII(verifier))), RFC 7636 §4.2."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def well_formed(verifier: str | None) -> bool:
    """Whether ``verifier`` is one at all (RFC 7636 §4.1); ``verify`` says why not."""
    return verifier is not None and _VERIFIER.fullmatch(verifier) is not None


def verify(verifier: str | None, challenge: str) -> None:
    if verifier is None:
        raise InvalidGrant("code_verifier is required")
    if not well_formed(verifier):
        raise InvalidGrant("code_verifier is malformed")
    if not same(s256(verifier), challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge")
