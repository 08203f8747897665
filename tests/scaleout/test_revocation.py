"""A revocation at one host is seen at the other's introspection within a second (issue 15 item 2: "a revocation is
seen everywhere within a second"), end to end: /revoke at A, /introspect at B, looked at until it says inactive.
The other host has introspected the token first, so whatever it keeps of it is warm. A refresh token replayed at
the other host after its rotation revokes its family at both (RFC 9700 §4.14.2)."""

from __future__ import annotations

import time

import httpx
import pytest

from .conftest import Pair
from .flows import App, active, client, code_at, redeem, refresh, token, tokens, within

pytestmark = [pytest.mark.subprocess, pytest.mark.postgres]

BOUND = 1.0  # seconds


async def _issued(http: httpx.AsyncClient, pair: Pair, app: App, person: str) -> dict[str, str]:
    code, verifier = await code_at(http, pair.a, app, person)
    issued = await tokens(http, pair.a, app, redeem(code, verifier))
    assert issued.get("refresh_token"), issued
    return issued


async def _revoke_at_a_seen_at_b(http: httpx.AsyncClient, pair: Pair, app: App, revoked: str, watched: str) -> float:
    """Revoke ``revoked`` at A once B says ``watched`` is active; how long until B says it is not."""
    for _ in range(3):
        assert await active(http, pair.b, app, watched)
    response = await http.post(f"{pair.a}/revoke", data={"token": revoked}, auth=app.auth)
    assert response.status_code == 200, response.text

    async def inactive_at_b() -> bool:
        return not await active(http, pair.b, app, watched)

    return await within(BOUND, inactive_at_b)


async def test_an_access_token_revoked_at_a_is_inactive_at_b_within_a_second(pair: Pair, app: App, person: str):
    async with client() as http:
        issued = await _issued(http, pair, app, person)
        took = await _revoke_at_a_seen_at_b(http, pair, app, issued["access_token"], issued["access_token"])
        assert await active(http, pair.b, app, issued["refresh_token"])  # revoking the token ends only the token
    print(f"access token revocation seen at B after {took:.3f} s")


async def test_a_refresh_token_revoked_at_a_ends_its_grant_at_b_within_a_second(pair: Pair, app: App, person: str):
    """Revoking the refresh token revokes its grant (RFC 7009 §2.1): the refresh token and the access token issued
    with it are both inactive at B within the bound, and the refresh token is refused at B's token endpoint."""
    async with client() as http:
        issued = await _issued(http, pair, app, person)
        took = await _revoke_at_a_seen_at_b(http, pair, app, issued["refresh_token"], issued["access_token"])
        assert not await active(http, pair.b, app, issued["refresh_token"])
        refused = await token(http, pair.b, app, refresh(issued["refresh_token"]))
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"] == "invalid_grant"
    print(f"grant revocation seen at B after {took:.3f} s")


async def test_a_refresh_token_replayed_at_b_after_its_rotation_at_a_revokes_the_family_at_both(
    pair: Pair, app: App, person: str
):
    """Rotated at A, the old refresh token replayed at B is invalid_grant, and the rotation's new tokens are then
    dead at both hosts: refresh refused, introspection inactive."""
    async with client() as http:
        issued = await _issued(http, pair, app, person)
        rotated = await tokens(http, pair.a, app, refresh(issued["refresh_token"]))
        for base in (pair.a, pair.b):
            assert await active(http, base, app, rotated["access_token"])
        replayed = await token(http, pair.b, app, refresh(issued["refresh_token"]))
        since = time.monotonic()
        assert replayed.status_code == 400, replayed.text
        assert replayed.json()["error"] == "invalid_grant"

        for base in (pair.a, pair.b):

            async def family_dead(base: str = base) -> bool:
                return not any([await active(http, base, app, rotated[t]) for t in ("access_token", "refresh_token")])

            await within(BOUND, family_dead, since)
        for base in (pair.b, pair.a):
            refused = await token(http, base, app, refresh(rotated["refresh_token"]))
            assert refused.status_code == 400, refused.text
            assert refused.json()["error"] == "invalid_grant"
