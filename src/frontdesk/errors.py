"""Protocol errors that mirror their wire codes (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3.1; RFC 8628 §3.5).

Each carries the HTTP status, the wire ``error`` code, a public description and a private ``detail`` that is logged
but never sent. Anything that is not one of these goes out as ``server_error``.
"""

from __future__ import annotations

import re
from typing import ClassVar

__all__ = [
    "AccessDenied",
    "AuthorizationPending",
    "ConsentRequired",
    "ExpiredToken",
    "InsufficientScope",
    "InteractionRequired",
    "InvalidAuthorizationDetails",
    "InvalidClient",
    "InvalidDpopProof",
    "InvalidGrant",
    "InvalidRequest",
    "InvalidScope",
    "InvalidTarget",
    "InvalidToken",
    "LoginRequired",
    "OAuthError",
    "PayloadTooLarge",
    "RateLimited",
    "RequestNotSupported",
    "RequestUriNotSupported",
    "ServerError",
    "SlowDown",
    "TemporarilyUnavailable",
    "UnauthorizedClient",
    "UnsupportedGrantType",
    "UnsupportedResponseType",
    "UseDpopNonce",
    "wire_description",
]

# RFC 6749 §4.1.2.1, §5.2 and RFC 6750 §3: an error_description holds only %x20-21 / %x23-5B / %x5D-7E.
_OFF_THE_WIRE = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")


def wire_description(text: str) -> str:
    """``text`` in error_description's characters, whatever a request put into it: "§" spelled out, a double quote
    or backslash made an apostrophe or slash, a line break or tab a space, anything else outside the set dropped."""
    text = text.replace("§", "section ").replace('"', "'").replace("\\", "/")
    return _OFF_THE_WIRE.sub("", re.sub(r"[\t\r\n]+", " ", text))


class OAuthError(Exception):
    error: ClassVar[str] = "server_error"
    status: ClassVar[int] = 400

    def __init__(self, description: str = "", *, detail: str = "") -> None:
        description = wire_description(description)  # it goes into JSON, redirects and challenges alike
        super().__init__(description or self.error)
        self.description = description
        self.detail = detail

    def body(self) -> dict[str, str]:
        out = {"error": self.error}
        if self.description:
            out["error_description"] = self.description
        return out


class InvalidRequest(OAuthError):
    error = "invalid_request"


class PayloadTooLarge(InvalidRequest):
    status = 413


class InvalidClient(OAuthError):
    error = "invalid_client"
    status = 401
    # RFC 6749 §5.2: when the client tried the Authorization header, the 401 names that scheme.
    challenge: str | None = None


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class InvalidTarget(OAuthError):
    """RFC 8707 §2: the requested resource is invalid, unknown or not allowed."""

    error = "invalid_target"


class InvalidAuthorizationDetails(OAuthError):
    """RFC 9396 §5: an unknown type, or an object that does not conform to its type (wrong or missing fields, values
    not allowed); §6.1: a token request asks for details the grant does not cover."""

    error = "invalid_authorization_details"


class AccessDenied(OAuthError):
    error = "access_denied"


class LoginRequired(OAuthError):
    error = "login_required"


class ConsentRequired(OAuthError):
    error = "consent_required"


class InteractionRequired(OAuthError):
    """OpenID Connect Core §3.1.2.6: the request needs a page (here: enrolling a second factor)."""

    error = "interaction_required"


class RequestNotSupported(OAuthError):
    """OpenID Connect Core §3.1.2.6."""

    error = "request_not_supported"


class RequestUriNotSupported(OAuthError):
    error = "request_uri_not_supported"


class AuthorizationPending(OAuthError):
    error = "authorization_pending"


class SlowDown(OAuthError):
    error = "slow_down"


class ExpiredToken(OAuthError):
    error = "expired_token"


class InvalidToken(OAuthError):
    """RFC 6750 §3.1."""

    error = "invalid_token"
    status = 401


class InsufficientScope(OAuthError):
    error = "insufficient_scope"
    status = 403


class ServerError(OAuthError):
    error = "server_error"
    status = 500


class RateLimited(OAuthError):
    """Too many attempts: 429 with Retry-After. RFC 6749 has no code for it; temporarily_unavailable is the closest
    one clients already handle by waiting."""

    error = "temporarily_unavailable"
    status = 429

    def __init__(self, description: str = "", *, retry_after: int, detail: str = "") -> None:
        super().__init__(description, detail=detail)
        self.retry_after = retry_after


class TemporarilyUnavailable(OAuthError):
    error = "temporarily_unavailable"
    status = 503


class InvalidDpopProof(OAuthError):
    """RFC 9449 §5, §7.1: the DPoP proof is missing, malformed or does not check out."""

    error = "invalid_dpop_proof"


class UseDpopNonce(OAuthError):
    """RFC 9449 §8, §9: the proof must carry the server's nonce; ``nonce`` is the fresh one the answer's
    ``DPoP-Nonce`` header hands out (set by the service, which holds the nonce key)."""

    error = "use_dpop_nonce"
    nonce: str | None = None
