"""SQLite's write-ahead log, checkpointed by a thread of its own while ``frontdesk serve`` runs.

Under WAL a commit appends its pages to the log, and once the log passes ~1,000 pages the committing connection
copies them back into the database file (a checkpoint, with an fsync of each file). web/http.py runs the hot
writes on the event loop's own connection, so that copy used to stall every request of the worker for
milliseconds, once per hundred-odd refreshes (BENCHMARKS.md). While the server runs, that connection does no
checkpoint; this thread does, every ``INTERVAL`` seconds.

A PASSIVE checkpoint never waits for anyone, but under a steady stream of writes it never catches up either: new
pages arrive while it copies, the log is never all copied, and SQLite starts it over from the beginning only once
it is (a first version of this module let the log grow to 400 MB in a benchmark, and every read slowed as it grew).
So once the log is past ``RESTART_PAGES``, the thread runs a RESTART checkpoint, which takes the write lock for the
little a PASSIVE pass left, waits for readers to leave the log, and lets the next write start it over. Meanwhile the
event loop's writes find the lock taken and try again a moment later (oauth/writes.py ``run_write``).
Every other connection keeps SQLite's automatic checkpoint.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import Engine

__all__ = ["INTERVAL", "RESTART_PAGES", "Checkpointer", "start", "stop"]

log = logging.getLogger("frontdesk.storage")
INTERVAL = 0.25  # seconds between checkpoints: at ~2,000 commits/s of ~8 pages, ~4,000 pages between two
RESTART_PAGES = 4000  # a log this long (16 MB of 4 KiB pages) is copied to its end and started over


class Checkpointer:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="frontdesk-wal", daemon=True)
        self._thread.start()

    def checkpoint(self) -> tuple[int, int, int]:
        """A PASSIVE checkpoint, then a RESTART one if the log is long: (1 if the last could not finish, log pages,
        pages copied) as SQLite reports them for the last."""
        pooled = self._engine.raw_connection()
        try:
            cursor = pooled.cursor()
            try:
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
                row: Any = cursor.fetchone()
                if row[1] >= RESTART_PAGES:
                    cursor.execute("PRAGMA wal_checkpoint(RESTART)")  # waits for the writer: busy_timeout
                    row = cursor.fetchone()
            finally:
                cursor.close()
        finally:
            pooled.close()
        busy, frames, copied = row
        return int(busy), int(frames), int(copied)

    def _run(self) -> None:
        while not self._stop.wait(INTERVAL):
            try:
                self.checkpoint()
            except Exception:  # a locked or vanished file: automatic checkpoints still bound the log
                log.exception("WAL checkpoint failed; will retry")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def start(engine: Engine) -> Checkpointer | None:
    """Take checkpoints off the event loop's connection (``db._checkout``); call on the event loop's thread.
    None on PostgreSQL, and for an in-memory SQLite database, which has no log."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    pool: Any = engine.pool
    checkpointer = pool._frontdesk_checkpointer = Checkpointer(engine)
    held = getattr(pool, "_frontdesk_held", None)
    if held is not None:  # the event loop's connection, opened before the server started
        held.driver_connection.execute("PRAGMA wal_autocheckpoint = 0")
    return checkpointer


def stop(engine: Engine) -> None:
    """Stop the thread and give the loop's connection its automatic checkpoint back; then one last checkpoint."""
    pool: Any = engine.pool
    checkpointer: Checkpointer | None = getattr(pool, "_frontdesk_checkpointer", None)
    if checkpointer is None:
        return
    pool._frontdesk_checkpointer = None
    checkpointer.close()
    held = getattr(pool, "_frontdesk_held", None)
    if held is not None:
        held.driver_connection.execute("PRAGMA wal_autocheckpoint = 1000")
    checkpointer.checkpoint()
