"""Cache invalidation across processes and hosts: a poll of generations, and on PostgreSQL one ``LISTEN`` connection.

Every process of a deployment keeps a little shared state in memory (what introspection learnt about revocation,
oauth/revocations.py; clients, storage/clients.py) and must drop it when another process or host changes it. The
triggers of migration 0016 announce every revocation and every changed client on the ``frontdesk_cache`` channel
as the change commits, those of 0019 every change of the resource and scope catalog, and ``announce`` a failed
attempt counted against an abuse limit; a :class:`Listener` thread receives the notifications and calls its
callbacks at once.

A notification can be lost with the connection that would have received it, and is never replayed, so the listener
also reads every row of ``cache_generations`` every ``POLL`` seconds (one statement on its own connection), and
treats a changed generation as a notification. ``fresh`` says whether a cached answer may be used: only while the
last successful read *started* less than ``BOUND`` seconds ago. A change is counted in the transaction that makes
it, so a read that started after the commit sees it; so whatever happens to the listener — notifications lost, the
connection killed and reconnecting with backoff, the database away — a change committed at time T is never answered
from a cache after T + ``BOUND``: caches stop being used, and the store is read instead.

SQLite has no notifications: there the listener only reads the generation (which a row trigger counts), every
``POLL`` seconds, on a pooled connection of its thread. Introspection's revocation read on SQLite costs about as
much as reading the generation (12–16 µs each, measured on a loaded machine), a fifth to a third of what the whole
introspection request costs there, so the read once every ``POLL`` seconds instead of one per request pays.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine

from .db import Raw, fetch, run

DB = Connection | Raw

__all__ = [
    "APPLICATION_NAME",
    "BOUND",
    "CATALOG",
    "CHANNEL",
    "POLL",
    "RATE_LIMIT",
    "REVOCATION",
    "Listener",
    "announce",
]

log = logging.getLogger("frontdesk.storage")
CHANNEL = "frontdesk_cache"
POLL = 0.25  # seconds between two reads of the generation, and the longest a shutdown waits for the thread
BOUND = 1.0  # seconds after the start of the last successful read during which cached revocation answers hold
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 2.0  # seconds before reconnecting, doubling after each failed attempt
APPLICATION_NAME = "frontdesk listener"  # as pg_stat_activity shows the listener's connection
CLIENT_PREFIX = "client:"
# The generations (migrations 0016 and 0019), each also the payload of its notification.
REVOCATION, CATALOG, RATE_LIMIT = "revocation", "catalog", "rate_limit"
_GENERATIONS = "SELECT name, generation FROM cache_generations"
_COUNT = "UPDATE cache_generations SET generation = generation + 1 WHERE name = ?"


def announce(db: DB, name: str) -> None:
    """Count a change of ``name`` in ``db``'s transaction, and on PostgreSQL notify every listener as it commits:
    for a change no trigger counts (migration 0019's ``rate_limit``)."""
    run(db, _COUNT, (name,))
    if db.dialect.name == "postgresql":
        fetch(db, "SELECT pg_notify(?, ?)", (CHANNEL, name))


class _Pooled:
    """A pooled SQLite connection, held by the listener's thread, with the one method the poll uses."""

    def __init__(self, engine: Engine) -> None:
        self._pooled = engine.raw_connection()

    def execute(self, sql: str) -> Any:
        return self._pooled.driver_connection.execute(sql)  # type: ignore[union-attr]

    def close(self) -> None:
        self._pooled.close()


class Listener:
    """The listening thread of one process: ``on_change(name)`` when what the generation ``name`` counts changed
    anywhere (or may have: a changed generation, or the first read), ``on_client(client_id)`` when a client changed
    or was deleted."""

    def __init__(self, engine: Engine, on_change: Callable[[str], None], on_client: Callable[[str], None]) -> None:
        self._engine = engine
        self._on_change = on_change
        self._on_client = on_client
        self._generations: dict[str, int] = {}
        self._synced_at = float("-inf")  # monotonic start of the last successful read of the generation
        self._stop = threading.Event()
        self._conn: Any = None
        self._thread = threading.Thread(target=self._run, name="frontdesk-listener", daemon=True)

    def start(self) -> None:
        """Begin listening. Not in ``__init__``: the first read calls ``on_change`` for every generation, from the
        listening thread, and the owner must be whole by then (a ``Memory`` whose drops were not yet set lost its
        first read to an AttributeError, and kept nothing until the listener's retry)."""
        self._thread.start()

    def fresh(self) -> bool:
        """Whether a revocation answer cached since the last invalidation may still be used (module docstring)."""
        return time.monotonic() - self._synced_at < BOUND

    def _connect(self) -> Any:
        if self._engine.dialect.name == "sqlite":  # autocommit already (db.open_engine): each read sees the latest
            return _Pooled(self._engine)
        # The driver's own connection, made as the engine makes its pooled ones (same URL and parameters), in
        # autocommit: a LISTEN takes effect at once, and the poll holds no snapshot between two reads.
        args, kwargs = self._engine.dialect.create_connect_args(self._engine.url)
        kwargs = {**kwargs, "autocommit": True, "application_name": APPLICATION_NAME}
        driver: Any = self._engine.dialect.loaded_dbapi
        conn = driver.connect(*args, **kwargs)
        conn.execute(f"LISTEN {CHANNEL}")
        return conn

    def _sync(self, conn: Any) -> None:
        started = time.monotonic()
        rows = conn.execute(_GENERATIONS).fetchall()  # all: SQLite ends the read only once its rows are exhausted
        for name, generation in rows:
            if self._generations.get(name) != generation:
                self._on_change(name)  # whatever was cached may predate a change this process was not told of
                self._generations[name] = generation
        self._synced_at = started

    def _deliver(self, payload: str) -> None:
        if payload.startswith(CLIENT_PREFIX):
            self._on_client(payload[len(CLIENT_PREFIX) :])
        else:
            self._on_change(payload)

    def _run(self) -> None:
        backoff = BACKOFF_FIRST
        failing = False
        while not self._stop.is_set():
            try:
                self._conn = conn = self._connect()
                self._sync(conn)  # notifications sent while no connection listened are lost: the generation tells
                if failing:
                    log.warning("cache invalidation listener connected again")
                failing, backoff = False, BACKOFF_FIRST
                while not self._stop.is_set():
                    if isinstance(conn, _Pooled):
                        self._stop.wait(POLL)
                    else:
                        for note in conn.notifies(timeout=POLL):
                            self._deliver(note.payload)
                    self._sync(conn)
            except Exception as exc:  # the connection lost, the database away: caches lapse (``fresh``) meanwhile
                if not self._stop.is_set() and not failing:
                    log.warning("cache invalidation listener lost its connection; reconnecting: %s", exc)
                failing = True
            finally:
                self._close()
            self._stop.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # closing a broken connection: nothing left to release
                log.debug("closing the listener connection failed", exc_info=True)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=POLL * 8)
