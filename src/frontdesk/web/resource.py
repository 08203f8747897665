"""Endpoints about issued tokens: introspection (RFC 7662), revocation (RFC 7009), UserInfo (OIDC Core §5.3)."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..core import Frontdesk
from ..errors import InsufficientScope, InvalidClient, InvalidRequest, InvalidToken, OAuthError
from ..oauth.client_auth import Presented
from ..oauth.introspection import live_access_token, live_refresh_token, revoke
from ..oauth.rate_limits import Limit
from ..protocol.forms import Params
from ..protocol.oidc import userinfo_claims
from ..protocol.rfc6750 import bearer_token, www_authenticate
from ..storage.clients import ClientRecord
from ..storage.db import transaction
from .http import client_ip, error_response, json_response, read_form, run_sync
from .token import add_challenge, authenticate, authenticated_client, oauth_error, read_credentials

__all__ = ["introspect", "revocation", "userinfo"]

INACTIVE: dict[str, Any] = {"active": False}


def _introspect(fd: Frontdesk, client: ClientRecord, token: str) -> dict[str, Any]:
    refresh = live_refresh_token(fd, token)
    if refresh is not None:
        if refresh.client_id != client.client_id:
            return INACTIVE
        out: dict[str, Any] = {
            "active": True,
            "token_type": "refresh_token",
            "client_id": refresh.client_id,
            "scope": " ".join(refresh.scope),
            "exp": refresh.expires_at,
            "iss": fd.issuer,
        }
        if refresh.user_id:
            out["sub"] = refresh.user_id
        return out
    access = live_access_token(fd, token)
    if access is None:
        return INACTIVE
    # RFC 7662 §4: tell a client only about tokens issued to it or addressed to a resource it serves.
    if access.claims.get("client_id") != client.client_id and not set(access.audiences) & set(client.resources):
        return INACTIVE
    claims = access.claims
    out = {"active": True, "token_type": "Bearer"}
    for name in ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti", "auth_time"):
        if name in claims:
            out[name] = claims[name]
    return out


def _look(fd: Frontdesk, presented: Presented, limits: list[Limit], params: Params) -> dict[str, Any] | None:
    """Authenticate, then introspect: one trip to the thread pool (none on SQLite). None for a public client."""
    client = authenticate(fd, presented, limits)
    if client.public:
        return None
    token = params.get("token")
    if token is None:
        raise InvalidRequest("token is required")
    return _introspect(fd, client, token)


async def introspect(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    try:
        try:
            presented, limits, params = await read_credentials(request, fd)
            body = await run_sync(fd.engine, _look, fd, presented, limits, params)
        except InvalidClient as exc:
            add_challenge(request, exc)
            raise
        if body is None:
            raise InvalidClient("public clients cannot introspect tokens")
    except OAuthError as exc:
        return oauth_error(exc)
    return json_response(body)


async def revocation(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    try:
        client, params = await authenticated_client(request, fd)
        token = params.get("token")
        if token is None:
            raise InvalidRequest("token is required")
    except OAuthError as exc:
        return oauth_error(exc)
    await run_in_threadpool(revoke, fd, client.client_id, token, client_ip(request))
    return json_response({})


def _userinfo(fd: Frontdesk, token: str) -> dict[str, Any]:
    access = live_access_token(fd, token)
    # RFC 8707: a token addressed to another resource is not for UserInfo.
    if access is None or fd.issuer not in access.audiences:
        raise InvalidToken("the access token is invalid, expired or not meant for UserInfo")
    if "openid" not in access.scope:
        raise InsufficientScope("the access token lacks the openid scope")
    with transaction(fd.engine, readonly=True) as conn:
        user = fd.users.by_id(conn, str(access.claims.get("sub")))
    if user is None:
        raise InvalidToken("the person behind this token no longer exists")
    return userinfo_claims(user.id, access.scope, user.username, user.name, user.email)


async def userinfo(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        # RFC 6750 §3.1: no credentials → 401 with a bare challenge. Query-string tokens are not accepted
        # (OAuth 2.1 §5.1), so a request carrying one lands here too.
        return Response(status_code=401, headers={"WWW-Authenticate": www_authenticate(), "Cache-Control": "no-store"})
    try:
        if request.method == "POST" and request.headers.get("content-type"):
            await read_form(request, fd.settings.max_body_bytes)
        claims = await run_in_threadpool(_userinfo, fd, token)
    except OAuthError as exc:
        return error_response(exc, {"WWW-Authenticate": www_authenticate(exc.error, exc.description)})
    return json_response(claims)
