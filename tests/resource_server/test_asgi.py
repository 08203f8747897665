"""The middleware and the dependency on the wire (RFC 6750 §3, RFC 9728, MCP 2025-11-25), with real frontdesk
tokens."""

from __future__ import annotations

from collections.abc import Collection

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from conftest import ISSUER
from frontdesk.resource_server import (
    BearerAuth,
    BearerChallenge,
    JWTValidator,
    ProtectedResource,
    RequireToken,
    access_token,
    challenge_handler,
    metadata_routes,
)

from .conftest import OTHER_RESOURCE, READ, WRITE, Caller

METADATA_URL = "https://tools.example/.well-known/oauth-protected-resource/mcp"


async def whoami(request: Request) -> JSONResponse:
    token = access_token(request)
    assert token is not None
    return JSONResponse({"client_id": token.client_id, "scopes": sorted(token.scopes)})


async def scopes_for(request: Request) -> Collection[str]:
    """Writing needs notes.write on top of notes.read."""
    return (READ, WRITE) if request.method == "POST" else (READ,)


def guarded(validator: JWTValidator, resource: ProtectedResource) -> httpx.AsyncClient:
    app = Starlette(routes=[Route("/mcp", whoami, methods=["GET", "POST"])])
    wrapped = BearerAuth(app, validator, resource, required_scopes=scopes_for)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=wrapped), base_url="https://tools.example")


@pytest.fixture
def api(validator: JWTValidator, resource: ProtectedResource) -> httpx.AsyncClient:
    return guarded(validator, resource)


async def test_no_token_is_401_with_resource_metadata_and_scope_but_no_error(api: httpx.AsyncClient) -> None:
    """RFC 6750 §3.1: a request without credentials gets no error code; RFC 9728 §5.1 names the metadata."""
    response = await api.get("/mcp")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == f'Bearer scope="{READ}", resource_metadata="{METADATA_URL}"'
    assert "error" not in response.json()
    assert response.headers["cache-control"] == "no-store"


async def test_a_bad_token_is_401_invalid_token(api: httpx.AsyncClient) -> None:
    response = await api.get("/mcp", headers={"Authorization": "Bearer not.a.token"})
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="invalid_token", error_description="')
    assert challenge.endswith(f'resource_metadata="{METADATA_URL}"')
    assert response.json()["error"] == "invalid_token"


async def test_a_token_for_another_resource_is_401(api: httpx.AsyncClient, caller: Caller) -> None:
    token = await caller.token(resource=OTHER_RESOURCE)
    response = await api.get("/mcp", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


async def test_a_valid_token_reaches_the_app_on_the_request(api: httpx.AsyncClient, caller: Caller) -> None:
    response = await api.get("/mcp", headers={"Authorization": f"Bearer {await caller.token()}"})
    assert response.status_code == 200
    assert response.json() == {"client_id": "agent-backend", "scopes": [READ]}


async def test_insufficient_scope_is_403_naming_every_scope_needed(api: httpx.AsyncClient, caller: Caller) -> None:
    """RFC 6750 §3.1, MCP step-up: ``scope`` lists all the scopes the request needs, not only the missing one."""
    response = await api.post("/mcp", headers={"Authorization": f"Bearer {await caller.token(READ)}"})
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", error_description="this request needs the scope notes.write", '
        f'scope="{READ} {WRITE}", resource_metadata="{METADATA_URL}"'
    )
    assert response.json()["error"] == "insufficient_scope"


async def test_the_wider_token_passes_the_step_up(api: httpx.AsyncClient, caller: Caller) -> None:
    response = await api.post("/mcp", headers={"Authorization": f"Bearer {await caller.token(f'{READ} {WRITE}')}"})
    assert response.status_code == 200


async def test_two_authorization_headers_are_400_invalid_request(api: httpx.AsyncClient, caller: Caller) -> None:
    token = await caller.token()
    headers = [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")]
    response = await api.get("/mcp", headers=headers)
    assert response.status_code == 400
    assert 'error="invalid_request"' in response.headers["www-authenticate"]


async def test_a_token_in_the_query_is_not_accepted(api: httpx.AsyncClient, caller: Caller) -> None:
    """OAuth 2.1 §5.1 (MCP §Token Requirements): the header only; a query token counts as no token."""
    response = await api.get("/mcp", params={"access_token": await caller.token()})
    assert response.status_code == 401
    assert "error=" not in response.headers["www-authenticate"]


async def test_another_scheme_counts_as_no_token(api: httpx.AsyncClient) -> None:
    response = await api.get("/mcp", headers={"Authorization": "Basic YTpi"})
    assert response.status_code == 401
    assert "error=" not in response.headers["www-authenticate"]


@pytest.mark.parametrize("path", ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"])
async def test_metadata_is_served_without_a_token(api: httpx.AsyncClient, path: str) -> None:
    """RFC 9728 §3: the path-suffixed URL and, for MCP clients' fallback, the root one."""
    response = await api.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.json() == {
        "resource": "https://tools.example/mcp",
        "authorization_servers": [ISSUER],
        "bearer_methods_supported": ["header"],
        "scopes_supported": [READ, WRITE],
        "resource_name": "Notes",
    }


async def test_an_unreachable_authorization_server_is_503_not_a_refusal(
    http: httpx.AsyncClient, resource: ProtectedResource, caller: Caller
) -> None:
    """Keys that cannot be fetched say nothing about the token: no challenge that would send the client to sign in
    again."""
    async with JWTValidator(ISSUER, resource.resource, http=http, jwks_uri=f"{ISSUER}/no-such-jwks") as broken:
        response = await guarded(broken, resource).get(
            "/mcp", headers={"Authorization": f"Bearer {await caller.token()}"}
        )
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"


def dependency_app(validator: JWTValidator, resource: ProtectedResource) -> httpx.AsyncClient:
    require = RequireToken(validator, resource, [READ, WRITE])

    async def write(request: Request) -> JSONResponse:
        token = await require(request)
        return JSONResponse({"subject": token.subject})

    app = Starlette(routes=[Route("/notes", write, methods=["POST"]), *metadata_routes(resource)])
    app.add_exception_handler(BearerChallenge, challenge_handler)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://tools.example")


async def test_the_dependency_accepts_a_token_with_its_scopes(
    validator: JWTValidator, resource: ProtectedResource, caller: Caller
) -> None:
    api = dependency_app(validator, resource)
    token = await caller.token(f"{READ} {WRITE}")
    response = await api.post("/notes", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == {"subject": "agent-backend"}


async def test_the_dependency_answers_the_step_up_challenge(
    validator: JWTValidator, resource: ProtectedResource, caller: Caller
) -> None:
    api = dependency_app(validator, resource)
    response = await api.post("/notes", headers={"Authorization": f"Bearer {await caller.token(READ)}"})
    assert response.status_code == 403
    assert f'scope="{READ} {WRITE}"' in response.headers["www-authenticate"]
    assert response.json()["error"] == "insufficient_scope"


async def test_the_dependency_without_a_token_is_401(validator: JWTValidator, resource: ProtectedResource) -> None:
    api = dependency_app(validator, resource)
    response = await api.post("/notes")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == f'Bearer scope="{READ} {WRITE}", resource_metadata="{METADATA_URL}"'
    assert (await api.get("/.well-known/oauth-protected-resource/mcp")).json()["resource"] == resource.resource
