"""Issue 11, item 1: a provider whose access tokens live no longer than the refresh margin (30 s tokens against the
default 300 s margin). Each token falls due at half its lifetime at the latest, not the moment it is issued; the calls
that find its refresh in flight wait for it and take its result, in one process and across two; the waiting holds
no worker thread; and the rotated refresh token is kept."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import anyio.to_thread
import httpx
import pytest
from sqlalchemy import select, update
from starlette.requests import Request
from starlette.responses import Response

from conftest import ISSUER
from frontdesk.asgi import open_frontdesk
from frontdesk.core import Frontdesk
from frontdesk.storage import audit
from frontdesk.storage.schema import VaultConnection
from frontdesk.vault import store
from frontdesk.vault.catalog import load_catalog
from frontdesk.vault.refresh import Refresher, due, margin
from frontdesk.vault.service import Vault
from frontdesk.web import create_app

from .conftest import bearer, connected, remember_tokens
from .fake_provider import Fake

TOKEN_LIFETIME = 30  # seconds: shorter than the default margin
STORM = 30  # proxied calls at once after expiry
REFRESH_DELAY = 1.0  # seconds the provider takes to refresh: the window in which the other calls arrive
ANSWERED_WITHIN = 15.0  # "within a few seconds", generously: 30 refreshes in a row took past the callers' 20 s


@dataclass
class SlowFake(Fake):
    """The fake provider, telling when a refresh has reached its token endpoint."""

    refreshing: threading.Event = field(default_factory=threading.Event)

    async def token(self, request: Request) -> Response:
        if b"grant_type=refresh_token" in await request.body():
            self.refreshing.set()
        return await super().token(request)


@pytest.fixture
def fake_class() -> type[Fake]:
    return SlowFake


@pytest.fixture
def fake_options() -> dict[str, Any]:
    return {"expires_in": TOKEN_LIFETIME, "refresh_delay": REFRESH_DELAY}


@pytest.fixture
def provider_file_options() -> dict[str, str]:
    """The catalog's default margin (300 s), which the fake's 30 s tokens never outlive."""
    return {"refresh_margin": "300"}


@pytest.fixture
async def connection_id(http: httpx.AsyncClient, api_key: str, fake: SlowFake, secrets_seen: set[str]) -> str:
    found = await connected(http, api_key)
    remember_tokens(fake, secrets_seen)
    return str(found["id"])


def _expire(vault: Vault, fake: Fake, connection_id: str) -> None:
    """The 30 s token has run out, at the provider and by the vault's clock (as it was issued: 31 s ago)."""
    at = int(time.time())
    with vault.engine.begin() as conn:
        conn.execute(
            update(VaultConnection)
            .where(VaultConnection.id == connection_id)
            .values(refreshed_at=at - TOKEN_LIFETIME - 1, expires_at=at - 1)
        )
    fake.expire_access_tokens()


def _stored_refresh_token(vault: Vault, connection_id: str) -> str | None:
    with vault.engine.begin() as conn:
        row = conn.execute(select(VaultConnection).where(VaultConnection.id == connection_id)).one()
    return store.credentials_of(vault.keys, row).refresh_token


async def _storm(clients: list[httpx.AsyncClient], key: str, connection_id: str) -> tuple[list[httpx.Response], float]:
    """``STORM`` proxied calls at once, shared out over ``clients``; their answers, and how long the last took."""
    started = time.monotonic()
    calls = [
        clients[i % len(clients)].get(f"/vault/proxy/{connection_id}/events?i={i}", headers=bearer(key))
        for i in range(STORM)
    ]
    answers = await asyncio.gather(*calls)
    return list(answers), time.monotonic() - started


def _count_refreshes(refresher: Refresher, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each refresh transaction (row lock, re-read, provider call) this process's refresher opens."""
    opened: list[str] = []
    locked = refresher._refresh

    def counted(connection_id: str, *args: Any, **kwargs: Any) -> Any:
        opened.append(connection_id)
        return locked(connection_id, *args, **kwargs)

    monkeypatch.setattr(refresher, "_refresh", counted)
    return opened


# --- when a token falls due ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lifetime", "provider_margin", "expected"),
    [(30, 300, 15), (300, 300, 150), (3600, 300, 300), (3600, 60, 60), (1, 300, 0), (0, 300, 0)],
)
def test_the_margin_is_at_most_half_the_lifetime_the_provider_gave(
    lifetime: int, provider_margin: int, expected: int
) -> None:
    provider = dataclasses.replace(load_catalog([]).get("google"), refresh_margin=provider_margin)
    row = SimpleNamespace(refreshed_at=1_000, expires_at=1_000 + lifetime)
    assert margin(row, provider) == expected
    assert not due(row, provider, row.expires_at - expected - 1)
    assert due(row, provider, row.expires_at - expected)


def test_a_row_without_an_issue_time_keeps_the_providers_margin() -> None:
    provider = load_catalog([]).get("google")
    assert margin(SimpleNamespace(refreshed_at=None, expires_at=5_000), provider) == provider.refresh_margin


async def test_a_token_shorter_than_the_margin_is_not_refreshed_at_every_call(
    http: httpx.AsyncClient, api_key: str, fake: SlowFake, connection_id: str
) -> None:
    """A fresh 30 s token is used as it is: it falls due 15 s before its expiry, not the moment it is issued."""
    for _ in range(3):
        response = await http.get(f"/vault/proxy/{connection_id}/events", headers=bearer(api_key))
        assert response.status_code == 200, response.text
    assert fake.refresh_calls == 0


# --- one process ---------------------------------------------------------------------------------------------------


async def test_thirty_calls_after_expiry_make_one_refresh(
    http: httpx.AsyncClient,
    api_key: str,
    fake: SlowFake,
    vault: Vault,
    connection_id: str,
    secrets_seen: set[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One refresh reaches the provider, in one database transaction; all thirty calls answer 200 with its token;
    the rotated refresh token is the one stored; and the new token is not due again at the next call."""
    first_refresh_token = _stored_refresh_token(vault, connection_id)
    _expire(vault, fake, connection_id)
    opened = _count_refreshes(vault.refresher, monkeypatch)

    answers, took = await _storm([http], api_key, connection_id)
    remember_tokens(fake, secrets_seen)

    assert [a.status_code for a in answers] == [200] * STORM, [a.text for a in answers if a.status_code != 200]
    assert fake.refresh_calls == 1
    assert fake.dead_refreshes == 0
    assert opened == [connection_id]
    assert took < ANSWERED_WITHIN
    assert sum(e.event == "vault.connection.refreshed" for e in audit.tail(vault.engine, 500)) == 1
    kept = _stored_refresh_token(vault, connection_id)
    assert kept != first_refresh_token
    assert fake.refresh[kept] is True  # the provider's live refresh token, its predecessor rotated away
    assert not fake.refresh[first_refresh_token]  # type: ignore[index]
    tokens = {c["headers"]["authorization"] for c in fake.api_calls[-STORM:]}
    assert len(tokens) == 1  # every call went out with the one refreshed token

    again = await http.get(f"/vault/proxy/{connection_id}/events", headers=bearer(api_key))
    assert again.status_code == 200
    assert fake.refresh_calls == 1


async def test_calls_waiting_for_a_refresh_hold_no_worker_thread(
    http: httpx.AsyncClient, api_key: str, fake: SlowFake, vault: Vault, connection_id: str, secrets_seen: set[str]
) -> None:
    """With a pool of 8 worker threads, 30 calls waiting for one refresh leave room for other requests: one made
    while the refresh is at the provider is answered before it is over."""
    limiter = anyio.to_thread.current_default_thread_limiter()
    tokens = limiter.total_tokens
    limiter.total_tokens = 8
    try:
        _expire(vault, fake, connection_id)
        storm = asyncio.ensure_future(_storm([http], api_key, connection_id))
        assert await asyncio.to_thread(fake.refreshing.wait, 10.0)
        await asyncio.sleep(0.1)  # the thirty calls reach the refresh in flight
        listing = await http.get("/vault/connections", params={"user": "u-123"}, headers=bearer(api_key))
        assert listing.status_code == 200
        assert fake.refresh_calls == 0  # answered while the refresh was still at the provider
        answers, _ = await storm
    finally:
        limiter.total_tokens = tokens
    remember_tokens(fake, secrets_seen)
    assert [a.status_code for a in answers] == [200] * STORM
    assert fake.refresh_calls == 1


async def test_a_401_storm_makes_one_refresh(
    http: httpx.AsyncClient, api_key: str, fake: SlowFake, vault: Vault, connection_id: str, secrets_seen: set[str]
) -> None:
    """Thirty calls whose still-unexpired token the provider stopped honouring: each gets a 401, and the forced
    refreshes they ask for are one."""
    fake.expire_access_tokens()
    answers, _ = await _storm([http], api_key, connection_id)
    remember_tokens(fake, secrets_seen)
    assert [a.status_code for a in answers] == [200] * STORM, [a.text for a in answers if a.status_code != 200]
    assert fake.refresh_calls == 1
    assert fake.dead_refreshes == 0


# --- two processes -------------------------------------------------------------------------------------------------


@pytest.fixture
async def other_process(fd: Frontdesk, vault: Vault) -> AsyncIterator[tuple[Frontdesk, httpx.AsyncClient]]:
    """A second frontdesk on the same database and home: its own engine, vault, refresher and in-process flights,
    so only the database's row lock stands between its refresh and this one's."""
    other = open_frontdesk(fd.settings, run_migrations=False, ensure_keys=False)
    app = create_app(other)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.8", 50000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER, follow_redirects=False) as client:
            yield other, client
    finally:
        await app.state.vault_http.aclose()
        other.close()


async def test_two_processes_after_expiry_make_one_refresh(
    http: httpx.AsyncClient,
    api_key: str,
    fake: SlowFake,
    vault: Vault,
    connection_id: str,
    other_process: tuple[Frontdesk, httpx.AsyncClient],
    secrets_seen: set[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fifteen calls to each process: the one whose refresh waits on the row lock reads the row again once it has
    it, finds the token the other stored, and does not call the provider."""
    other, other_http = other_process
    assert other.vault is not None
    first_refresh_token = _stored_refresh_token(vault, connection_id)
    _expire(vault, fake, connection_id)
    here = _count_refreshes(vault.refresher, monkeypatch)
    there = _count_refreshes(other.vault.refresher, monkeypatch)

    answers, took = await _storm([http, other_http], api_key, connection_id)
    remember_tokens(fake, secrets_seen)

    assert [a.status_code for a in answers] == [200] * STORM, [a.text for a in answers if a.status_code != 200]
    assert fake.refresh_calls == 1
    assert fake.dead_refreshes == 0
    assert (len(here), len(there)) == (1, 1)  # one transaction a process; the second found the need met
    assert took < ANSWERED_WITHIN
    kept = _stored_refresh_token(vault, connection_id)
    assert kept != first_refresh_token
    assert fake.refresh[kept] is True
    for client in (http, other_http):  # both use the rotated tokens as they are
        after = await client.get(f"/vault/proxy/{connection_id}/events", headers=bearer(api_key))
        assert after.status_code == 200
    assert fake.refresh_calls == 1
