"""RFC 6749 §3.2 token endpoint: noCache → parseBody → authenticateClient → exchange."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..client_auth import authenticate_client, presented_credentials
from ..core import Frontdesk
from ..errors import InvalidClient, OAuthError
from ..grant_types import exchange
from ..limits import check, client_auth_limits, count_failure
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
        limits = client_auth_limits(fd, presented.client_id, client_ip(request))
        await run_in_threadpool(check, fd, limits)
        try:
            client = await run_in_threadpool(authenticate_client, fd, presented)
        except InvalidClient:
            # RFC 9700 §2.5 / OAuth 2.1 §2.4.1: guessing a client's secret stops after a handful of tries.
            await run_in_threadpool(count_failure, fd, limits)
            raise
    except InvalidClient as exc:
        if authorization:
            exc.challenge = 'Basic realm="frontdesk"'
        raise
    return client, params


def oauth_error(exc: OAuthError) -> Response:
    if isinstance(exc, InvalidClient) and exc.challenge:
        return error_response(exc, {"WWW-Authenticate": exc.challenge})
    return error_response(exc)


async def token(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    try:
        client, params = await authenticated_client(request, fd)
        body = await run_in_threadpool(exchange, fd, client, params, client_ip(request))
    except OAuthError as exc:
        return oauth_error(exc)
    return json_response(body)
