"""Protected resource metadata (RFC 9728) and bearer challenges (RFC 6750 §3): one black-box test (or a few) per item
of the agents checklist's section 4 (/work/shared/reference/agents-checklist.md, AG-PRM-01…06), named after its ID.
The resource server is a small Starlette app guarded by ``frontdesk.resource_server``, validating real access tokens
that the production frontdesk (the ``http`` fixture) issues, on both databases; plus unit tests of the kit's scope
hierarchy (AG-PRM-05)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from conftest import ISSUER, remember
from frontdesk.core import Frontdesk
from frontdesk.oauth import resources
from frontdesk.oauth.registration import register
from frontdesk.resource_server import (
    BearerAuth,
    IntrospectionValidator,
    JWTValidator,
    ProtectedResource,
    TokenValidator,
    missing_scopes,
    satisfies,
)

HOST = "https://files.example"
RESOURCE = f"{HOST}/mcp"
METADATA_URL = f"{HOST}/.well-known/oauth-protected-resource/mcp"
READ, WRITE, ALL = "files:read", "files:write", "files:*"


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def needs(request: Request) -> Collection[str]:
    """Reading needs files:read; writing (POST) needs files:read and files:write."""
    return (READ, WRITE) if request.method == "POST" else (READ,)


def served(validator: TokenValidator, resource: ProtectedResource) -> httpx.AsyncClient:
    app = Starlette(routes=[Route("/mcp", hello, methods=["GET", "POST"]), Route("/", hello)])
    guarded = BearerAuth(app, validator, resource, required_scopes=needs)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=guarded), base_url=HOST)


@pytest.fixture
def resource() -> ProtectedResource:
    return ProtectedResource(RESOURCE, [ISSUER], [READ, WRITE, ALL], resource_name="Files")


@pytest.fixture
async def validator(http: httpx.AsyncClient, fd: Frontdesk) -> AsyncIterator[JWTValidator]:
    resources.create(fd, RESOURCE, "Files (MCP)", f"{READ} {WRITE} {ALL}")
    async with JWTValidator(ISSUER, RESOURCE, http=http) as made:
        yield made


@pytest.fixture
def api(validator: JWTValidator, resource: ProtectedResource) -> httpx.AsyncClient:
    return served(validator, resource)


@pytest.fixture
def token_for(fd: Frontdesk, http: httpx.AsyncClient, validator: JWTValidator, secrets_seen: set[str]) -> Any:
    """Real access tokens for the resource, by client_credentials with ``resource`` (RFC 8707)."""
    client, secret = register(
        fd,
        name="Files agent",
        client_id="files-agent",
        redirect_uris=[],
        grant_types=["client_credentials"],
        scope=f"{READ} {WRITE} {ALL}",
    )
    assert secret is not None
    remember(secrets_seen, secret)

    async def token(scope: str) -> str:
        response = await http.post(
            "/token",
            auth=(client.client_id, secret),
            data={"grant_type": "client_credentials", "scope": scope, "resource": RESOURCE},
        )
        assert response.status_code == 200, response.text
        value: str = response.json()["access_token"]
        remember(secrets_seen, value)
        return value

    token.secret = secret  # type: ignore[attr-defined]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def challenge_params(header: str) -> list[str]:
    """The attribute names of a ``Bearer`` challenge, in order."""
    assert header.startswith("Bearer ")
    return [part.split("=", 1)[0].strip() for part in header[len("Bearer ") :].split('", ') if "=" in part]


# --- AG-PRM-01 ----------------------------------------------------------------------------------------------------


async def test_AG_PRM_01_metadata_at_the_path_and_root_forms(api):
    """RFC 9728 §3: the well-known suffix goes between host and path; the root form is served too (MCP)."""
    for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
        response = await api.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert all(value not in (None, "", [], {}) for value in body.values())  # empty parameters are omitted


async def test_AG_PRM_01_a_root_resource_is_at_the_bare_well_known(http):
    root = ProtectedResource(HOST, [ISSUER])
    async with JWTValidator(ISSUER, HOST, http=http) as validator:
        response = await served(validator, root).get("/.well-known/oauth-protected-resource")
    assert response.status_code == 200
    assert response.json()["resource"] == HOST
    assert "scopes_supported" not in response.json()


# --- AG-PRM-02 ----------------------------------------------------------------------------------------------------


async def test_AG_PRM_02_resource_is_byte_equal_to_the_identifier(api):
    """RFC 9728 §3.3: ``resource`` is identical to the identifier the URL was built from; the issuer is named."""
    body = (await api.get("/.well-known/oauth-protected-resource/mcp")).json()
    assert body["resource"].encode() == RESOURCE.encode()
    assert body["authorization_servers"] == [ISSUER]
    assert body["scopes_supported"] == [READ, WRITE, ALL]


# --- AG-PRM-03 ----------------------------------------------------------------------------------------------------


async def test_AG_PRM_03_no_credentials_is_a_challenge_without_error(api):
    """RFC 6750 §3.1: a request without credentials gets no error code; RFC 9728 §5.1 names the metadata."""
    response = await api.get("/mcp")
    assert response.status_code == 401
    header = response.headers["www-authenticate"]
    assert "error=" not in header
    assert f'resource_metadata="{METADATA_URL}"' in header
    assert f'scope="{READ}"' in header


# --- AG-PRM-04 ----------------------------------------------------------------------------------------------------


async def test_AG_PRM_04_an_expired_token_is_401_invalid_token(api, token_for, clock, fd):
    """A token minted two hours ago (frontdesk's clock set back) has expired by the resource's clock."""
    clock.advance(-2 * 3600)
    token = await token_for(READ)
    clock.advance(2 * 3600)
    response = await api.get("/mcp", headers=bearer(token))
    assert response.status_code == 401
    header = response.headers["www-authenticate"]
    assert 'error="invalid_token"' in header
    names = challenge_params(header)
    assert len(names) == len(set(names))  # each attribute once
    description = header.split('error_description="', 1)[1].split('"', 1)[0]
    assert "\\" not in description


async def test_AG_PRM_04_a_revoked_token_is_401_invalid_token(http, fd, resource, token_for, secrets_seen):
    """RFC 6750 §3.1: a revoked token is invalid_token, where revocation is seen at once (introspection)."""
    token = await token_for(READ)
    _, rs_secret = register(
        fd, name="Files server", client_id="files-rs", redirect_uris=[], grant_types=["client_credentials"],
        scope=READ, resources=[RESOURCE],
    )  # fmt: skip
    assert rs_secret is not None
    remember(secrets_seen, rs_secret)
    async with IntrospectionValidator(ISSUER, RESOURCE, "files-rs", rs_secret, http=http, cache_seconds=0) as checker:
        api = served(checker, resource)
        assert (await api.get("/mcp", headers=bearer(token))).status_code == 200
        revoked = await http.post("/revoke", auth=("files-agent", token_for.secret), data={"token": token})
        assert revoked.status_code == 200, revoked.text
        response = await api.get("/mcp", headers=bearer(token))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_AG_PRM_04_a_malformed_request_is_400_invalid_request(api, token_for):
    """RFC 6750 §3.1: two Authorization headers are a malformed request."""
    token = await token_for(READ)
    response = await api.get("/mcp", headers=[("Authorization", f"Bearer {token}"), ("Authorization", "Bearer x")])
    assert response.status_code == 400
    assert 'error="invalid_request"' in response.headers["www-authenticate"]


async def test_AG_PRM_04_a_bad_token_is_401_invalid_token(api):
    response = await api.get("/mcp", headers=bearer("not-a-token"))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


# --- AG-PRM-05 ----------------------------------------------------------------------------------------------------


async def test_AG_PRM_05_read_token_on_write_is_403_with_every_scope_needed(api, token_for):
    """RFC 6750 §3.1, MCP step-up: 403 insufficient_scope, ``scope`` = all the operation needs, resource_metadata."""
    response = await api.post("/mcp", headers=bearer(await token_for(READ)))
    assert response.status_code == 403
    header = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in header
    assert f'scope="{READ} {WRITE}"' in header
    assert f'resource_metadata="{METADATA_URL}"' in header


async def test_AG_PRM_05_a_wildcard_scope_passes(api, token_for):
    """MCP 2026-07-28: a broader scope satisfies a narrower one; ``files:*`` reads and writes."""
    token = await token_for(ALL)
    assert (await api.get("/mcp", headers=bearer(token))).status_code == 200
    assert (await api.post("/mcp", headers=bearer(token))).status_code == 200


@pytest.mark.parametrize(
    ("granted", "required", "held"),
    [
        ("files:*", "files:read", True),
        ("files:*", "files:read:own", True),
        ("files:*", "files:*", True),
        ("files:read", "files:read", True),
        ("files:*", "files:", False),
        ("files:*", "files", False),
        ("files:*", "filesystem:read", False),
        ("files:*", "mail:read", False),
        ("*", "files:read", False),
        (":*", "files:read", False),
        ("files:read", "files:*", False),
        ("files:read", "files:write", False),
        ("files", "files:read", False),
    ],
)
def test_AG_PRM_05_scope_hierarchy(granted, required, held):
    """Only a named ``prefix:*`` covers ``prefix:…``; everything else compares as a string (RFC 6749 §3.3)."""
    assert satisfies(granted, required) is held
    assert (missing_scopes([granted], [required]) == ()) is held


def test_AG_PRM_05_missing_scopes_keeps_the_order_required():
    assert missing_scopes(["mail:*"], ["files:read", "mail:send", "files:write"]) == ("files:read", "files:write")


# --- AG-PRM-06 ----------------------------------------------------------------------------------------------------


async def test_AG_PRM_06_a_switched_authorization_server_is_announced(http, fd, token_for):
    """RFC 9728 §5.2: after the resource moves to another authorization server, a token of the old one gets a
    401 whose challenge points at the metadata, and the metadata names the new server."""
    new_issuer = "https://new-as.example"
    token = await token_for(READ)
    keys = (await http.get("/jwks")).json()  # the same keys, so only the issuer tells the servers apart
    moved = ProtectedResource(RESOURCE, [new_issuer], [READ, WRITE])
    async with JWTValidator(new_issuer, RESOURCE, jwks=keys) as validator:
        api = served(validator, moved)
        refused = await api.get("/mcp", headers=bearer(token))
        assert refused.status_code == 401
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]
        assert f'resource_metadata="{METADATA_URL}"' in refused.headers["www-authenticate"]
        metadata = (await api.get("/.well-known/oauth-protected-resource/mcp")).json()
    assert metadata["authorization_servers"] == [new_issuer]
