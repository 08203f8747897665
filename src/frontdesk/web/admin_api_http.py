"""The admin API's plumbing (web/admin_api.py has the routes): authenticate → authorize → handler for each
:class:`Operation`, the JSON problems ``{"error", "error_description"}`` of ``admin.errors``, and reading query
parameters and bodies with errors that name what was wrong (422), never a stack trace.

Every call presents an admin token (``Authorization: Bearer fd_adm_…``, RFC 6750 §2.1); failures are counted per
address by ``admin.tokens.authenticate_token``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..admin.errors import AdminError, Invalid, NotFound, TooManyAttempts, Unauthenticated
from ..admin.paging import Page
from ..admin.principals import Principal, authorize
from ..admin.tokens import authenticate_token
from ..core import Frontdesk
from ..protocol.forms import Params
from .http import client_ip, header, json_response, read_json, read_params

__all__ = [
    "BASE",
    "BODY_LIMIT",
    "Handler",
    "Operation",
    "body_of",
    "call",
    "created",
    "flag",
    "integer",
    "listing",
    "no_content",
    "page",
    "problem",
    "query",
    "routes_of",
    "text",
]

BASE = "/admin/api/v1"
BODY_LIMIT = 256 * 1024
REALM = 'Bearer realm="frontdesk admin"'

P = ParamSpec("P")
T = TypeVar("T")

Handler = Callable[[Request, Frontdesk, Principal], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of the API: ``path`` as the OpenAPI document names it (under :data:`BASE`), ``route`` as
    Starlette matches it when it differs (a resource URI holds slashes: ``{uri:path}``)."""

    method: str
    path: str
    operation: str
    handler: Handler
    route: str | None = None


class NoToken(Unauthenticated):
    """No admin token at all: RFC 6750 §3.1 gives such a request the bare challenge, without an error code."""


def problem(exc: AdminError) -> Response:
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = REALM if isinstance(exc, NoToken) else f'{REALM}, error="invalid_token"'
    if isinstance(exc, TooManyAttempts):
        headers["Retry-After"] = str(exc.retry_after)
    return json_response(exc.body(), exc.status, headers or None)


def _presented(request: Request) -> str:
    value = header(request, b"authorization") or ""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NoToken("send an admin token: Authorization: Bearer fd_adm_…")
    return token.strip()


async def call(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """A blocking admin service call, in the thread pool (admin calls are few; the event loop serves the rest)."""
    return await run_in_threadpool(fn, *args, **kwargs)


def _dispatch(by_method: dict[str, Operation]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        # Starlette answers HEAD on every GET route: the GET operation, whose body the server leaves out.
        op = by_method["GET" if request.method == "HEAD" else request.method]
        fd: Frontdesk = request.app.state.fd
        try:
            if any("\x00" in str(v) for v in request.path_params.values()):
                raise NotFound("there is nothing at this address")
            principal = await call(authenticate_token, fd, _presented(request), client_ip(request))
            await call(authorize, fd, principal, op.operation)
            return await op.handler(request, fd, principal)
        except AdminError as exc:
            return problem(exc)

    return endpoint


def routes_of(operations: Iterable[Operation]) -> list[Route]:
    """One Starlette route per path, dispatching on the method to its operation."""
    grouped: dict[str, dict[str, Operation]] = {}
    for op in operations:
        grouped.setdefault(op.route or op.path, {})[op.method] = op
    return [Route(BASE + path, _dispatch(by_method), methods=list(by_method)) for path, by_method in grouped.items()]


# --- reading requests -------------------------------------------------------------------------------------------


async def query(request: Request) -> Params:
    return await read_params(request, BODY_LIMIT)


def integer(params: Params, name: str, default: int | None, low: int, high: int) -> int | None:
    value = params.get(name)
    if value is None:
        return default
    if not (value.isascii() and value.lstrip("-").isdigit()) or len(value) > 18 or not low <= int(value) <= high:
        raise Invalid(f"{name} must be a whole number between {low} and {high}")
    return int(value)


def flag(params: Params, name: str) -> bool:
    value = params.get(name, "false")
    if value not in ("true", "false"):
        raise Invalid(f"{name} must be true or false")
    return value == "true"


async def body_of(request: Request, allowed: Iterable[str], *, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object, with no field but ``allowed``; ``optional``: an empty body is ``{}``."""
    if optional and not header(request, b"content-type") and header(request, b"content-length") in (None, "0"):
        return {}
    body = await read_json(request, BODY_LIMIT)
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise Invalid(f"unknown field {unknown[0][:64]!r}")
    return body


def text(body: dict[str, Any], name: str, *, required: bool = True, longest: int = 2048) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise Invalid(f"{name} is required")
        return None
    if not isinstance(value, str) or len(value) > longest:
        raise Invalid(f"{name} must be a string of at most {longest} characters")
    return value


# --- answers ----------------------------------------------------------------------------------------------------


def page(found: Page[Any]) -> Response:
    return json_response({"items": [item.as_dict() for item in found.items], "next_cursor": found.next_cursor})


def listing(items: Iterable[Any]) -> Response:
    return json_response({"items": [item.as_dict() for item in items], "next_cursor": None})


def created(body: dict[str, Any]) -> Response:
    return json_response(body, 201)


def no_content() -> Response:
    return Response(status_code=204, headers={"Cache-Control": "no-store"})
