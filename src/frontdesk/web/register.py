"""RFC 7591 §3 client registration endpoint (``POST /register``) and RFC 7592 client configuration endpoint
(``GET``/``PUT``/``DELETE /register/{client_id}``): HTTP only. The service (``oauth.dynamic_registration``) decides.

    registration    parse_metadata → present_token → register_client              201 (RFC 7591 §3.2.1)
    read            present_token → read_client                                    200 (RFC 7592 §3)
    update          present_token → managed_client → parse_metadata → update_client 200 (RFC 7592 §2.2)
    delete          present_token → delete_client                                  204 (RFC 7592 §2.3)

Errors are RFC 7591 §3.2.2 JSON; a missing or refused bearer token is a 401 with an RFC 6750 §3.1 challenge.
Routed only when ``[registration] mode`` is not ``closed`` (web/app.py).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..core import Frontdesk
from ..errors import InvalidRequest, InvalidToken, OAuthError, PayloadTooLarge
from ..oauth import dynamic_registration as service
from ..protocol.rfc6750 import bearer_token, www_authenticate
from .http import NO_STORE, client_ip, error_response, json_response, read_json

__all__ = ["client_configuration", "registration"]


async def _parse_metadata(request: Request, fd: Frontdesk) -> dict[str, Any]:
    """RFC 7591 §3.1: the metadata as one JSON object (``application/json``), bounded like every body; anything else
    is ``invalid_client_metadata`` (too large stays 413, as at every endpoint)."""
    try:
        return await read_json(request, fd.settings.max_body_bytes)
    except PayloadTooLarge:
        raise
    except InvalidRequest as exc:
        raise service.InvalidClientMetadata(exc.description) from None


def _present_token(request: Request) -> str | None:
    """RFC 6750 §2.1: the bearer token of the Authorization header (an initial access token, RFC 7591 §3, or a
    registration access token, RFC 7592 §3); a header that is not a bearer token is a refused token."""
    header = request.headers.get("authorization")
    token = bearer_token(header)
    if header and token is None:
        raise InvalidToken("the Authorization header must carry a bearer token")
    return token


def _refusal(request: Request, exc: OAuthError) -> Response:
    if isinstance(exc, InvalidToken):
        # RFC 6750 §3.1: a request without credentials gets a bare challenge; a refused token, its error.
        if request.headers.get("authorization"):
            challenge = www_authenticate(exc.error, exc.description)
        else:
            challenge = www_authenticate()
        return error_response(exc, {"WWW-Authenticate": challenge})
    return error_response(exc)


async def registration(request: Request) -> Response:
    """RFC 7591 §3.1."""
    fd: Frontdesk = request.app.state.fd
    try:
        body = await _parse_metadata(request, fd)
        token = _present_token(request)
        answer = await run_in_threadpool(service.register_client, fd, body, token, client_ip(request))
    except OAuthError as exc:
        return _refusal(request, exc)
    return json_response(answer, 201)


async def client_configuration(request: Request) -> Response:
    """RFC 7592 §2: read, replace or delete a self-registered client, with its registration access token."""
    fd: Frontdesk = request.app.state.fd
    client_id: str = request.path_params["client_id"]
    ip = client_ip(request)
    try:
        token = _present_token(request)
        if request.method == "GET":
            return json_response(await run_in_threadpool(service.read_client, fd, client_id, token))
        if request.method == "PUT":
            # RFC 7592 §2: a refused token is answered as such, whatever the body holds.
            await run_in_threadpool(service.managed_client, fd, client_id, token)
            body = await _parse_metadata(request, fd)
            return json_response(await run_in_threadpool(service.update_client, fd, client_id, token, body, ip))
        await run_in_threadpool(service.delete_client, fd, client_id, token, ip)
    except OAuthError as exc:
        return _refusal(request, exc)
    return Response(status_code=204, headers=NO_STORE)
