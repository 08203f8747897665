"""Where a step of a hot endpoint may run: on the event loop, as long as it need not wait.

Two kinds of waiting are refused here, each with an exception that sends the step elsewhere (oauth/writes.py):
SQLite's write lock held by another writer (``no_wait``, ``Busy``: try again after a pause on the loop) and a
networked database at all (``from_memory``, ``NeedsStore``: run the step in a thread). ``storage/db.py`` asks at
every connection it hands out and every transaction it begins.
"""

from __future__ import annotations

import contextvars
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.pool import PoolProxiedConnection

__all__ = [
    "BUSY_TIMEOUT_MS",
    "Busy",
    "NeedsStore",
    "begin_immediate",
    "busy_timeout",
    "from_memory",
    "may_use",
    "no_wait",
    "waiting",
]

BUSY_TIMEOUT_MS = 30000  # how long SQLite waits for its write lock, where waiting is allowed


class Busy(Exception):
    """SQLite's write lock is held elsewhere, and the caller asked not to wait for it (``no_wait``)."""


class NeedsStore(Exception):
    """A step run ``from_memory`` asked for a database connection: it must run again where it may wait for one."""


_from_memory: contextvars.ContextVar[bool] = contextvars.ContextVar("frontdesk_from_memory", default=False)


class _Setting:
    """A context variable set to True for the length of a ``with`` block. A class, not a generator context manager:
    the event loop enters one on every token request, and ``contextlib.contextmanager`` costs 0.8 µs more a use."""

    __slots__ = ("_token", "_var")

    def __init__(self, var: contextvars.ContextVar[bool]) -> None:
        self._var = var

    def __enter__(self) -> None:
        self._token = self._var.set(True)

    def __exit__(self, *exc: object) -> None:
        self._var.reset(self._token)


def from_memory() -> _Setting:
    """Within this block, asking a networked database for a connection raises ``NeedsStore`` before anything is
    sent: the event loop may run a step that its process's memory usually answers whole (oauth/memory.py), and hand
    it to a thread, from its start, only when it would wait on the network. SQLite, a file, answers on the loop
    anyway (web/http.py ``run_sync``)."""
    return _Setting(_from_memory)


def may_use(engine: Engine) -> None:
    """Raise ``NeedsStore`` where ``from_memory`` forbids a connection to ``engine`` (storage/db.py asks)."""
    if _from_memory.get() and engine.dialect.name != "sqlite":
        raise NeedsStore


_no_wait: contextvars.ContextVar[bool] = contextvars.ContextVar("frontdesk_no_wait", default=False)


def no_wait() -> _Setting:
    """Within this block a ``raw_transaction`` on SQLite raises ``Busy`` at once instead of waiting for the write
    lock: the event loop may try a write itself, and hand it to a thread only when it would have to wait."""
    return _Setting(_no_wait)


def waiting() -> bool:
    """Whether a transaction begun now may wait for SQLite's write lock."""
    return not _no_wait.get()


# A SQLite connection's busy timeout as last set, in its pool record's info (which lives as long as the connection).
_BUSY_MS = "frontdesk_busy_timeout_ms"


def busy_timeout(pooled: PoolProxiedConnection, ms: int) -> None:
    """Give a SQLite connection this busy timeout, unless it has it: a PRAGMA is prepared anew each time it runs, and
    two of them around every write were 6 % of a code redemption's CPU (BENCHMARKS.md)."""
    if pooled.info.get(_BUSY_MS, BUSY_TIMEOUT_MS) != ms:
        driver: Any = pooled.driver_connection
        driver.execute(f"PRAGMA busy_timeout = {ms}")
        pooled.info[_BUSY_MS] = ms


def begin_immediate(pooled: PoolProxiedConnection, dbapi_error: type[Exception]) -> None:
    """Begin a SQLite write transaction: waiting for the write lock up to ``BUSY_TIMEOUT_MS``, or within ``no_wait``
    raising ``Busy`` at once. The connection keeps the timeout it was given, so the event loop's held connection
    (storage/db.py ``_checkout``), which serves one ``no_wait`` write after another, sets it only when it switches.
    Once the lock is held, nothing in the transaction waits for another: under WAL, reads never do, and the commit
    needs no lock more."""
    wait = waiting()
    busy_timeout(pooled, BUSY_TIMEOUT_MS if wait else 0)
    driver: Any = pooled.driver_connection
    try:
        driver.execute("BEGIN IMMEDIATE")
    except dbapi_error as exc:
        if not wait and ("locked" in str(exc) or "busy" in str(exc)):
            raise Busy from exc
        raise
