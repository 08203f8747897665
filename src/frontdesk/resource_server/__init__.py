"""A kit for resource servers whose access tokens come from frontdesk: APIs and MCP servers.

It validates frontdesk's JWT access tokens (RFC 9068) with the issuer's published keys, or asks its introspection
endpoint (RFC 7662) when a revocation must be seen at once; guards an ASGI application (middleware) or single
endpoints (a Starlette/FastAPI dependency) with RFC 6750 challenges; serves RFC 9728 protected resource metadata;
and plugs into the official MCP Python SDK (:mod:`frontdesk.resource_server.mcp`).

Scopes compare as strings (RFC 6749 §3.3) with one hierarchy, which MCP 2026-07-28 asks of a step-up check: a granted
``prefix:*`` covers every ``prefix:…`` scope (``files:*`` satisfies ``files:read``; see :func:`satisfies`).

It needs nothing of the server: only joserfc, httpx and starlette, and keeps no state beyond in-memory caches::

    resource = ProtectedResource("https://tools.example/mcp", ["https://id.example"], ["notes:read"])
    validator = JWTValidator("https://id.example", resource.resource)
    app = BearerAuth(app, validator, resource, required_scopes=["notes:read"])
"""

from .asgi import (
    BearerAuth,
    BearerChallenge,
    RequireToken,
    ScopeRule,
    access_token,
    challenge_handler,
    metadata_routes,
)
from .discovery import ServerMetadata
from .keys import KeyCache
from .rfc6750 import Challenge, bearer_token
from .rfc7662 import IntrospectionValidator
from .rfc9068 import ALGORITHMS, LEEWAY, JWTValidator
from .rfc9449 import DPOP_ALGORITHMS, DpopVerifier, InvalidDpopProof
from .rfc9728 import WELL_KNOWN, ProtectedResource
from .tokens import (
    AuthorizationServerUnavailable,
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    TokenError,
    TokenValidator,
    VerifiedToken,
    missing_scopes,
    satisfies,
)

__all__ = [
    "ALGORITHMS",
    "DPOP_ALGORITHMS",
    "LEEWAY",
    "WELL_KNOWN",
    "AuthorizationServerUnavailable",
    "BearerAuth",
    "BearerChallenge",
    "Challenge",
    "DpopVerifier",
    "InsufficientScope",
    "IntrospectionValidator",
    "InvalidDpopProof",
    "InvalidRequest",
    "InvalidToken",
    "JWTValidator",
    "KeyCache",
    "ProtectedResource",
    "RequireToken",
    "ScopeRule",
    "ServerMetadata",
    "TokenError",
    "TokenValidator",
    "VerifiedToken",
    "access_token",
    "bearer_token",
    "challenge_handler",
    "metadata_routes",
    "missing_scopes",
    "satisfies",
]
