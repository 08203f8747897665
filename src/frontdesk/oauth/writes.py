"""The token endpoint's writes from the event loop (a refresh, a code redemption), and the one place the store's
write lock is waited for: ``Busy`` and ``no_wait`` stay behind this seam, so the web layer never imports storage
(DESIGN §2). A lock held past the busy timeout becomes ``temporarily_unavailable``, rendered like any other error.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import anyio.to_thread
from sqlalchemy import Engine

from ..errors import TemporarilyUnavailable
from ..storage.db import BUSY_TIMEOUT_MS, Busy, no_wait

__all__ = ["run_write"]

P = ParamSpec("P")
T = TypeVar("T")

_FIRST_PAUSE, _LAST_PAUSE = 0.0005, 0.005  # seconds between tries for SQLite's write lock


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
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))
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
