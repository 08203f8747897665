"""Bearer token challenges (RFC 6750 §3) as MCP authorization (2025-06-18, 2025-11-25) wants them.

- No credentials: ``401`` with ``WWW-Authenticate: Bearer resource_metadata="…", scope="…"`` and no ``error``
  (RFC 6750 §3.1: a client that did not try gets no error code; RFC 9728 §5.1 adds ``resource_metadata``).
- A bad token: ``401`` with ``error="invalid_token"``; a malformed request: ``400`` ``invalid_request``.
- Too few scopes: ``403`` ``error="insufficient_scope"`` with ``scope`` = every scope the request needs, so the
  client can step up in one authorization (MCP 2025-11-25, "Scope Challenge Handling").

Every response has a JSON body like OAuth's error responses: ``error`` (absent when no token came) and
``error_description``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass

from .tokens import InsufficientScope, InvalidRequest, TokenError

__all__ = ["B64TOKEN", "Challenge", "bearer_token"]

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# RFC 6750 §3: error_description is %x20-21 / %x23-5B / %x5D-7E (no quote, no backslash).
_NONE = "this resource needs a bearer access token"
_UNSAFE = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")


def bearer_token(authorization: list[str]) -> str | None:
    """The bearer token of a request's ``Authorization`` header values, or None when it brings none.

    Another scheme (``Basic …``) is no bearer token (§3.1: no error then); two headers or a malformed token are
    ``invalid_request``. The token is taken from the header only: OAuth 2.1 §5.1 drops the query method."""
    if not authorization:
        return None
    if len(authorization) > 1:
        raise InvalidRequest("more than one Authorization header")
    scheme, _, token = authorization[0].strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    if not B64TOKEN.fullmatch(token):
        raise InvalidRequest("the bearer token is malformed")
    return token


def _quoted(value: str) -> str:
    return '"' + _UNSAFE.sub("?", value) + '"'


@dataclass(frozen=True, slots=True)
class Challenge:
    """An error response of a protected resource: status, ``WWW-Authenticate`` value and JSON body."""

    status: int
    www_authenticate: str
    body: bytes

    @classmethod
    def build(
        cls, resource_metadata: str | None, required: Collection[str], error: TokenError | None = None
    ) -> Challenge:
        """The challenge for ``error`` (None: no token was presented) on a request that needs ``required``."""
        params: list[tuple[str, str]] = []
        if error is not None:
            params.append(("error", error.error))
            params.append(("error_description", str(error)))
        scopes = error.required if isinstance(error, InsufficientScope) else tuple(required)
        if scopes and (error is None or isinstance(error, InsufficientScope)):
            params.append(("scope", " ".join(scopes)))
        if resource_metadata is not None:
            params.append(("resource_metadata", resource_metadata))
        scheme = "Bearer"
        algorithms = getattr(error, "algorithms", None)  # a DPoP refusal (rfc9449.DpopChallenge): its own scheme
        if isinstance(algorithms, tuple):
            scheme, params = "DPoP", [("algs", " ".join(algorithms)), *params[:2]]
        header = scheme + " " + ", ".join(f"{name}={_quoted(value)}" for name, value in params)
        status = error.status if error is not None else 401
        # No token, no error code (§3.1), in the body as in the header.
        payload = {"error": error.error, "error_description": str(error)} if error else {"error_description": _NONE}
        return cls(status, header, json.dumps(payload).encode())

    @property
    def headers(self) -> dict[str, str]:
        return {
            "WWW-Authenticate": self.www_authenticate,
            "Content-Type": "application/json",
            "Cache-Control": "no-store",
        }
