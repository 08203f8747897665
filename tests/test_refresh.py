"""The refresh_token grant over HTTP: rotation, reuse detection, client binding, narrowing and expiry."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import pytest

from conftest import Browser, Registered, basic, code_for
from frontdesk.config import Lifetimes

SCOPE = "openid profile offline_access calendar.read"


async def tokens_for(http: httpx.AsyncClient, browser: Browser, client: Registered, **extra: str) -> dict[str, Any]:
    """Run the code flow through the real forms and redeem the code with Basic authentication."""
    code, verifier = await code_for(browser, client, scope=SCOPE, **extra)
    response = await http.post(
        "/token",
        auth=basic(client),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": client.redirect_uri,
            "code_verifier": verifier,
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" in body
    return body


async def refresh(http: httpx.AsyncClient, client: Registered, token: str, **extra: str) -> httpx.Response:
    return await http.post(
        "/token", auth=basic(client), data={"grant_type": "refresh_token", "refresh_token": token, **extra}
    )


def claims_of(token: str) -> dict[str, Any]:
    """The payload of a JWT (the signature is checked by the introspection tests)."""
    segment = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


async def active(http: httpx.AsyncClient, client: Registered, token: str) -> bool:
    response = await http.post("/introspect", auth=basic(client), data={"token": token})
    assert response.status_code == 200, response.text
    return bool(response.json()["active"])


def assert_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error, response.text


async def test_refresh_rotates_the_refresh_token(http, browser, confidential):
    """A refresh returns a new refresh token different from the one presented."""
    first = await tokens_for(http, browser, confidential)
    response = await refresh(http, confidential, first["refresh_token"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["refresh_token"] != first["refresh_token"]
    assert body["access_token"] != first["access_token"]
    assert body["scope"] == SCOPE


async def test_reused_refresh_token_is_invalid_grant(http, browser, confidential):
    """Presenting an already rotated refresh token is refused with invalid_grant."""
    first = await tokens_for(http, browser, confidential)
    assert (await refresh(http, confidential, first["refresh_token"])).status_code == 200
    assert_error(await refresh(http, confidential, first["refresh_token"]), 400, "invalid_grant")


async def test_reuse_revokes_the_rotated_refresh_token(http, browser, confidential):
    """After RT1 is reused, RT2 from the rotation is refused with invalid_grant too (the family is revoked)."""
    first = await tokens_for(http, browser, confidential)
    rotated = (await refresh(http, confidential, first["refresh_token"])).json()
    assert_error(await refresh(http, confidential, first["refresh_token"]), 400, "invalid_grant")
    assert_error(await refresh(http, confidential, rotated["refresh_token"]), 400, "invalid_grant")


async def test_reuse_revokes_the_rotated_access_token(http, browser, confidential):
    """After RT1 is reused, the access token issued alongside RT2 introspects as inactive."""
    first = await tokens_for(http, browser, confidential)
    rotated = (await refresh(http, confidential, first["refresh_token"])).json()
    assert await active(http, confidential, rotated["access_token"])
    assert_error(await refresh(http, confidential, first["refresh_token"]), 400, "invalid_grant")
    assert not await active(http, confidential, rotated["access_token"])
    assert not await active(http, confidential, rotated["refresh_token"])


async def test_refresh_token_of_another_client_is_invalid_grant(http, browser, confidential, second):
    """C2 presenting C's refresh token is refused with invalid_grant, and C's token keeps working."""
    first = await tokens_for(http, browser, confidential)
    assert_error(await refresh(http, second, first["refresh_token"]), 400, "invalid_grant")
    assert (await refresh(http, confidential, first["refresh_token"])).status_code == 200


async def test_broader_scope_is_invalid_scope(http, browser, confidential):
    """A refresh asking for a scope outside the grant is refused with invalid_scope."""
    first = await tokens_for(http, browser, confidential)
    response = await refresh(http, confidential, first["refresh_token"], scope=SCOPE + " email")
    assert_error(response, 400, "invalid_scope")


async def test_narrower_scope_is_granted(http, browser, confidential):
    """A refresh asking for part of the grant's scope gets exactly that scope, in the response and the token."""
    first = await tokens_for(http, browser, confidential)
    response = await refresh(http, confidential, first["refresh_token"], scope="calendar.read")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "calendar.read"
    assert claims_of(body["access_token"])["scope"] == "calendar.read"
    assert "id_token" not in body


async def test_rotated_refresh_token_keeps_the_original_scope(http, browser, confidential):
    """After a narrowed refresh, the rotated refresh token still carries the grant's full scope."""
    first = await tokens_for(http, browser, confidential)
    narrowed = (await refresh(http, confidential, first["refresh_token"], scope="calendar.read")).json()
    response = await refresh(http, confidential, narrowed["refresh_token"])
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == SCOPE


async def test_resource_outside_the_grant_is_invalid_target(http, browser, confidential, resource_servers):
    """A refresh asking for a resource the grant did not include is refused with invalid_target."""
    first = await tokens_for(http, browser, confidential, resource="https://rs1.example")
    response = await refresh(http, confidential, first["refresh_token"], resource="https://rs2.example")
    assert_error(response, 400, "invalid_target")


async def test_flipped_character_is_invalid_grant(http, browser, confidential):
    """A refresh token with one character changed is refused with invalid_grant."""
    first = await tokens_for(http, browser, confidential)
    token = first["refresh_token"]
    middle = len(token) // 2
    flipped = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    assert_error(await refresh(http, confidential, flipped), 400, "invalid_grant")
    assert (await refresh(http, confidential, token)).status_code == 200


@pytest.mark.parametrize("lifetimes", [Lifetimes(refresh_idle=1)], ids=["refresh-idle-1s"])
async def test_idle_refresh_token_expires(http, browser, confidential, lifetimes, clock):
    """A refresh token left unused past the idle lifetime is refused with invalid_grant."""
    first = await tokens_for(http, browser, confidential)
    clock.advance(2.1)
    assert_error(await refresh(http, confidential, first["refresh_token"]), 400, "invalid_grant")


async def test_concurrent_refreshes_have_one_winner(http, browser, confidential):
    """Ten concurrent refreshes of one refresh token give exactly one 200; the rest are invalid_grant."""
    first = await tokens_for(http, browser, confidential)
    responses = await asyncio.gather(*(refresh(http, confidential, first["refresh_token"]) for _ in range(10)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [400] * 9, [r.text for r in responses]
    assert {r.json()["error"] for r in responses if r.status_code == 400} == {"invalid_grant"}


async def test_a_refreshed_id_token_keeps_who_and_when_and_drops_the_nonce(http, browser, confidential, clock):
    """OIDC-11 (Core §12.2): the ID token of a refresh has the same iss, sub and aud as the first, a new iat, the
    original auth_time (the person did not sign in again), and no nonce (it answers no authorization request)."""
    first = await tokens_for(http, browser, confidential, nonce="n-0S6_WzA2Mj")
    original = claims_of(first["id_token"])
    assert original["nonce"] == "n-0S6_WzA2Mj"
    clock.advance(60)
    response = await refresh(http, confidential, first["refresh_token"])
    assert response.status_code == 200, response.text
    renewed = claims_of(response.json()["id_token"])
    assert {k: renewed[k] for k in ("iss", "sub", "aud")} == {k: original[k] for k in ("iss", "sub", "aud")}
    assert renewed["iat"] >= original["iat"] + 60
    assert renewed["auth_time"] == original["auth_time"]
    assert "nonce" not in renewed
