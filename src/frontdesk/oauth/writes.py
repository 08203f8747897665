"""The hot endpoints' blocking steps from the event loop: where each runs, on the loop or in a thread.

Writes (a refresh, a code redemption) wait here for SQLite's write lock: ``Busy`` and ``no_wait`` stay behind this
seam, so the web layer never imports storage (DESIGN §2). A lock held past the busy timeout becomes
``temporarily_unavailable``, rendered like any other error. Steps that this process's memory usually answers whole
(a client_credentials token, introspection: oauth/memory.py) run on the loop on a networked database too, and go to
a thread only when they need the store (``NeedsStore``). The trip to a thread is ``in_thread``'s.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from sqlalchemy import Engine

from ..errors import TemporarilyUnavailable
from ..storage.waits import BUSY_TIMEOUT_MS, Busy, NeedsStore, from_memory, no_wait

__all__ = ["in_thread", "run_cached", "run_write"]

P = ParamSpec("P")
T = TypeVar("T")

_FIRST_PAUSE, _LAST_PAUSE = 0.0005, 0.005  # seconds between tries for SQLite's write lock
# As many threads as anyio's default limit, which the hot paths used before: more than a database pool holds
# (``database_pool_size``), so a step that waits for a connection waits in the pool, with its timeout.
_THREADS = 40
_pool = concurrent.futures.ThreadPoolExecutor(_THREADS, thread_name_prefix="frontdesk-store")


async def in_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn`` in a worker thread, with this task's context variables (the request's log lines: logs.py), awaited.

    The executor's future straight from the loop: anyio's ``to_thread.run_sync`` (Starlette's ``run_in_threadpool``)
    spent 51 µs of the loop's CPU a trip on this machine against 15 µs here (capacity limiter, cancel scope, sniffio
    lookups), on every PostgreSQL token request. A cancelled request leaves its step to finish in the thread, as
    anyio's did: what it writes is one transaction either way."""
    context = contextvars.copy_context()
    call = functools.partial(context.run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_pool, call)


async def run_write(engine: Engine, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """The blocking part of a hot endpoint that writes (a refresh, a code redemption) in a ``raw_transaction``.

    On SQLite it runs right here on the event loop, on the condition that it need not wait for the write lock
    (``no_wait``). While another process, or the WAL checkpointer (storage/wal.py), holds the lock, the loop tries
    again after a short sleep that lets other requests through, for as long as SQLite itself would wait. Not in a
    thread sleeping in SQLite's busy handler: its waits grow to 100 ms, and with dozens of writes queued behind a
    10 ms checkpoint they made answers of half a second (BENCHMARKS.md). Nothing is written before the lock is taken,
    so every try starts from the same state. Elsewhere: the thread pool.
    """
    if engine.dialect.name != "sqlite":
        return await in_thread(fn, *args, **kwargs)
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = _FIRST_PAUSE
    while True:
        try:
            with no_wait():
                return fn(*args, **kwargs)
        except Busy:
            if time.monotonic() > deadline:
                raise TemporarilyUnavailable("the service is temporarily unavailable", detail="locked") from None
        await asyncio.sleep(pause)
        pause = min(pause * 2, _LAST_PAUSE)


async def run_cached(engine: Engine, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """A step that this process's memory usually answers without the store: a client's authentication (its record
    and its limits' counts kept), a client_credentials token (the resources kept, the audit event queued),
    introspection of an access token (revocation answers kept). On SQLite as ``run_write``. On a networked database
    it runs here on the loop, where asking for a connection raises ``NeedsStore`` before anything was sent or
    written, and then runs again from its start in a thread. A request answered from memory is spared the trip
    (2 × 15 µs and a thread wake-up); one that needs the store pays for its step twice up to the first read, which
    is the point of reading first and writing after."""
    if engine.dialect.name == "sqlite":
        return await run_write(engine, fn, *args, **kwargs)
    try:
        with from_memory():
            return fn(*args, **kwargs)
    except NeedsStore:
        return await in_thread(fn, *args, **kwargs)
