"""What a served process keeps in memory besides revocations (oauth/memory.py): the counts of its abuse limits and
the resource registry, each dropped when it changes anywhere (migration 0019, storage/notify.py); and the token
paths it answers on the event loop from that memory on PostgreSQL, going to a thread only when they need the store
(oauth/writes.py ``run_cached``)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event, text

from conftest import Registered, basic
from frontdesk.core import Frontdesk
from frontdesk.errors import InvalidTarget, RateLimited
from frontdesk.oauth import memory, resources
from frontdesk.oauth.rate_limits import Limit, check, count_failure
from frontdesk.oauth.writes import in_thread
from frontdesk.storage import audit
from frontdesk.storage.db import now, transaction
from frontdesk.storage.notify import BOUND, POLL, RATE_LIMIT, Listener, announce
from frontdesk.storage.ratelimit import hit

from .conftest import eventually

BOTH = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
PG = pytest.mark.parametrize("backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
LIMIT = Limit("client_auth_client_ip", "kept-client\x00192.0.2.1", 3, 3600)
URI = "https://kept.example.com/api"


def _limited(fd: Frontdesk) -> bool:
    try:
        check(fd, [LIMIT])
    except RateLimited:
        return True
    return False


def _count_elsewhere(fd: Frontdesk, times: int, *, announced: bool) -> None:
    """Failures counted as another process counts them: in the store, announced or (as nobody does) not."""
    with transaction(fd.engine) as conn:
        for _ in range(times):
            hit(conn, LIMIT.name, LIMIT.subject, LIMIT.window, now())
        if announced:
            announce(conn, RATE_LIMIT)


@BOTH
def test_counts_are_kept_until_a_failure_is_announced(fd: Frontdesk, kept: memory.Memory):
    assert not _limited(fd)  # read, and kept
    _count_elsewhere(fd, LIMIT.attempts, announced=False)
    time.sleep(POLL * 2)
    assert not _limited(fd), "the store was read again though nothing was announced"
    _count_elsewhere(fd, 0, announced=True)
    took = eventually(lambda: _limited(fd), BOUND)
    if fd.engine.dialect.name == "postgresql":
        assert took < POLL  # the notification, not the next read of the generations


@BOTH
def test_a_failure_counted_here_is_seen_here_at_once(fd: Frontdesk, kept: memory.Memory):
    assert not _limited(fd)
    for _ in range(LIMIT.attempts):
        count_failure(fd, [LIMIT])
    assert _limited(fd)


@BOTH
def test_without_memory_every_check_reads_the_store(fd: Frontdesk):
    assert not _limited(fd)
    _count_elsewhere(fd, LIMIT.attempts, announced=False)
    assert _limited(fd)


def _resolved(fd: Frontdesk) -> bool:
    try:
        return resources.resolve(fd, fd.engine, [URI])[0].uri == URI
    except InvalidTarget:
        return False


def _sql(engine: Engine, statement: str) -> None:
    with engine.connect() as conn:
        conn.execute(text(statement), {"uri": URI, "at": now()})
        conn.commit()


@BOTH
def test_the_registry_is_kept_and_a_resource_added_anywhere_is_found_at_once(fd: Frontdesk, kept: memory.Memory):
    assert not _resolved(fd)  # the registry read, and kept without it
    _sql(fd.engine, "INSERT INTO resources (uri, name, scope, created_at) VALUES (:uri, 'Kept', '', :at)")
    assert _resolved(fd)  # a URI the kept registry lacks is looked for in the store


@BOTH
def test_a_resource_deleted_anywhere_is_refused_within_the_bound(fd: Frontdesk, kept: memory.Memory):
    resources.create(fd, URI, "Kept")
    assert _resolved(fd)
    _sql(fd.engine, "DELETE FROM resources WHERE uri = :uri")  # as another host: only the trigger tells
    took = eventually(lambda: not _resolved(fd), BOUND)
    if fd.engine.dialect.name == "postgresql":
        assert took < POLL


@BOTH
def test_a_resource_deleted_here_is_refused_here_at_once(fd: Frontdesk, kept: memory.Memory):
    resources.create(fd, URI, "Kept")
    assert _resolved(fd)
    resources.delete(fd, URI)
    assert not _resolved(fd)


class _Checkouts:
    """Connections the engine's pool hands out for requests, counted: not the audit writer's, nor the listener's."""

    def __init__(self, engine: Engine) -> None:
        self.count = 0
        self._engine = engine
        event.listen(engine, "checkout", self._seen)

    def _seen(self, *_: object) -> None:
        if threading.current_thread().name not in ("frontdesk-audit", "frontdesk-listener"):
            self.count += 1

    def close(self) -> None:
        event.remove(self._engine, "checkout", self._seen)


async def _client_credentials(http: httpx.AsyncClient, client: Registered, secret: str | None = None) -> httpx.Response:
    return await http.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "calendar.read"},
        auth=(client.client_id, secret) if secret else basic(client),
    )


@PG
async def test_on_postgresql_a_kept_client_gets_its_token_without_a_connection(
    fd: Frontdesk, kept: memory.Memory, http: httpx.AsyncClient, confidential: Registered
):
    """After the first request (the client, its limits' counts read), client_credentials and introspection of the
    token are answered on the event loop from memory: no connection is checked out of the pool."""
    first = await _client_credentials(http, confidential)
    assert first.status_code == 200, first.text
    token = first.json()["access_token"]
    auth = basic(confidential)
    assert (await http.post("/introspect", data={"token": token}, auth=auth)).json()["active"]
    audit.start_writer(fd.engine)  # as the lifespan starts it: events go in batches, from a thread of its own
    checkouts = _Checkouts(fd.engine)
    try:
        for _ in range(5):
            assert (await _client_credentials(http, confidential)).status_code == 200
            assert (await http.post("/introspect", data={"token": token}, auth=auth)).json()["active"]
    finally:
        checkouts.close()
        audit.stop_writer(fd.engine)
    assert checkouts.count == 0


@PG
async def test_on_postgresql_a_step_that_needs_the_store_runs_once_in_a_thread(
    fd: Frontdesk, kept: memory.Memory, http: httpx.AsyncClient, confidential: Registered
):
    """A wrong secret: tried on the loop, the failure must be counted, which needs the store; the step runs again
    in a thread from its start. The failure is counted once and audited once, not once per try."""
    assert (await _client_credentials(http, confidential)).status_code == 200
    refused = await _client_credentials(http, confidential, secret="not-the-secret-" + "x" * 20)
    assert refused.status_code == 401
    with fd.engine.connect() as conn:
        counted = conn.execute(text("SELECT sum(count) FROM rate_limits")).scalar_one()
    assert counted == 2  # one failure, counted per client and address and per address
    failures = [e for e in audit.tail(fd.engine, 50) if e.event == "client.authentication"]
    assert [e.outcome for e in failures] == ["failure"]


async def test_a_thread_step_sees_the_request_context() -> None:
    seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="")
    seen.set("this request")
    assert await in_thread(seen.get) == "this request"
    assert await asyncio.gather(*(in_thread(lambda n=n: n * 2) for n in range(50))) == [n * 2 for n in range(50)]


def test_the_listener_starts_once_the_memory_can_take_its_first_read(fd: Frontdesk, monkeypatch: pytest.MonkeyPatch):
    """The listener's first read calls back for every generation at once, from its own thread: the memory must be
    whole by then. A listener started while the memory was still being built lost that read to an AttributeError
    and kept nothing until it tried again."""
    failures: list[Exception] = []
    changed = memory.Memory._changed

    def recording(self: memory.Memory, name: str) -> None:
        try:
            changed(self, name)
        except Exception as exc:
            failures.append(exc)
            raise

    kept_init = memory.Kept.__init__

    def slow(self: memory.Kept[Any, Any], listener: Listener) -> None:
        kept_init(self, listener)  # then a slow start: a running listener reads meanwhile
        time.sleep(0.05)

    monkeypatch.setattr(memory.Memory, "_changed", recording)
    monkeypatch.setattr(memory.Kept, "__init__", slow)
    started = memory.start(fd)
    assert started is not None
    try:
        eventually(started.listener.fresh, 5.0)
        assert failures == []
    finally:
        memory.stop(fd)
