"""A frontdesk (the ``http`` fixture: the production app, in process) with a registered protected resource and
a client that gets real access tokens for it by client_credentials, and the kit pointed at that frontdesk."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from conftest import ISSUER, remember
from frontdesk.core import Frontdesk
from frontdesk.oauth import resources
from frontdesk.oauth.registration import register
from frontdesk.resource_server import JWTValidator, ProtectedResource

RESOURCE = "https://tools.example/mcp"
OTHER_RESOURCE = "https://other.example/mcp"
READ, WRITE = "notes.read", "notes.write"


@dataclass(frozen=True)
class Caller:
    """A confidential client that asks frontdesk for tokens (client_credentials with ``resource``)."""

    http: httpx.AsyncClient
    client_id: str
    secret: str
    seen: set[str]

    async def token(self, scope: str = READ, resource: str = RESOURCE) -> str:
        response = await self.http.post(
            "/token",
            auth=(self.client_id, self.secret),
            data={"grant_type": "client_credentials", "scope": scope, "resource": resource},
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        remember(self.seen, token)
        return token


@pytest.fixture
def registered(fd: Frontdesk) -> None:
    """The resources as the operator registers them (``frontdesk resource create URI --name … --scope …``)."""
    resources.create(fd, RESOURCE, "Notes (MCP)", f"{READ} {WRITE}")
    resources.create(fd, OTHER_RESOURCE, "Another MCP server", READ)


@pytest.fixture
def caller(fd: Frontdesk, http: httpx.AsyncClient, registered: None, secrets_seen: set[str]) -> Caller:
    client, secret = register(
        fd,
        name="Agent backend",
        client_id="agent-backend",
        redirect_uris=[],
        grant_types=["client_credentials"],
        scope=f"{READ} {WRITE}",
    )
    assert secret is not None
    remember(secrets_seen, secret)
    return Caller(http, client.client_id, secret, secrets_seen)


@pytest.fixture
def resource() -> ProtectedResource:
    return ProtectedResource(RESOURCE, [ISSUER], [READ, WRITE], resource_name="Notes")


@pytest.fixture
async def validator(http: httpx.AsyncClient, registered: None) -> AsyncIterator[JWTValidator]:
    """The kit's JWT validator, discovering keys from the frontdesk under test over its HTTP client."""
    async with JWTValidator(ISSUER, RESOURCE, http=http) as made:
        yield made


def jwks_fetches(http: httpx.AsyncClient) -> list[str]:
    """Records every request the client makes to ``/jwks`` (appended as they happen)."""
    seen: list[str] = []

    async def hook(request: httpx.Request) -> None:
        if request.url.path == "/jwks":
            seen.append(str(request.url))

    http.event_hooks["request"].append(hook)
    return seen
