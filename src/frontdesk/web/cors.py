"""Cross-origin requests (the Fetch standard's CORS protocol, §3.2) for the endpoints a browser-based client calls
with ``fetch()``: an MCP client or single-page app that registers, redeems a code, refreshes, revokes and reads
discovery and keys from a page of its own origin. RFC 9700 §2.6 and OAuth 2.1 §3.1 forbid CORS only at the
authorization endpoint.

The policy is one and fixed: any origin (``Access-Control-Allow-Origin: *``) and never credentials (no
``Access-Control-Allow-Credentials``). These endpoints authenticate by what the request carries (a code and its
verifier, a client assertion, an ``Authorization`` header the script sets itself), never by a cookie, so a page of
another origin can do nothing a script outside any browser could not already do; and with ``*`` a browser sends no
cookies along, so the person's session here is never in play.

Which routes: marked once in web/app.py's route table with :func:`cross_origin`. The mark wraps the route's ASGI app
(:class:`CrossOrigin`): it answers the preflight (``OPTIONS`` → 204) and adds the headers to every answer the route
gives, OAuth errors included, because a browser hides from the script any answer without them and the client must
be able to read ``invalid_grant``. The hot routes' fast path (asgi.py) bypasses the route's app; it asks
:func:`cross_origin_of` which of them are marked and adds the same headers with :func:`with_cors`. A 500 comes from
outside the route, so the route also marks the request's scope (:func:`mark`) for the server-error handler.

Left out on purpose: ``/authorize`` and the pages are navigations of the top-level browsing context, never fetched
(RFC 9700 §2.6, BCP-39); introspection is for resource servers (RFC 7662 §2.1), which call from a server with their
own credentials — no browser app may hold those, and CORS there would only let pages probe tokens.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "ALLOWED_HEADERS",
    "EXPOSED_HEADERS",
    "MAX_AGE",
    "CrossOrigin",
    "cross_origin",
    "cross_origin_of",
    "mark",
    "marked",
    "with_cors",
]

# Request headers beyond the CORS-safelisted ones a client sends: client authentication and bearer tokens
# (Authorization; never covered by a "*" wildcard, Fetch §3.2.3), JSON and form bodies of any media type the
# safelist leaves out (Content-Type), a DPoP proof (RFC 9449 §4.1), and the MCP protocol version header.
ALLOWED_HEADERS = "Authorization, Content-Type, DPoP, MCP-Protocol-Version"
# Response headers a script may read beyond the safelisted ones: the challenge of a 401 (RFC 6750 §3, RFC 9449 §7.1),
# the nonce to retry with (RFC 9449 §8) and when to try again after a 429 or 503 (RFC 9110 §10.2.3).
EXPOSED_HEADERS = "WWW-Authenticate, DPoP-Nonce, Retry-After"
# How long a browser may reuse a preflight's answer. Chromium caps it at two hours (Firefox at one day); the policy
# never changes at run time, so the longest any browser honours.
MAX_AGE = 7200

_SCOPE_KEY = "frontdesk.cross_origin"
_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", EXPOSED_HEADERS.encode("latin-1")),
]
_NAMES = {name for name, _ in _HEADERS}

R = TypeVar("R", bound=Route)


def with_cors(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """A response's headers plus the CORS headers of an actual (not preflight) answer it does not set itself."""
    present = {k.lower() for k, _ in headers} & _NAMES
    return headers + [h for h in _HEADERS if h[0] not in present]


def mark(scope: Scope) -> None:
    """Note on the request that its route is cross-origin, for answers built outside the route (a 500)."""
    scope[_SCOPE_KEY] = True


def marked(scope: Scope) -> bool:
    return bool(scope.get(_SCOPE_KEY))


class CrossOrigin:
    """A marked route's ASGI app: the preflight answered here, every other request passed on with the CORS headers
    added to its answer."""

    def __init__(self, app: ASGIApp, methods: Iterable[str]) -> None:
        self.app = app
        self.methods = ", ".join(sorted(set(methods) - {"OPTIONS"}))

    def preflight(self) -> Response:
        """Fetch §3.2.3: an ok status (204, no body) naming what the actual request may use. No
        ``Access-Control-Allow-Credentials``: a request with credentials is refused by the browser itself."""
        return Response(
            status_code=204,
            headers={
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Allow-Methods": self.methods,
                "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                "Access-Control-Max-Age": str(MAX_AGE),
                "Allow": f"{self.methods}, OPTIONS",
            },
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "OPTIONS":
            await self.preflight()(scope, receive, send)
            return
        mark(scope)

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_cors(list(message.get("headers", [])))
            await send(message)

        await self.app(scope, receive, send_with_cors)


def cross_origin(route: R) -> R:
    """Mark a route of the table cross-origin: its app wrapped in :class:`CrossOrigin`, and ``OPTIONS`` routed to it
    for the preflight."""
    if route.methods is None or "OPTIONS" in route.methods:
        raise ValueError(f"a cross-origin route declares its methods, and answers OPTIONS itself: {route.path!r}")
    route.app = CrossOrigin(route.app, route.methods)
    route.methods.add("OPTIONS")
    return route


def cross_origin_of(route: BaseRoute) -> CrossOrigin | None:
    """The CORS wrapper of a route marked with :func:`cross_origin`, or None."""
    app = getattr(route, "app", None)
    return app if isinstance(app, CrossOrigin) else None
