"""What a resource server learns from a valid access token, and the ways a token fails (RFC 6750 §3.1).

Both validators (:mod:`.jwt`, :mod:`.introspection`) return a :class:`VerifiedToken` or raise one of the errors
below; the middleware turns the errors into RFC 6750 challenges.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

__all__ = [
    "AuthorizationServerUnavailable",
    "InsufficientScope",
    "InvalidRequest",
    "InvalidToken",
    "TokenError",
    "TokenValidator",
    "VerifiedToken",
    "authorization_details_of",
    "missing_scopes",
    "satisfies",
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
    # RFC 9396 §9: what exactly the person approved (a payment, a document), as the token carries it for this
    # resource: the JWT's top-level claim or the introspection answer's member.
    authorization_details: tuple[Mapping[str, Any], ...] = ()

    def has_scopes(self, required: Collection[str]) -> bool:
        return not missing_scopes(self.scopes, required)

    def details_of(self, type_: str) -> tuple[Mapping[str, Any], ...]:
        """The authorization details of one type (RFC 9396 §2), e.g. ``details_of("payment_initiation")``."""
        return tuple(d for d in self.authorization_details if d.get("type") == type_)


def authorization_details_of(value: Any) -> tuple[Mapping[str, Any], ...]:
    """The ``authorization_details`` claim or member (RFC 9396 §9.1, §9.2): absent is none; anything but an array
    of objects with a string ``type`` (§2) is a malformed token, never guessed at."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(d, dict) and isinstance(d.get("type"), str) for d in value):
        raise InvalidToken("the token's authorization_details are malformed")
    return tuple(MappingProxyType(d) for d in value)


# MCP 2026-07-28 (§Scope Challenge Handling): a broader scope satisfies a narrower one. The one hierarchy the kit
# reads into scope names is the ``prefix:*`` wildcard: ``files:*`` covers ``files:read`` and ``files:read:own``.
WILDCARD = ":*"


def satisfies(granted: str, required: str) -> bool:
    """Whether the granted scope value covers the required one: the same value (RFC 6749 §3.3 compares scope values
    as strings), or a ``prefix:*`` wildcard over ``prefix:…``. A bare ``*`` or ``:*`` covers nothing: a hierarchy
    needs a named root, so a token never holds everything by accident."""
    if granted == required:
        return True
    if not granted.endswith(WILDCARD) or len(granted) <= len(WILDCARD):
        return False
    return required.startswith(granted[:-1]) and len(required) > len(granted) - 1


def missing_scopes(granted: Collection[str], required: Collection[str]) -> tuple[str, ...]:
    """The required scopes a token lacks, in the order required: a required scope is held when a granted one
    :func:`satisfies` it (the same value, or a ``prefix:*`` above it)."""
    wildcards = [g for g in granted if g.endswith(WILDCARD)]
    return tuple(s for s in required if s not in granted and not any(satisfies(w, s) for w in wildcards))


class TokenValidator(Protocol):
    """Validates a bearer token for one resource: :class:`~.jwt.JWTValidator` or
    :class:`~.introspection.IntrospectionValidator`."""

    @property
    def resource(self) -> str: ...

    async def validate(self, token: str) -> VerifiedToken:
        """The token's meaning; raises :class:`InvalidToken` or :class:`AuthorizationServerUnavailable`."""
        ...
