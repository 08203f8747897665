"""The audit writer on the event loop (SQLite, as ``frontdesk serve`` runs it): batches written by the loop itself,
within ``MAX_DELAY``; a write lock held elsewhere sends a batch back without the loop waiting for it; ``close``
writes what is left."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from typing import Any

import pytest
from sqlalchemy import select

from frontdesk.core import Frontdesk
from frontdesk.storage import audit
from frontdesk.storage.db import now, transaction
from frontdesk.storage.schema import AuditEvent

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def _row(n: int) -> audit.Row:
    return (now(), "token.issued", "success", "app", None, "192.0.2.1", json.dumps({"n": n}))


def _written(fd: Frontdesk) -> list[int]:
    with transaction(fd.engine, readonly=True) as conn:
        details = conn.execute(select(AuditEvent.detail).where(AuditEvent.event == "token.issued")).scalars()
        return [json.loads(detail)["n"] for detail in details]


async def _until_written(fd: Frontdesk, n: int) -> list[int]:
    for _ in range(200):  # 10 s at most; a batch is due every MAX_DELAY (0.2 s)
        written = _written(fd)
        if len(written) >= n:
            return written
        await asyncio.sleep(0.05)
    return _written(fd)


def test_on_the_loop_each_batch_is_written_by_the_loop_itself(fd: Frontdesk, monkeypatch: pytest.MonkeyPatch):
    """No thread of its own: the batch's statement runs on the loop's thread, and the events land in order."""
    writers: list[str] = []
    real = audit.run_many

    def noting_the_thread(db: Any, sql: str, rows: Any) -> None:
        writers.append(threading.current_thread().name)
        real(db, sql, rows)

    monkeypatch.setattr(audit, "run_many", noting_the_thread)

    async def main() -> list[int]:
        writer = audit.AuditWriter(fd.engine, asyncio.get_running_loop())
        assert writer._thread is None
        for n in range(5):
            assert writer.add(_row(n))
        written = await _until_written(fd, 5)
        writer.close()
        return written

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]
    assert writers
    assert set(writers) == {threading.current_thread().name}


def test_a_lock_held_elsewhere_sends_the_batch_back_and_the_loop_goes_on(
    fd: Frontdesk, monkeypatch: pytest.MonkeyPatch
):
    """Another process holds SQLite's write lock for a second: the batch is refused at once and tried again every
    ``LOCKED_RETRY`` s, while the loop goes on serving (it never sits in SQLite's 30 s busy wait); the events land
    once the lock is let go."""
    tries: list[int] = []
    real = audit.AuditWriter.flush

    def counted(self: audit.AuditWriter) -> None:
        tries.append(1)
        real(self)

    monkeypatch.setattr(audit.AuditWriter, "flush", counted)
    database = fd.engine.url.database
    assert database is not None
    other = sqlite3.connect(database, isolation_level=None)

    async def main() -> tuple[int, list[int], list[int]]:
        loop = asyncio.get_running_loop()
        other.execute("BEGIN IMMEDIATE")
        writer = audit.AuditWriter(fd.engine, loop)
        writer.add(_row(0))
        turns, until = 0, loop.time() + 1.0
        while loop.time() < until:
            await asyncio.sleep(0.01)
            turns += 1
        held = _written(fd)
        other.execute("ROLLBACK")
        written = await _until_written(fd, 1)
        writer.close()
        return turns, held, written

    try:
        turns, held, written = asyncio.run(main())
    finally:
        other.close()
    assert held == []
    assert written == [0]
    assert len(tries) >= 10  # refused and sent back, not waiting: at 0.2 s a round it would have tried ~5 times
    assert turns >= 20  # the loop turned all along (a batch waiting in SQLite's busy handler holds it up to 30 s)


def test_close_writes_what_is_left_and_the_loops_next_round_does_nothing(fd: Frontdesk):
    async def main() -> None:
        writer = audit.AuditWriter(fd.engine, asyncio.get_running_loop())
        assert writer.add(_row(0))
        assert writer.add(_row(1))
        writer.close()  # before the loop's first round
        assert _written(fd) == [0, 1]
        assert not writer.add(_row(2))  # closed: the caller writes it itself
        await asyncio.sleep(3 * audit.MAX_DELAY)  # the round already scheduled comes and goes

    asyncio.run(main())
    assert _written(fd) == [0, 1]
