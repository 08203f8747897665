"""``{issuer}/mcp``: an MCP server for the vault (issue 14 item 3), the official ``mcp`` SDK over streamable HTTP,
protected by frontdesk itself with its own resource-server kit.

**Audience.** ``/mcp`` is a built-in resource of its own, ``{issuer}/mcp`` (``oauth.resources.mcp_resource``), not
the vault's ``{issuer}/vault``: an MCP client asks for a token for the URL it connects to (MCP 2025-06-18 "Resource
Parameter", RFC 8707) and checks that the RFC 9728 metadata names that URL; and MCP forbids passing a token on to
another audience (MCP "Token Passthrough"), so one token must not open both the vault's HTTP API and the tools. Its
scopes are the tools' (``vault.connections.read``, ``vault.call``, ``vault.connect``) plus the vault's
``vault:<integration>``, which bound what the tools reach exactly as they bound the vault's API.

**The kit.** :class:`~frontdesk.resource_server.BearerAuth` guards the SDK's app: a token's type, signature (the
key ring's JWKS, served to the kit in process: no HTTP call to ourselves), issuer, audience and times; then, in
process, that it is still live (a revoked grant ends it at once, as the vault's API sees it) and acts for a person.
No token: ``401`` with ``resource_metadata`` and ``scope="vault.connections.read"``, where a client starts; a tool
call without the tool's scope (and the ``vault:<integration>`` it names): ``403 insufficient_scope`` with all of them
(the step-up). DPoP-bound tokens need their proof (``dpop``: the kit's verifier by default; the hook for
``oauth/dpop.py``'s shared replay store). The SDK server and its tools are
web/mcp_server.py; what the tools do, ``vault/mcp_tools.py``.

The SDK (``pip install "frontdesk[mcp]"``) is optional: without it, or with an issuer the kit refuses (plain http
off loopback), ``/mcp`` is not served and the start-up log says why.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..core import Frontdesk
from ..oauth.resources import mcp_resource
from ..resource_server import BearerAuth, DpopVerifier, InvalidToken, JWTValidator, ProtectedResource, VerifiedToken
from ..resource_server.mcp import MAX_PEEK_BYTES
from ..vault import mcp_tools

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

__all__ = ["PATH", "McpEndpoint", "build", "serve_forever"]

log = logging.getLogger("frontdesk.web")
PATH = "/mcp"
_STARTING = b'{"error": "temporarily_unavailable", "error_description": "the MCP server is starting"}'


class _KeyRingJwks(httpx.AsyncBaseTransport):
    """The kit fetches the JWKS through this: the key ring's current set, from memory (crypto/key_ring.py re-reads
    it in the background). A rotation is then seen as any resource server sees it: a new ``kid`` refetches."""

    def __init__(self, fd: Frontdesk) -> None:
        self._fd = fd

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=self._fd.keys.jwks, headers={"content-type": "application/json"})


@dataclass(slots=True)
class _LiveTokens:
    """The kit's :class:`JWTValidator`, then what only this server can tell: the token is still live and acts for
    a person (``vault.mcp_tools.person_of``). Anything else is ``invalid_token`` (RFC 6750 §3.1)."""

    fd: Frontdesk
    jwt: JWTValidator

    @property
    def resource(self) -> str:
        return self.jwt.resource

    async def validate(self, token: str) -> VerifiedToken:
        verified = await self.jwt.validate(token)
        if await anyio.to_thread.run_sync(mcp_tools.person_of, self.fd, token) is None:
            raise InvalidToken("the token was revoked, or acts for no person")
        return verified


@dataclass(slots=True)
class McpEndpoint:
    """The routes to mount, and the SDK server whose session manager runs with the app (:func:`serve_forever`)."""

    server: MCPServer
    routes: list[BaseRoute]
    running: bool = False
    http: httpx.AsyncClient | None = field(default=None, repr=False)  # the app's vault_http, once it runs


def _resource(fd: Frontdesk) -> ProtectedResource:
    """RFC 9728 §2 for ``/mcp``, with the scopes as they are now (an integration added brings its own)."""
    row = mcp_resource(fd)
    return ProtectedResource(row.uri, [fd.issuer], row.scope, resource_name=row.name)


def _scope_rule(fd: Frontdesk) -> Any:
    async def needed(request: Request) -> Collection[str]:
        """The scopes this request needs: a ``tools/call`` its tool's (``mcp_tools.needed_scopes``), every call in
        a batch; without a token, the scope a client starts with, which the challenge names (MCP 2025-11-25
        "Scope Selection Strategy": a client asks for what the first challenge says)."""
        if not request.headers.getlist("authorization"):
            return (mcp_tools.FIRST_SCOPE,)
        if request.method != "POST":
            return ()
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_PEEK_BYTES:
                return ()  # the SDK refuses a body this large itself
        try:
            parsed = json.loads(body)
        except ValueError:
            return ()  # not JSON-RPC: the SDK answers the parse error
        calls = [
            (m["params"].get("name"), m["params"].get("arguments") or {})
            for m in (parsed if isinstance(parsed, list) else [parsed])
            if isinstance(m, dict) and m.get("method") == "tools/call" and isinstance(m.get("params"), dict)
        ]
        if not calls:
            return ()
        known = await anyio.to_thread.run_sync(fd.scopes)
        needed: list[str] = []
        for name, arguments in calls:
            if isinstance(name, str) and isinstance(arguments, dict):
                needed.extend(mcp_tools.needed_scopes(name, arguments, known))
        return tuple(dict.fromkeys(needed))

    return needed


def _on_token(scope: Scope, verified: VerifiedToken) -> None:
    """Where the SDK looks for the caller (as ``resource_server.mcp.protect`` puts it): its session manager binds
    each session to this principal, and ``get_access_token()`` returns it inside a tool."""
    from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
    from mcp.server.auth.provider import AccessToken
    from starlette.authentication import AuthCredentials

    token = AccessToken(
        token=verified.token, client_id=verified.client_id, scopes=sorted(verified.scopes),
        expires_at=verified.expires_at, resource=verified.audience[0] if verified.audience else None,
        subject=verified.subject, claims=dict(verified.claims),
    )  # fmt: skip
    scope["user"] = AuthenticatedUser(token)
    scope["auth"] = AuthCredentials(sorted(verified.scopes))


class _WhenRunning:
    """The SDK's app, answering 503 until its session manager runs (the app's lifespan starts it)."""

    def __init__(self, app: ASGIApp, endpoint: McpEndpoint) -> None:
        self.app = app
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.endpoint.running:
            response = Response(_STARTING, 503, {"Retry-After": "1"}, media_type="application/json")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def build(fd: Frontdesk, *, dpop: DpopVerifier | None = None) -> McpEndpoint | None:
    """The ``/mcp`` endpoint and its metadata route, or None when it cannot be served here (see the module doc)."""
    try:
        from mcp.server.auth.middleware.auth_context import AuthContextMiddleware

        from .mcp_server import vault_server
    except ImportError:
        log.warning("/mcp is not served: the MCP SDK is not installed (pip install 'frontdesk[mcp]')")
        return None
    try:
        resource = _resource(fd)
    except ValueError as exc:
        log.warning("/mcp is not served: %s", exc)
        return None
    mcp_tools.add_tool_scopes(fd)
    endpoint = McpEndpoint(vault_server(fd, lambda: endpoint.http), [])
    server = endpoint.server
    parts = urlsplit(resource.resource)
    sdk_app: Starlette = server.streamable_http_app(streamable_http_path=PATH, host=parts.hostname or "")
    jwks = httpx.AsyncClient(transport=_KeyRingJwks(fd))
    validator = _LiveTokens(fd, JWTValidator(fd.issuer, resource.resource, http=jwks, jwks_uri=fd.issuer + "/jwks"))
    guarded = BearerAuth(
        _WhenRunning(AuthContextMiddleware(sdk_app), endpoint), validator, resource,
        required_scopes=_scope_rule(fd), serve_metadata=False, on_token=_on_token,
        # RFC 9449 §7: the proof is checked against the public URL, which clients sign (behind a proxy too).
        dpop=dpop or DpopVerifier(public_url=fd.issuer),
    )  # fmt: skip

    async def metadata(request: Request) -> Response:
        # RFC 9728 §3: at the path-suffixed well-known URL only. The root one would describe this origin, which is
        # the authorization server's; the 401 names this URL in resource_metadata (§5.1).
        document = await anyio.to_thread.run_sync(_resource, fd)
        headers = {"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=300"}
        return Response(document.body(), 200, headers, media_type="application/json")

    endpoint.routes = [
        Route(resource.metadata_path, metadata, methods=["GET"]),
        Route(PATH, guarded),  # every method: the SDK answers 405 for what it does not serve
    ]
    return endpoint


async def serve_forever(app: Starlette) -> None:
    """Run the SDK's session manager for as long as the app runs (started in the app's lifespan task group)."""
    endpoint: McpEndpoint | None = getattr(app.state, "mcp", None)
    if endpoint is None:
        return
    endpoint.http = app.state.vault_http
    async with endpoint.server.session_manager.run():
        endpoint.running = True
        try:
            await anyio.sleep_forever()
        finally:
            endpoint.running = False
