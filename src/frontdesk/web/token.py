"""RFC 6749 §3.2 token endpoint, and the client-authenticating steps it shares with introspection (RFC 7662),
revocation (RFC 7009) and device authorization (RFC 8628).

In the manner of node-oidc-provider's ``lib/actions/token.js``, an endpoint is a table of small named steps run top
to bottom over one typed :class:`ClientRequest`; which step runs on which endpoint reads at a glance:

    token           parse_body → present_credentials → fetch_published_keys → check_dpop_proof → issue_tokens
    introspection   parse_body → present_credentials → fetch_published_keys → introspect_token   (web/resource.py)
    revocation      parse_body → present_credentials → fetch_published_keys → authenticate_client → require_token
    device          parse_body → present_credentials → fetch_published_keys → authenticate_client (web/device.py)

The blocking work of the token endpoint (rate limits, client authentication, the grant) is one step, so that it is
one trip off the event loop (oauth/writes.py), or none on SQLite.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..core import Frontdesk
from ..errors import InvalidClient, OAuthError, UseDpopNonce
from ..oauth.client_auth import (
    AuthenticatedClient,
    Presented,
    authenticate,
    fetch_client_keys,
    needs_published_keys,
    presented_credentials,
)
from ..oauth.clients import find_client, names_document, prepare_client
from ..oauth.dpop import fresh_nonce, spend_proof, token_proof
from ..oauth.grants import Response as Body
from ..oauth.grants import exchange
from ..oauth.rate_limits import Limit, client_auth_limits
from ..oauth.writes import run_cached, run_write
from ..protocol.forms import Params
from .http import client_ip, error_response, header, json_response, read_form, run_sync

__all__ = [
    "CLIENT_AUTHENTICATION",
    "FRONTDESK",
    "TOKEN",
    "ClientRequest",
    "Step",
    "authenticate_client",
    "authenticated_client",
    "check_dpop_proof",
    "fetch_published_keys",
    "oauth_error",
    "parse_body",
    "present_credentials",
    "run_steps",
    "token",
]


FRONTDESK = "frontdesk.fd"  # the scope key under which the direct path (asgi.py) passes the frontdesk


@dataclass(slots=True)
class ClientRequest:
    """What the steps of an endpoint learn about one request, each field set by the step named beside it."""

    request: Request
    fd: Frontdesk
    params: Params = field(init=False)  # parse_body
    presented: Presented = field(init=False)  # present_credentials; fetch_published_keys adds the client's keys
    limits: list[Limit] = field(init=False)  # present_credentials
    client: AuthenticatedClient = field(init=False)  # authenticate_client
    jkt: str | None = field(default=None, init=False)  # check_dpop_proof: the proof key's thumbprint (RFC 9449 §6.1)
    answer: dict[str, Any] = field(init=False)  # the endpoint's last step

    @classmethod
    def of(cls, request: Request) -> ClientRequest:
        # The direct path (asgi.py) hands the frontdesk over in the scope: the app's state costs a failed attribute
        # lookup and a __getattr__ on every request. Through the router it is read from there.
        fd: Frontdesk | None = request.scope.get(FRONTDESK)
        return cls(request, fd if fd is not None else request.app.state.fd)


Step = Callable[[ClientRequest], Awaitable[None]]


async def parse_body(step: ClientRequest) -> None:
    """RFC 6749 §3.2: a form-encoded POST body, bounded."""
    step.params = await read_form(step.request, step.fd.settings.max_body_bytes)


async def present_credentials(step: ClientRequest) -> None:
    """RFC 6749 §2.3: the one credential the request presents, and the abuse limits that guard its checking."""
    step.presented = presented_credentials(header(step.request, b"authorization"), step.params)
    step.limits = client_auth_limits(step.fd, step.presented.client_id, client_ip(step.request))


async def fetch_published_keys(step: ClientRequest) -> None:
    """RFC 7523 with a ``jwks_uri`` (RFC 7591 §2): the keys the client publishes, read here on the event loop without
    blocking it, before the blocking part of authentication (oauth/client_auth.py). Likewise a client ID metadata
    document the client_id names (oauth/clients.py), fetched first in a worker thread."""
    if names_document(step.presented.client_id):  # else there is nothing to fetch: no coroutine to run
        await prepare_client(step.fd, step.presented.client_id)
    if needs_published_keys(step.presented):
        client = await run_sync(step.fd.engine, find_client, step.fd, step.presented.client_id, fetch=False)
        step.presented = await fetch_client_keys(step.presented, client, registration=step.fd.settings.registration)


async def authenticate_client(step: ClientRequest) -> None:
    """The client the credential names, once it checks out, under its abuse limits."""
    step.client = await run_cached(step.fd.engine, authenticate, step.fd, step.presented, step.limits)


async def check_dpop_proof(step: ClientRequest) -> None:
    """RFC 9449 §4.3, §5, §11.1: a DPoP header must hold one good, fresh proof, whose key the tokens are then bound
    to. Without the header nothing is done here: a bearer token request pays nothing for DPoP."""
    if header(step.request, b"dpop") is None:
        return
    values = step.request.headers.getlist("dpop")
    fd = step.fd
    proof = token_proof(fd, values)
    await run_write(fd.engine, spend_proof, fd, proof)  # its own write: a retried grant must not meet its own jti
    step.jkt = proof.jkt


def _issue(
    fd: Frontdesk, presented: Presented, limits: list[Limit], params: Params, ip: str | None, jkt: str | None
) -> Body:
    # One trip to the thread pool for the whole request: authenticate, then exchange.
    client = authenticate(fd, presented, limits)
    return exchange(fd, client, params, ip, jkt)


async def issue_tokens(step: ClientRequest) -> None:
    """RFC 6749 §3.2.1 then §4.1.3, §6, §4.4, RFC 8628 §3.4: authenticate the client and dispatch its grant.
    A client_credentials token needs nothing from the store that this process does not keep (oauth/writes.py
    ``run_cached``); every other grant reads and writes its grant's rows."""
    fd = step.fd
    run = run_cached if step.params.get("grant_type") == "client_credentials" else run_write
    step.answer = await run(
        fd.engine, _issue, fd, step.presented, step.limits, step.params, client_ip(step.request), step.jkt
    )


CLIENT_AUTHENTICATION: tuple[Step, ...] = (parse_body, present_credentials, fetch_published_keys, authenticate_client)
TOKEN: tuple[Step, ...] = (parse_body, present_credentials, fetch_published_keys, check_dpop_proof, issue_tokens)


def _add_challenge(request: Request, exc: InvalidClient) -> None:
    # RFC 6749 §5.2: a client that authenticated with the Authorization header is answered with a challenge.
    if request.headers.get("authorization"):
        exc.challenge = 'Basic realm="frontdesk"'


async def _run(step: ClientRequest, steps: Sequence[Step]) -> None:
    try:
        for run in steps:
            await run(step)
    except InvalidClient as exc:  # client authentication's: no grant raises one (introspection's refusal: resource.py)
        _add_challenge(step.request, exc)
        raise


def oauth_error(exc: OAuthError) -> Response:
    if isinstance(exc, InvalidClient) and exc.challenge:
        return error_response(exc, {"WWW-Authenticate": exc.challenge})
    if isinstance(exc, UseDpopNonce) and exc.nonce:
        return error_response(exc, {"DPoP-Nonce": exc.nonce})  # RFC 9449 §8: exactly one, the fresh nonce
    return error_response(exc)


async def run_steps(step: ClientRequest, steps: Sequence[Step]) -> Response | None:
    """Run ``steps`` in order; the error answer of the first that refuses the request, or None when all pass."""
    try:
        await _run(step, steps)
    except OAuthError as exc:
        return oauth_error(exc)
    return None


async def authenticated_client(request: Request, fd: Frontdesk) -> tuple[AuthenticatedClient, Params]:
    """Parse the body and authenticate the client: the first steps of revocation and device authorization."""
    step = ClientRequest(request, fd)
    await _run(step, CLIENT_AUTHENTICATION)
    return step.client, step.params


async def token(request: Request) -> Response:
    step = ClientRequest.of(request)
    refused = await run_steps(step, TOKEN)
    if refused is not None:
        return refused
    # RFC 9449 §8.2: where nonces are required, each answer to a proof hands out the current one.
    fd = step.fd
    fresh = {"DPoP-Nonce": fresh_nonce(fd)} if step.jkt and fd.settings.dpop.require_nonce else None
    return json_response(step.answer, headers=fresh)
