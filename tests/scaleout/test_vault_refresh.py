"""The vault refreshes a connection once for the whole deployment (DESIGN §6: single flight inside a process and a
row lock across processes, the row read again after the lock): calls through both hosts that find the same
connection's token expired at the same moment make exactly one refresh at the provider, and every call is answered
with its token. The provider is the fake of tests/vault, a real HTTP server in this process, which takes a second
over each refresh so that both hosts' calls arrive while it is at work."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, update

from conftest import remember
from frontdesk.storage.db import normalise_url
from frontdesk.storage.schema import VaultConnection
from vault.fake_provider import CLIENT_ID, CLIENT_SECRET, Fake

from .conftest import Pair
from .flows import client

pytestmark = [pytest.mark.subprocess, pytest.mark.postgres]

CALLS = 10  # proxied calls to each host at once, after expiry
USER = "u-scaleout"


def _remember_tokens(fake: Fake) -> None:
    remember(set(), *fake.access, *fake.refresh)


@pytest.fixture(scope="module")
def api_key(pair: Pair) -> str:
    """The platform's integration for the fake provider and its API key, both made at host A's command line."""
    remember(set(), CLIENT_SECRET)
    pair.cli(
        "vault", "integration", "add", "cal", "--provider", "fake", "--client-id", CLIENT_ID, "--client-secret-stdin",
        "--scope", "calendar.read", stdin=CLIENT_SECRET + "\n",
    )  # fmt: skip
    key = str(pair.cli("apikey", "create", "--name", "platform backend")["api_key"])
    remember(set(), key)
    return key


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _connect(http: httpx.AsyncClient, pair: Pair, key: str) -> str:
    """A person connects their calendar through host A, as a browser does; the connection's id."""
    link = await http.post(
        f"{pair.a}/vault/connect-sessions", json={"user": USER, "integration": "cal"}, headers=_bearer(key)
    )
    assert link.status_code == 201, link.text
    path = link.json()["connect_url"].removeprefix(pair.issuer)
    shown = await http.get(pair.a + path)
    assert shown.status_code == 200, shown.text[:500]
    action = shown.text.split('<form method="post" action="', 1)[1].split('"', 1)[0]
    csrf = shown.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    opened = await http.post(pair.a + action, data={"csrf": csrf})
    assert opened.status_code == 303, opened.text[:500]
    at_provider = await http.get(opened.headers["location"])
    assert at_provider.status_code == 302, at_provider.text
    back = await http.get(pair.a + at_provider.headers["location"].removeprefix(pair.issuer))
    assert back.status_code == 200, back.text[:500]
    listing = await http.get(f"{pair.a}/vault/connections", params={"user": USER}, headers=_bearer(key))
    assert listing.status_code == 200, listing.text
    (connection,) = listing.json()["connections"]
    return str(connection["id"])


@pytest.fixture(scope="module")
def database(pair: Pair) -> Iterator[Any]:
    engine = create_engine(normalise_url(pair.database_url))
    yield engine
    engine.dispose()


def _expire(database: Any, fake: Fake, connection_id: str) -> None:
    """The access token has run out, at the provider and in the vault's row (issued an hour and a second ago)."""
    at = int(time.time())
    with database.begin() as conn:
        conn.execute(
            update(VaultConnection)
            .where(VaultConnection.id == connection_id)
            .values(refreshed_at=at - 3601, expires_at=at - 1)
        )
    fake.expire_access_tokens()


async def test_calls_through_both_hosts_after_expiry_make_one_refresh(pair: Pair, api_key: str, database: Any):
    fake = pair.fake
    async with client() as http:
        connection_id = await _connect(http, pair, api_key)
        _remember_tokens(fake)
        for base in (pair.a, pair.b):  # each host has proxied for the connection before
            warm = await http.get(f"{base}/vault/proxy/{connection_id}/events", headers=_bearer(api_key))
            assert warm.status_code == 200, warm.text
        refreshes, dead, calls = fake.refresh_calls, fake.dead_refreshes, len(fake.api_calls)
        _expire(database, fake, connection_id)

        answers = await asyncio.gather(
            *(
                http.get(f"{base}/vault/proxy/{connection_id}/events?i={i}", headers=_bearer(api_key))
                for i in range(CALLS)
                for base in (pair.a, pair.b)
            )
        )
        _remember_tokens(fake)
        assert [a.status_code for a in answers] == [200] * 2 * CALLS, [a.text for a in answers if a.status_code != 200]
        assert fake.refresh_calls - refreshes == 1
        assert fake.dead_refreshes == dead  # no host refreshed with a refresh token the other had rotated away
        sent = {c["headers"]["authorization"] for c in fake.api_calls[calls:]}
        assert len(sent) == 1, "the calls went out with more than one access token"

        for base in (pair.a, pair.b):  # both go on with the refreshed token as it is
            after = await http.get(f"{base}/vault/proxy/{connection_id}/events", headers=_bearer(api_key))
            assert after.status_code == 200, after.text
        assert fake.refresh_calls - refreshes == 1
