"""RFC 6749 §3.2 token endpoint: noCache → parseBody → authenticateClient → exchange."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..client_auth import authenticate_client, presented_credentials
from ..core import Frontdesk
from ..errors import InvalidClient, OAuthError
from ..grant_types import exchange
from ..protocol.forms import Params
from ..storage.clients import ClientRecord
from .http import client_ip, error_response, json_response, read_form

__all__ = ["authenticated_client", "oauth_error", "token"]


async def authenticated_client(request: Request, fd: Frontdesk) -> tuple[ClientRecord, Params]:
    """Parse the body and authenticate the client: the first steps of token, introspection, revocation, device."""
    params = await read_form(request, fd.settings.max_body_bytes)
    authorization = request.headers.get("authorization")
    try:
        presented = presented_credentials(authorization, params)
        client = await run_in_threadpool(authenticate_client, fd, presented)
    except InvalidClient as exc:
        if authorization:
            exc.challenge = 'Basic realm="frontdesk"'
        raise
    return client, params


def oauth_error(exc: OAuthError) -> Response:
    challenge = exc.challenge if isinstance(exc, InvalidClient) else None
    return error_response(exc, {"WWW-Authenticate": challenge} if challenge else None)


async def token(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    try:
        client, params = await authenticated_client(request, fd)
        body = await run_in_threadpool(exchange, fd, client, params, client_ip(request))
    except OAuthError as exc:
        return oauth_error(exc)
    return json_response(body)
