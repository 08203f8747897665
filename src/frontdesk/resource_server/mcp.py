"""The kit in the official MCP Python SDK (PyPI ``mcp``, an optional extra: ``pip install "frontdesk[mcp]"``).

Two ways, both on the same validators:

- :class:`TokenVerifier` plugs into the SDK's own auth (``MCPServer(token_verifier=…, auth=auth_settings(…))``):
  the SDK then serves the metadata and answers 401/403 itself, in its own words.
- :func:`protect` wraps the SDK's streamable HTTP app in :class:`~.asgi.BearerAuth`: RFC 6750 challenges as MCP
  2025-11-25 asks (no ``error`` without a token; ``scope`` in every challenge), and per-tool scopes for the
  step-up (a ``tools/call`` of a tool that needs more answers ``403 insufficient_scope`` with every scope it
  needs). The SDK still sees the caller: ``get_access_token()`` works and sessions stay bound to their principal.

``mcp`` is imported inside the functions that need it, so the rest of the kit works without it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.types import ASGIApp, Scope

from .asgi import BearerAuth, ScopeRule
from .rfc9728 import ProtectedResource
from .tokens import AuthorizationServerUnavailable, TokenError, TokenValidator, VerifiedToken

if TYPE_CHECKING:
    from mcp.server.auth.provider import AccessToken
    from mcp.server.auth.settings import AuthSettings

__all__ = ["MAX_PEEK_BYTES", "TokenVerifier", "auth_settings", "protect", "tool_scopes"]

log = logging.getLogger("frontdesk.resource_server")

MAX_PEEK_BYTES = 1024 * 1024  # a JSON-RPC body larger than this is not read for tool names


def _sdk_token(verified: VerifiedToken, resource: str) -> AccessToken:
    from mcp.server.auth.provider import AccessToken

    return AccessToken(
        token=verified.token,
        client_id=verified.client_id,
        scopes=sorted(verified.scopes),
        expires_at=verified.expires_at,
        resource=resource,  # RFC 8707: the validator accepted it for exactly this resource
        subject=verified.subject,
        claims=dict(verified.claims),
    )


class TokenVerifier:
    """The SDK's ``TokenVerifier`` protocol (``mcp.server.auth.provider``) on a frontdesk validator."""

    def __init__(self, validator: TokenValidator) -> None:
        self.validator = validator

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            verified = await self.validator.validate(token)
        except TokenError as error:
            log.debug("bearer token refused: %s", error)
            return None
        except AuthorizationServerUnavailable as exc:
            # The SDK knows no "cannot tell now": the request is refused, and the reason logged.
            log.warning("bearer token not checked: %s", exc)
            return None
        return _sdk_token(verified, self.validator.resource)


def auth_settings(resource: ProtectedResource, required_scopes: Collection[str] = ()) -> AuthSettings:
    """The SDK's ``AuthSettings`` for a resource server whose tokens come from frontdesk."""
    from mcp.server.auth.settings import AuthSettings

    # Validated from plain data: pydantic turns the URL strings into the SDK's URL type.
    return AuthSettings.model_validate(
        {
            "issuer_url": resource.authorization_servers[0],
            "resource_server_url": resource.resource,
            "required_scopes": list(required_scopes) or None,
            # The validator checks the audience already; this makes the SDK check it a second time.
            "validate_token_resource": True,
        }
    )


def tool_scopes(tools: Mapping[str, Collection[str]], base: Collection[str] = ()) -> ScopeRule:
    """A scope rule for :class:`~.asgi.BearerAuth`: every request needs ``base``; a JSON-RPC ``tools/call`` (alone
    or in a batch) of a tool in ``tools`` needs that tool's scopes as well."""
    fixed = tuple(base)

    async def rule(request: Request) -> Collection[str]:
        needed = list(fixed)
        if request.method != "POST":
            return needed
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_PEEK_BYTES:
                return needed  # the SDK refuses a body this large itself
        try:
            parsed = json.loads(body)
        except ValueError:
            return needed  # not JSON-RPC: the SDK answers the parse error
        for message in parsed if isinstance(parsed, list) else [parsed]:
            if isinstance(message, dict) and message.get("method") == "tools/call":
                params = message.get("params")
                name = params.get("name") if isinstance(params, dict) else None
                needed.extend(tools.get(name, ()) if isinstance(name, str) else ())
        return tuple(dict.fromkeys(needed))

    return rule


def protect(
    app: ASGIApp,
    validator: TokenValidator,
    resource: ProtectedResource,
    *,
    required_scopes: Collection[str] = (),
    tools: Mapping[str, Collection[str]] | None = None,
) -> ASGIApp:
    """The SDK's streamable HTTP app (``MCPServer(...).streamable_http_app()``, built without SDK auth) behind the
    kit: every request needs ``required_scopes``, a call of a tool in ``tools`` its scopes too."""
    from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
    from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
    from starlette.authentication import AuthCredentials

    def on_token(scope: Scope, verified: VerifiedToken) -> None:
        # Where the SDK looks for the caller: its session manager binds a session to this principal, and
        # get_access_token() returns it inside a tool.
        scope["user"] = AuthenticatedUser(_sdk_token(verified, validator.resource))
        scope["auth"] = AuthCredentials(sorted(verified.scopes))

    rule: Collection[str] | ScopeRule = tool_scopes(tools, required_scopes) if tools else required_scopes
    return BearerAuth(AuthContextMiddleware(app), validator, resource, required_scopes=rule, on_token=on_token)
