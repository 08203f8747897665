"""Endpoints about issued tokens: introspection (RFC 7662), revocation (RFC 7009), UserInfo (OIDC Core §5.3).

Introspection and revocation are tables of steps (web/token.py): client authentication first, then the endpoint's
own step."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..core import Frontdesk
from ..errors import InvalidClient, InvalidRequest, OAuthError
from ..oauth.client_auth import Presented, authenticate
from ..oauth.dpop import ResourceProofRefused, check_userinfo_proof
from ..oauth.introspection import introspect as introspection
from ..oauth.introspection import revoke
from ..oauth.introspection import userinfo as userinfo_of
from ..oauth.rate_limits import Limit
from ..oauth.writes import run_cached
from ..protocol.forms import Params
from ..protocol.rfc6750 import bearer_token, www_authenticate
from .http import client_ip, error_response, json_response, read_form
from .token import (
    CLIENT_AUTHENTICATION,
    ClientRequest,
    Step,
    fetch_published_keys,
    parse_body,
    present_credentials,
    run_steps,
)

__all__ = ["INTROSPECTION", "REVOCATION", "introspect", "revocation", "userinfo"]


def _look(fd: Frontdesk, presented: Presented, limits: list[Limit], params: Params) -> dict[str, Any] | None:
    """Authenticate, then introspect: on the loop from memory where it can (``run_cached``), else one trip to a
    thread. None for a public client."""
    client = authenticate(fd, presented, limits)
    if client.public:
        return None
    token = params.get("token")
    if token is None:
        raise InvalidRequest("token is required")
    return introspection(fd, client, token)


async def introspect_token(step: ClientRequest) -> None:
    """RFC 7662 §2.1: authenticate the client, then answer about the token; a public client may not ask."""
    fd = step.fd
    answer = await run_cached(fd.engine, _look, fd, step.presented, step.limits, step.params)
    if answer is None:
        # The client authenticated as public, so without an Authorization header: this refusal gets no challenge.
        raise InvalidClient("public clients cannot introspect tokens")
    step.answer = answer


async def require_token(step: ClientRequest) -> None:
    """RFC 7009 §2.1: ``token`` is required."""
    if step.params.get("token") is None:
        raise InvalidRequest("token is required")


INTROSPECTION: tuple[Step, ...] = (parse_body, present_credentials, fetch_published_keys, introspect_token)
REVOCATION: tuple[Step, ...] = (*CLIENT_AUTHENTICATION, require_token)


async def introspect(request: Request) -> Response:
    step = ClientRequest.of(request)
    refused = await run_steps(step, INTROSPECTION)
    return refused if refused is not None else json_response(step.answer)


async def revocation(request: Request) -> Response:
    step = ClientRequest.of(request)
    refused = await run_steps(step, REVOCATION)
    if refused is not None:
        return refused
    # Outside the steps: a database failure here is the application's to log and answer (web/app.py).
    await run_in_threadpool(revoke, step.fd, step.client.client_id, step.params["token"], client_ip(request))
    return json_response({})


async def userinfo(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    authorization = request.headers.get("authorization")
    scheme, _, value = (authorization or "").strip().partition(" ")
    dpop = scheme.lower() == "dpop" and bool(value.strip())  # RFC 9449 §7.1: a DPoP-bound token and its proof
    token = value.strip() if dpop else bearer_token(authorization)
    if token is None:
        # RFC 6750 §3.1: no credentials → 401 with a bare challenge. Query-string tokens are not accepted
        # (OAuth 2.1 §5.1), so a request carrying one lands here too.
        return Response(status_code=401, headers={"WWW-Authenticate": www_authenticate(), "Cache-Control": "no-store"})
    try:
        if request.method == "POST" and request.headers.get("content-type"):
            await read_form(request, fd.settings.max_body_bytes)
        await run_in_threadpool(check_userinfo_proof, fd, request.method, request.headers, token)
        claims = await run_in_threadpool(userinfo_of, fd, token)
    except ResourceProofRefused as exc:
        return json_response(exc.body(), exc.status, exc.headers())
    except OAuthError as exc:
        return error_response(exc, {"WWW-Authenticate": www_authenticate(exc.error, exc.description)})
    return json_response(claims)
