"""CORS (the Fetch standard, §3.2) for browser-based clients on /token, /register (and client configuration),
/revoke, /userinfo, both discovery documents and the JWKS: any origin, never credentials, a 204 preflight, and the
headers on errors too; /authorize, the pages and introspection stay without. Every wire check runs on both dispatch
paths: the app as ``frontdesk serve`` runs it (hot routes called directly from asgi.py) and the plain Starlette
router."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from conftest import ISSUER, Registered
from frontdesk.asgi import Served, served
from frontdesk.core import Frontdesk
from frontdesk.web import create_app, resource, token
from frontdesk.web.cors import cross_origin

ORIGIN = "https://mcp-client.example"
ALLOW_HEADERS = "Authorization, Content-Type, DPoP, MCP-Protocol-Version"
EXPOSE_HEADERS = "WWW-Authenticate, DPoP-Nonce, Retry-After"
CROSS_ORIGIN = {
    "/token": "POST",
    "/revoke": "POST",
    "/userinfo": "GET",
    "/jwks": "GET",
    "/.well-known/openid-configuration": "GET",
    "/.well-known/oauth-authorization-server": "GET",
    "/register": "POST",
    "/register/some-client": "PUT",
}
HOT = ("/token", "/jwks", "/.well-known/openid-configuration", "/.well-known/oauth-authorization-server")


@pytest.fixture(params=["served", "router"])
async def app(request: pytest.FixtureRequest, fd: Frontdesk) -> AsyncIterator[Any]:
    """The app on each dispatch path: ``served`` calls the hot routes directly, ``router`` takes Starlette's stack."""
    made: Any = served(fd) if request.param == "served" else create_app(fd)
    yield made
    starlette_app = made.app if isinstance(made, Served) else made
    await starlette_app.state.vault_http.aclose()


def _client(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url=ISSUER, headers={"Origin": ORIGIN})


def _basic(client: Registered, secret: str | None = None) -> dict[str, str]:
    raw = f"{client.client_id}:{secret or client.secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def assert_cors(response: httpx.Response) -> None:
    assert response.headers.get("access-control-allow-origin") == "*", (response.request.url, response.headers)
    assert response.headers.get("access-control-expose-headers") == EXPOSE_HEADERS
    assert "access-control-allow-credentials" not in response.headers


def assert_no_cors(response: httpx.Response) -> None:
    assert not [name for name in response.headers if name.startswith("access-control-")], response.headers


def _preflight(method: str, headers: str = "authorization, content-type, dpop, mcp-protocol-version") -> dict[str, str]:
    return {"Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers}


@pytest.mark.parametrize(("path", "method"), CROSS_ORIGIN.items())
async def test_preflight_is_204_with_the_policy(app, path, method):
    """OPTIONS with the preflight headers → 204, no body, any origin, the route's methods, the four request headers
    and a max age; never credentials."""
    async with _client(app) as client:
        response = await client.options(path, headers=_preflight(method))
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert response.headers["access-control-allow-origin"] == "*"
    assert method in response.headers["access-control-allow-methods"].split(", ")
    assert "OPTIONS" not in response.headers["access-control-allow-methods"]
    assert response.headers["access-control-allow-headers"] == ALLOW_HEADERS
    assert int(response.headers["access-control-max-age"]) > 0
    assert "access-control-allow-credentials" not in response.headers


async def test_preflight_names_only_the_routes_methods(app):
    """The token endpoint takes POST alone, discovery GET (and the HEAD that comes with it)."""
    async with _client(app) as client:
        token_methods = (await client.options("/token", headers=_preflight("POST"))).headers
        jwks_methods = (await client.options("/jwks", headers=_preflight("GET"))).headers
    assert token_methods["access-control-allow-methods"] == "POST"
    assert jwks_methods["access-control-allow-methods"] == "GET, HEAD"


@pytest.mark.parametrize(
    "path", ["/jwks", "/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"]
)
async def test_discovery_and_keys_answer_any_origin(app, path):
    """A simple cross-origin GET of discovery or the JWKS is readable by the page: ``*``, no credentials."""
    async with _client(app) as client:
        response = await client.get(path)
    assert response.status_code == 200
    assert_cors(response)


async def test_token_success_carries_cors(app, confidential):
    """A successful token response is readable by a browser-based client."""
    async with _client(app) as client:
        response = await client.post(
            "/token", data={"grant_type": "client_credentials", "scope": "calendar.read"}, headers=_basic(confidential)
        )
    assert response.status_code == 200, response.text
    assert_cors(response)


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"grant_type": "password", "username": "a", "password": "b"}, 400, "unsupported_grant_type"),
        ({"grant_type": "authorization_code", "code": "nope", "code_verifier": "x" * 43}, 400, "invalid_grant"),
        ({"grant_type": "client_credentials", "scope": "admin"}, 400, "invalid_scope"),
    ],
)
async def test_token_errors_carry_cors(app, confidential, form, status, error):
    """RFC 6749 §5.2 errors carry the CORS headers: a browser-based client must be able to read the OAuth error."""
    async with _client(app) as client:
        response = await client.post("/token", data=form, headers=_basic(confidential))
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert_cors(response)


async def test_token_invalid_client_exposes_its_challenge(app, confidential):
    """A 401 invalid_client carries CORS and lets the script read ``WWW-Authenticate``."""
    async with _client(app) as client:
        response = await client.post(
            "/token", data={"grant_type": "client_credentials"}, headers=_basic(confidential, "wrong-secret")
        )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "www-authenticate" in response.headers
    assert_cors(response)
    assert "WWW-Authenticate" in response.headers["access-control-expose-headers"].split(", ")


async def test_token_body_that_cannot_be_read_carries_cors(app):
    """An unreadable body (JSON where a form is due) is an invalid_request a browser can read."""
    async with _client(app) as client:
        response = await client.post("/token", json={"grant_type": "client_credentials"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert_cors(response)


async def test_revoke_answers_carry_cors(app, confidential):
    """Revocation (RFC 7009): its 200 and its errors both carry CORS."""
    async with _client(app) as client:
        done = await client.post("/revoke", data={"token": "not-a-token"}, headers=_basic(confidential))
        refused = await client.post("/revoke", data={}, headers=_basic(confidential))
    assert done.status_code == 200
    assert_cors(done)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_request"
    assert_cors(refused)


async def test_registration_errors_carry_cors(app):
    """RFC 7591 §3.2.2: a registration refused is an error the browser-based client can read, and so is the 401 of
    client configuration without a registration access token (RFC 7592 §2)."""
    async with _client(app) as client:
        refused = await client.post("/register", json={"redirect_uris": ["http://evil.example/cb"]})
        unknown = await client.get("/register/some-client")
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_redirect_uri"
    assert_cors(refused)
    assert unknown.status_code == 401
    assert_cors(unknown)


async def test_userinfo_challenge_carries_cors(app):
    """OpenID Connect Core §5.3.1: UserInfo supports CORS; its 401 challenge is readable."""
    async with _client(app) as client:
        bare = await client.get("/userinfo")
        bad = await client.get("/userinfo", headers={"Authorization": "Bearer not-a-token"})
    for response in (bare, bad):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert_cors(response)


async def test_server_error_carries_cors(app, confidential, monkeypatch):
    """Even an unexpected failure (a 500 server_error, answered outside the route) is readable cross-origin."""

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(token, "_issue", broken)
    monkeypatch.setattr(resource, "revoke", broken)
    async with _client(app) as client:
        minted = await client.post("/token", data={"grant_type": "client_credentials"}, headers=_basic(confidential))
        revoked = await client.post("/revoke", data={"token": "not-a-token"}, headers=_basic(confidential))
    for response in (minted, revoked):
        assert response.status_code == 500
        assert response.json()["error"] == "server_error"
        assert_cors(response)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/authorize?client_id=x&response_type=code"),
        ("OPTIONS", "/authorize"),
        ("POST", "/introspect"),
        ("OPTIONS", "/introspect"),
        ("GET", "/account"),
        ("GET", "/interaction/nope"),
        ("OPTIONS", "/device_authorization"),
    ],
)
async def test_navigations_and_introspection_get_no_cors(app, method, path):
    """/authorize and the pages stay navigations (RFC 9700 §2.6, BCP-39) and introspection is for resource
    servers: no CORS header, and no preflight answer (an OPTIONS there is still a 405), even with an Origin."""
    async with _client(app) as client:
        response = await client.request(method, path, headers=_preflight("POST") if method == "OPTIONS" else {})
    assert_no_cors(response)
    if method == "OPTIONS":
        assert response.status_code == 405
    # The control: the same client gets CORS from a marked route, so its absence here is the route's doing.
    async with _client(app) as client:
        assert_cors(await client.get("/jwks"))


async def test_hot_routes_keep_their_fast_path_with_cors(fd, confidential, monkeypatch):
    """The hot cross-origin routes are still called directly from asgi.py (not through the router), and that path
    adds the very headers, in the same order, as the router's."""
    running = served(fd)
    assert running.cross_origin == frozenset(HOT)
    taken: list[str] = []
    direct_call = Served._direct

    async def spy(self: Served, endpoint: Any, scope: Any, receive: Any, send: Any, pending: Any) -> None:
        taken.append(scope["path"])
        await direct_call(self, endpoint, scope, receive, send, pending)

    monkeypatch.setattr(Served, "_direct", spy)
    answers = []
    for app in (running, create_app(fd)):
        async with _client(app) as client:
            answers.append(
                [
                    await client.post(
                        "/token", data={"grant_type": "client_credentials"}, headers=_basic(confidential)
                    ),
                    await client.post("/token", data={"grant_type": "nope"}, headers=_basic(confidential)),
                    await client.get("/jwks"),
                    await client.get("/.well-known/openid-configuration"),
                    await client.get("/.well-known/oauth-authorization-server"),
                ]
            )
        await (app.app if isinstance(app, Served) else app).state.vault_http.aclose()
    assert taken == [
        "/token",
        "/token",
        "/jwks",
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ]
    for direct, routed in zip(*answers, strict=True):
        assert_cors(direct)
        access = [(k, v) for k, v in direct.headers.multi_items() if k.startswith("access-control-")]
        assert access == [(k, v) for k, v in routed.headers.multi_items() if k.startswith("access-control-")]
        assert [k for k, _ in direct.headers.multi_items()] == [k for k, _ in routed.headers.multi_items()]


async def test_introspection_stays_hot_and_without_cors(fd):
    """Introspection keeps its fast path and gets no CORS header on it."""
    running = served(fd)
    assert ("POST", "/introspect") in running.direct
    assert "/introspect" not in running.cross_origin
    async with _client(running) as client:
        assert_no_cors(await client.post("/introspect", data={"token": "x"}))
    await running.app.state.vault_http.aclose()


async def _ok(request: Request) -> Response:
    return Response("ok")


class AnyMethod(HTTPEndpoint):
    """A class endpoint: its route declares no methods and answers whichever the class defines."""

    async def get(self, request: Request) -> Response:
        return Response("ok")


def test_cross_origin_needs_declared_methods():
    """A mark on a route that answers any method, or OPTIONS already, would hide the preflight: refused at start."""
    with pytest.raises(ValueError, match="cross-origin"):
        cross_origin(Route("/x", AnyMethod))
    with pytest.raises(ValueError, match="cross-origin"):
        cross_origin(Route("/x", _ok, methods=["GET", "OPTIONS"]))
