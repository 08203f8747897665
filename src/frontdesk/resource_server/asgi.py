"""The kit in an ASGI application: a middleware that guards everything behind it, and a dependency for single
endpoints (FastAPI ``Depends``, or awaited in a plain Starlette endpoint).

Both put the :class:`~.tokens.VerifiedToken` on the request (``request.state.access_token``) and answer failures
with the RFC 6750 §3 challenges of :mod:`.rfc6750`. The middleware also serves the RFC 9728 metadata document.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .rfc6750 import Challenge
from .rfc9449 import DpopVerifier, credentials
from .rfc9728 import ProtectedResource
from .tokens import (
    AuthorizationServerUnavailable,
    InsufficientScope,
    TokenError,
    TokenValidator,
    VerifiedToken,
    missing_scopes,
)

__all__ = [
    "BearerAuth",
    "BearerChallenge",
    "RequireToken",
    "ScopeRule",
    "access_token",
    "challenge_handler",
    "metadata_routes",
]

log = logging.getLogger("frontdesk.resource_server")

# The scopes one request needs, decided from the request (its method, path or body).
ScopeRule = Callable[[Request], Awaitable[Collection[str]]]
OnToken = Callable[[Scope, VerifiedToken], None]
STATE_KEY = "access_token"
_UNAVAILABLE = b'{"error": "temporarily_unavailable", "error_description": "the token cannot be checked now"}'


def access_token(request: HTTPConnection) -> VerifiedToken | None:
    """The token the middleware or the dependency accepted for this request, if any."""
    token = request.state._state.get(STATE_KEY)
    return token if isinstance(token, VerifiedToken) else None


async def _judge(
    validator: TokenValidator, connection: HTTPConnection, required: Collection[str], dpop: DpopVerifier
) -> VerifiedToken | TokenError | None:
    """The verified token, the error that refuses it, or None when the request brought no access token. A
    DPoP-bound token (RFC 9449 §7) also needs its proof, from the key it is bound to."""
    try:
        presented = credentials(connection.headers.getlist("authorization"))
        if presented is None:
            return None
        scheme, token = presented
        verified = await validator.validate(token)
        method = connection.scope.get("method", "GET")
        dpop.check(scheme, token, verified.claims, method, str(connection.url), connection.headers.getlist("dpop"))
    except TokenError as error:
        log.debug("bearer token refused: %s", error)  # the reason only, never the token
        return error
    missing = missing_scopes(verified.scopes, required)
    if missing:
        return InsufficientScope(f"this request needs the scope {' '.join(missing)}", required)
    return verified


class _Replay:
    """The request body as read by a scope rule, handed to the application again."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._seen: list[Message] = []

    async def record(self) -> Message:
        message = await self._receive()
        self._seen.append(message)
        return message

    async def replay(self) -> Message:
        if self._seen:
            return self._seen.pop(0)
        return await self._receive()


class BearerAuth:
    """ASGI middleware: every HTTP request needs a valid bearer token for ``validator.resource`` with
    ``required_scopes`` (a fixed set, or a :data:`ScopeRule` per request).

    Left through without a token: the RFC 9728 metadata (``GET``), and ``OPTIONS`` (a CORS preflight carries no
    credentials; put a CORS middleware outside this one to answer it). ``on_token`` may put the token where a
    framework expects it (see :func:`frontdesk.resource_server.mcp.protect`). ``dpop`` checks the proofs of
    DPoP-bound tokens (RFC 9449 §7); one with default settings is made when none is given."""

    def __init__(
        self,
        app: ASGIApp,
        validator: TokenValidator,
        resource: ProtectedResource,
        *,
        required_scopes: Collection[str] | ScopeRule = (),
        serve_metadata: bool = True,
        on_token: OnToken | None = None,
        dpop: DpopVerifier | None = None,
    ) -> None:
        if validator.resource != resource.resource:
            raise ValueError("the validator checks tokens for another resource than the metadata describes")
        self.app = app
        self.validator = validator
        self.resource = resource
        self._rule = required_scopes if callable(required_scopes) else None
        self._fixed = () if callable(required_scopes) else tuple(required_scopes)
        self._metadata_paths = resource.metadata_paths if serve_metadata else ()
        self._on_token = on_token
        self.dpop = dpop or DpopVerifier()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)  # lifespan
            return
        method = scope.get("method", "GET")
        if scope["type"] == "http" and method in ("GET", "HEAD") and scope["path"] in self._metadata_paths:
            await _metadata_response(self.resource)(scope, receive, send)
            return
        if method == "OPTIONS":
            await self.app(scope, receive, send)
            return
        replay = _Replay(receive)
        required = self._fixed
        if self._rule is not None and scope["type"] == "http":
            required = tuple(await self._rule(Request(scope, replay.record)))
        outcome = await self._outcome(HTTPConnection(scope), required)
        if not isinstance(outcome, VerifiedToken):
            await self._refuse(scope, receive, send, outcome)
            return
        scope.setdefault("state", {})[STATE_KEY] = outcome
        if self._on_token is not None:
            self._on_token(scope, outcome)
        await self.app(scope, replay.replay, send)

    async def _outcome(self, connection: HTTPConnection, required: tuple[str, ...]) -> VerifiedToken | Response:
        try:
            verdict = await _judge(self.validator, connection, required, self.dpop)
        except AuthorizationServerUnavailable as exc:
            log.warning("bearer token not checked: %s", exc)
            return Response(_UNAVAILABLE, 503, {"Retry-After": "5"}, media_type="application/json")
        if isinstance(verdict, VerifiedToken):
            return verdict
        challenge = Challenge.build(self.resource.metadata_url, required, verdict)
        return Response(challenge.body, challenge.status, challenge.headers)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, response: Response) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # RFC 6455 §7.4.1: policy violation
            return
        await response(scope, receive, send)


def _metadata_response(resource: ProtectedResource) -> Response:
    # RFC 9728 §3.2: JSON; public and cacheable, and readable by browser-based clients of any origin. (To a HEAD
    # request the server sends the headers alone.)
    headers = {"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=3600"}
    return Response(resource.body(), 200, headers, media_type="application/json")


def metadata_routes(resource: ProtectedResource) -> list[Route]:
    """Starlette routes serving the RFC 9728 document, for applications that use :class:`RequireToken` alone."""

    async def endpoint(request: Request) -> Response:
        return _metadata_response(resource)

    return [Route(path, endpoint, methods=["GET", "HEAD"]) for path in resource.metadata_paths]


class BearerChallenge(HTTPException):
    """A refused request as an HTTPException: Starlette and FastAPI answer it with its status and challenge header
    anywhere; :func:`challenge_handler` also gives it the JSON body."""

    def __init__(self, challenge: Challenge) -> None:
        headers = {"WWW-Authenticate": challenge.www_authenticate, "Cache-Control": "no-store"}
        super().__init__(challenge.status, challenge.body.decode(), headers)
        self.challenge = challenge


async def challenge_handler(request: Request, exc: Exception) -> Response:
    """``app.add_exception_handler(BearerChallenge, challenge_handler)``: the RFC 6750 JSON body."""
    assert isinstance(exc, BearerChallenge)
    return Response(exc.challenge.body, exc.challenge.status, exc.challenge.headers)


class RequireToken:
    """A dependency that returns the request's :class:`VerifiedToken` with ``scopes``, or raises
    :class:`BearerChallenge`. FastAPI: ``token: VerifiedToken = Depends(RequireToken(validator, resource, ["a"]))``;
    Starlette: ``token = await require(request)``. A token the middleware accepted is not validated twice."""

    def __init__(
        self,
        validator: TokenValidator,
        resource: ProtectedResource,
        scopes: Collection[str] = (),
        *,
        dpop: DpopVerifier | None = None,
    ) -> None:
        self.validator = validator
        self.resource = resource
        self.scopes = tuple(scopes)
        self.dpop = dpop or DpopVerifier()

    async def __call__(self, request: Request) -> VerifiedToken:
        verdict: VerifiedToken | TokenError | None
        held = access_token(request)
        if held is not None and self.validator.resource in held.audience:
            missing = missing_scopes(held.scopes, self.scopes)
            verdict = (
                InsufficientScope(f"this request needs the scope {' '.join(missing)}", self.scopes) if missing else held
            )
        else:
            try:
                verdict = await _judge(self.validator, request, self.scopes, self.dpop)
            except AuthorizationServerUnavailable as exc:
                log.warning("bearer token not checked: %s", exc)
                raise HTTPException(503, "the token cannot be checked now", {"Retry-After": "5"}) from None
        if isinstance(verdict, VerifiedToken):
            request.state._state[STATE_KEY] = verdict
            return verdict
        raise BearerChallenge(Challenge.build(self.resource.metadata_url, self.scopes, verdict))
