"""What a proxied call writes and reads besides the call itself: the connection's and the key's last use at most
once a minute, the ``vault.proxy`` audit event with or without a running audit writer, the API key and the
connection in one lookup, one trip to the thread pool, and no provider cookie carried from one person to the next."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio.to_thread
import httpx
import pytest
from sqlalchemy import select, update

from frontdesk.core import Frontdesk
from frontdesk.storage import audit
from frontdesk.storage.schema import ApiKey, VaultConnection
from frontdesk.vault import api_key_store, store
from frontdesk.vault.service import Vault
from frontdesk.web import create_app

from .conftest import bearer, connected, remember_tokens
from .fake_provider import Fake


def _last_used(vault: Vault, connection_id: str) -> int | None:
    with vault.engine.begin() as conn:
        value = conn.execute(select(VaultConnection.last_used_at).where(VaultConnection.id == connection_id)).scalar()
    return None if value is None else int(value)


def _set_last_used(vault: Vault, connection_id: str, at: int) -> None:
    with vault.engine.begin() as conn:
        conn.execute(update(VaultConnection).where(VaultConnection.id == connection_id).values(last_used_at=at))


def _proxy_events(vault: Vault) -> list[audit.AuditRecord]:
    return [e for e in audit.tail(vault.engine, 200) if e.event == "vault.proxy"]


async def _call(http: httpx.AsyncClient, key: str, connection_id: str) -> httpx.Response:
    response = await http.get(f"/vault/proxy/{connection_id}/me", headers=bearer(key))
    assert response.status_code == 200, response.text
    return response


@pytest.fixture
async def connection_id(http: httpx.AsyncClient, api_key: str, fake: Fake, secrets_seen: set[str]) -> str:
    found = await connected(http, api_key)
    remember_tokens(fake, secrets_seen)
    return str(found["id"])


async def test_the_first_call_notes_the_connections_last_use(
    http: httpx.AsyncClient, api_key: str, vault: Vault, connection_id: str
) -> None:
    assert _last_used(vault, connection_id) is None
    await _call(http, api_key, connection_id)
    noted = _last_used(vault, connection_id)
    assert noted is not None
    assert abs(noted - time.time()) <= 5


async def test_a_call_within_a_minute_of_the_last_use_writes_no_last_use(
    http: httpx.AsyncClient, api_key: str, vault: Vault, connection_id: str
) -> None:
    recent = int(time.time()) - 30
    _set_last_used(vault, connection_id, recent)
    await _call(http, api_key, connection_id)
    await _call(http, api_key, connection_id)
    assert _last_used(vault, connection_id) == recent


async def test_a_call_past_a_minute_notes_the_last_use_again(
    http: httpx.AsyncClient, api_key: str, vault: Vault, connection_id: str
) -> None:
    stale = int(time.time()) - store.LAST_USED_EVERY - 5
    _set_last_used(vault, connection_id, stale)
    await _call(http, api_key, connection_id)
    noted = _last_used(vault, connection_id)
    assert noted is not None
    assert noted > stale + store.LAST_USED_EVERY


@pytest.mark.parametrize("last_use_due", [True, False], ids=["with-last-use", "event-alone"])
async def test_every_proxied_call_is_audited_alike(
    http: httpx.AsyncClient, api_key: str, vault: Vault, connection_id: str, last_use_due: bool
) -> None:
    """The event is the same whether it lands with the last-use write or alone through ``record_soon``."""
    if not last_use_due:
        _set_last_used(vault, connection_id, int(time.time()))
    await http.get(f"/vault/proxy/{connection_id}/me?secret=1", headers=bearer(api_key))
    (event,) = _proxy_events(vault)
    assert event.outcome == "success"
    assert event.detail == {
        "connection": connection_id,
        "integration": "cal",
        "user": "u-123",
        "method": "GET",
        "host": event.detail["host"],
        "path": "/api/me",
        "status": 200,
    }
    assert event.detail["host"].startswith("127.0.0.1:")


async def test_the_audit_event_joins_the_writers_batch_when_one_runs(
    http: httpx.AsyncClient, api_key: str, vault: Vault, connection_id: str
) -> None:
    """Under a running ``AuditWriter`` (``frontdesk serve``) the event is queued, and written when it flushes."""
    _set_last_used(vault, connection_id, int(time.time()))
    audit.start_writer(vault.engine)
    try:
        await _call(http, api_key, connection_id)
        await _call(http, api_key, connection_id)
    finally:
        audit.stop_writer(vault.engine)
    events = _proxy_events(vault)
    assert [e.detail["status"] for e in events] == [200, 200]
    assert {e.detail["connection"] for e in events} == {connection_id}


async def test_a_call_with_nothing_due_makes_one_trip_to_the_thread_pool(
    http: httpx.AsyncClient, api_key: str, vault: Vault, connection_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """API key, connection and credential in one blocking step; no write after the call."""
    _set_last_used(vault, connection_id, int(time.time()))
    await _call(http, api_key, connection_id)  # the API key's own last use is noted here, once a minute
    trips: list[Callable[..., Any]] = []
    run_sync = anyio.to_thread.run_sync

    async def counted(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        trips.append(fn)
        return await run_sync(fn, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    await _call(http, api_key, connection_id)
    assert len(trips) == 1


async def test_a_key_revoked_between_two_calls_is_refused_at_once(
    http: httpx.AsyncClient, api_key: str, vault: Vault, connection_id: str
) -> None:
    await _call(http, api_key, connection_id)
    (record,) = api_key_store.api_keys(vault.engine)
    assert api_key_store.revoke_api_key(vault.engine, record.id)
    response = await http.get(f"/vault/proxy/{connection_id}/me", headers=bearer(api_key))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


@pytest.mark.parametrize("connection", ["known", "unknown"])
async def test_an_unknown_key_is_a_401_whatever_the_connection(
    http: httpx.AsyncClient, connection_id: str, connection: str
) -> None:
    """The key is checked before the connection: a wrong key learns nothing about which connections exist."""
    target = connection_id if connection == "known" else "conn_nope"
    response = await http.get(f"/vault/proxy/{target}/me", headers=bearer("fd_ak_" + "x" * 43))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


async def test_a_known_key_and_an_unknown_connection_is_a_404(http: httpx.AsyncClient, api_key: str) -> None:
    response = await http.get("/vault/proxy/conn_nope/me", headers=bearer(api_key))
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_connection"


async def test_the_api_keys_last_use_is_noted_once_a_minute(
    http: httpx.AsyncClient, api_key: str, vault: Vault, connection_id: str
) -> None:
    recent = int(time.time()) - 30
    with vault.engine.begin() as conn:
        conn.execute(update(ApiKey).values(last_used_at=recent))
    await _call(http, api_key, connection_id)
    (record,) = api_key_store.api_keys(vault.engine)
    assert record.last_used_at == recent
    with vault.engine.begin() as conn:
        conn.execute(update(ApiKey).values(last_used_at=recent - store.LAST_USED_EVERY))
    await _call(http, api_key, connection_id)
    (record,) = api_key_store.api_keys(vault.engine)
    assert record.last_used_at is not None
    assert record.last_used_at > recent


async def test_a_providers_cookie_never_travels_with_another_persons_call(
    http: httpx.AsyncClient, api_key: str, fake: Fake, secrets_seen: set[str]
) -> None:
    """The proxy's HTTP client is shared; the cookie a provider set on one person's call stays out of the next."""
    first = await connected(http, api_key, "u-a")
    second = await connected(http, api_key, "u-b")
    remember_tokens(fake, secrets_seen)
    await _call(http, api_key, first["id"])
    await _call(http, api_key, second["id"])
    assert "cookie" not in fake.api_calls[-1]["headers"]


def test_the_plain_sql_connection_row_has_every_column() -> None:
    """``api_key_and_connection`` reads the columns ``ConnectionRow`` names: a new column must be named there too."""
    assert set(store.ConnectionRow._fields) == set(VaultConnection.__table__.columns.keys())


async def test_the_proxys_shared_client_keeps_no_cookie(fd: Frontdesk) -> None:
    """The jar of the client every person's calls share refuses what providers set."""
    app = create_app(fd)
    client: httpx.AsyncClient = app.state.vault_http
    answer = httpx.Response(
        200,
        headers={"set-cookie": "provider_session=1; Path=/"},
        request=httpx.Request("GET", "https://api.provider.example/v1/me"),
    )
    client.cookies.extract_cookies(answer)
    assert not client.cookies
    await client.aclose()
