"""What a resource server learns from a valid access token, and the ways a token fails (RFC 6750 §3.1).

Both validators (:mod:`.jwt`, :mod:`.introspection`) return a :class:`VerifiedToken` or raise one of the errors
below; the middleware turns the errors into RFC 6750 challenges.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "AuthorizationServerUnavailable",
    "InsufficientScope",
    "InvalidRequest",
    "InvalidToken",
    "TokenError",
    "TokenValidator",
    "VerifiedToken",
    "missing_scopes",
]


class TokenError(Exception):
    """A presented token was refused; ``error`` is the RFC 6750 §3.1 code, ``status`` the HTTP status."""

    error = "invalid_token"
    status = 401


class InvalidToken(TokenError):
    """RFC 6750 §3.1 ``invalid_token``: expired, revoked, malformed, for another audience, or not ours."""


class InvalidRequest(TokenError):
    """RFC 6750 §3.1 ``invalid_request``: the request itself is malformed (e.g. two Authorization headers)."""

    error = "invalid_request"
    status = 400


class InsufficientScope(TokenError):
    """RFC 6750 §3.1 ``insufficient_scope``: a valid token that lacks scopes this request needs."""

    error = "insufficient_scope"
    status = 403

    def __init__(self, message: str, required: Collection[str]) -> None:
        super().__init__(message)
        self.required = tuple(required)


class AuthorizationServerUnavailable(Exception):
    """The keys or the introspection endpoint could not be reached: the token is neither good nor bad yet."""


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A valid access token for this resource (RFC 9068 §2.2 claims, or an RFC 7662 §2.2 answer)."""

    subject: str
    client_id: str
    scopes: frozenset[str]
    expires_at: int
    issuer: str
    audience: tuple[str, ...]
    claims: Mapping[str, Any]
    # RFC 8693 §4.1: the party acting for the subject (an agent); only the outermost ``act`` counts (§4.1).
    act: Mapping[str, Any] | None = None
    token: str = field(default="", repr=False, compare=False)

    def has_scopes(self, required: Collection[str]) -> bool:
        return not missing_scopes(self.scopes, required)


def missing_scopes(granted: Collection[str], required: Collection[str]) -> tuple[str, ...]:
    """The required scopes a token lacks, in the order required (scope values compare exactly, RFC 6749 §3.3)."""
    return tuple(s for s in required if s not in granted)


class TokenValidator(Protocol):
    """Validates a bearer token for one resource: :class:`~.jwt.JWTValidator` or
    :class:`~.introspection.IntrospectionValidator`."""

    @property
    def resource(self) -> str: ...

    async def validate(self, token: str) -> VerifiedToken:
        """The token's meaning; raises :class:`InvalidToken` or :class:`AuthorizationServerUnavailable`."""
        ...
