"""The kit asking frontdesk's introspection endpoint (RFC 7662), for resource servers that must see a revocation
at once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from conftest import ISSUER, Clock, remember
from frontdesk.core import Frontdesk
from frontdesk.oauth.registration import register
from frontdesk.resource_server import AuthorizationServerUnavailable, IntrospectionValidator, InvalidToken

from .conftest import OTHER_RESOURCE, READ, RESOURCE, Caller


@pytest.fixture
def rs_secret(fd: Frontdesk, registered: None, secrets_seen: set[str]) -> str:
    """The resource server's own client, registered for the resource it serves (``--resource``)."""
    _, secret = register(
        fd,
        name="Notes MCP server",
        client_id="notes-rs",
        redirect_uris=[],
        grant_types=["client_credentials"],
        scope=READ,
        resources=[RESOURCE],
    )
    assert secret is not None
    remember(secrets_seen, secret)
    return secret


@pytest.fixture
async def introspecting(http: httpx.AsyncClient, rs_secret: str, clock: Clock) -> AsyncIterator[IntrospectionValidator]:
    async with IntrospectionValidator(ISSUER, RESOURCE, "notes-rs", rs_secret, http=http, clock=clock) as made:
        yield made


async def revoke(caller: Caller, token: str) -> None:
    response = await caller.http.post("/revoke", auth=(caller.client_id, caller.secret), data={"token": token})
    assert response.status_code == 200


async def test_an_active_token_is_accepted(introspecting: IntrospectionValidator, caller: Caller) -> None:
    verified = await introspecting.validate(await caller.token())
    assert (verified.client_id, verified.subject, verified.audience) == ("agent-backend", "agent-backend", (RESOURCE,))
    assert verified.scopes == {READ}


async def test_a_revocation_is_seen_at_once_without_the_cache(
    http: httpx.AsyncClient, rs_secret: str, caller: Caller
) -> None:
    token = await caller.token()
    async with IntrospectionValidator(ISSUER, RESOURCE, "notes-rs", rs_secret, http=http, cache_seconds=0) as fresh:
        await fresh.validate(token)
        await revoke(caller, token)
        with pytest.raises(InvalidToken, match="not active"):
            await fresh.validate(token)


async def test_a_revocation_is_seen_once_the_short_cache_lapses(
    introspecting: IntrospectionValidator, caller: Caller, clock: Clock
) -> None:
    """A positive answer is kept for a few seconds only; then the revoked token is refused."""
    token = await caller.token()
    await introspecting.validate(token)
    await revoke(caller, token)
    await introspecting.validate(token)  # within the cache: no second question
    clock.advance(6)
    with pytest.raises(InvalidToken, match="not active"):
        await introspecting.validate(token)


async def test_a_token_for_another_resource_is_refused(introspecting: IntrospectionValidator, caller: Caller) -> None:
    """RFC 7662 §4: frontdesk tells a resource server only about tokens addressed to what it serves."""
    with pytest.raises(InvalidToken):
        await introspecting.validate(await caller.token(resource=OTHER_RESOURCE))


async def test_wrong_resource_server_credentials_are_an_outage_not_a_bad_token(
    http: httpx.AsyncClient, rs_secret: str, caller: Caller
) -> None:
    async with IntrospectionValidator(ISSUER, RESOURCE, "notes-rs", rs_secret + "x", http=http) as wrong:
        with pytest.raises(AuthorizationServerUnavailable, match="401"):
            await wrong.validate(await caller.token())


def test_the_client_secret_stays_out_of_repr(rs_secret: str) -> None:
    validator = IntrospectionValidator(ISSUER, RESOURCE, "notes-rs", rs_secret, http=httpx.AsyncClient())
    assert rs_secret not in repr(validator)
