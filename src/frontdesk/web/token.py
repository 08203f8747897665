"""RFC 6749 §3.2 token endpoint: noCache → parseBody → authenticateClient → exchange."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..core import Frontdesk
from ..errors import InvalidClient, OAuthError
from ..oauth.client_auth import (
    Presented,
    authenticate_client,
    fetch_client_keys,
    needs_published_keys,
    presented_credentials,
)
from ..oauth.grants import Response as Body
from ..oauth.grants import exchange
from ..oauth.rate_limits import Limit, check, client_auth_limits, count_failure
from ..protocol.forms import Params
from ..storage.clients import ClientRecord
from .http import client_ip, error_response, json_response, read_form, run_sync, run_write

__all__ = ["add_challenge", "authenticate", "authenticated_client", "oauth_error", "read_credentials", "token"]


def authenticate(fd: Frontdesk, presented: Presented, limits: list[Limit]) -> ClientRecord:
    """The client authentication step, under its abuse limits; blocking (it reads the store)."""
    check(fd, limits)
    try:
        return authenticate_client(fd, presented)
    except InvalidClient:
        # RFC 9700 §2.5 / OAuth 2.1 §2.4.1: guessing a client's secret stops after a handful of tries.
        count_failure(fd, limits)
        raise


async def read_credentials(request: Request, fd: Frontdesk) -> tuple[Presented, list[Limit], Params]:
    """The body and the credentials it presents; for a client assertion, with the keys its client publishes at a
    jwks_uri, read here on the event loop without blocking it (client_auth.py)."""
    params = await read_form(request, fd.settings.max_body_bytes)
    presented = presented_credentials(request.headers.get("authorization"), params)
    if needs_published_keys(presented):
        client = await run_sync(fd.engine, fd.clients.get, presented.client_id)
        presented = await fetch_client_keys(presented, client)
    return presented, client_auth_limits(fd, presented.client_id, client_ip(request)), params


def add_challenge(request: Request, exc: InvalidClient) -> None:
    if request.headers.get("authorization"):
        exc.challenge = 'Basic realm="frontdesk"'


async def authenticated_client(request: Request, fd: Frontdesk) -> tuple[ClientRecord, Params]:
    """Parse the body and authenticate the client: the first steps of token, introspection, revocation, device."""
    try:
        presented, limits, params = await read_credentials(request, fd)
        client = await run_sync(fd.engine, authenticate, fd, presented, limits)
    except InvalidClient as exc:
        add_challenge(request, exc)
        raise
    return client, params


def _exchange(fd: Frontdesk, presented: Presented, limits: list[Limit], params: Params, ip: str | None) -> Body:
    # One trip to the thread pool for the whole request: authenticate, then exchange.
    client = authenticate(fd, presented, limits)
    return exchange(fd, client, params, ip)


def oauth_error(exc: OAuthError) -> Response:
    if isinstance(exc, InvalidClient) and exc.challenge:
        return error_response(exc, {"WWW-Authenticate": exc.challenge})
    return error_response(exc)


async def token(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    try:
        try:
            presented, limits, params = await read_credentials(request, fd)
            body = await run_write(fd.engine, _exchange, fd, presented, limits, params, client_ip(request))
        except InvalidClient as exc:  # the grants raise no InvalidClient: this is client authentication's
            add_challenge(request, exc)
            raise
    except OAuthError as exc:
        return oauth_error(exc)
    return json_response(body)
