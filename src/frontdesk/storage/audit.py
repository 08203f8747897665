"""The audit log: append-only structured events; never a secret (DESIGN §7).

An event is written in the transaction of what it describes (``record``), so both land or neither does. An event
that describes no database write — a client_credentials token — goes to ``record_soon``: under ``frontdesk serve``
an ``AuditWriter`` (on SQLite the event loop, elsewhere a thread) writes such events in batches, at most
``MAX_DELAY`` seconds after they happen, and writes whatever is left when the server shuts down cleanly. Without a
running writer it writes at once. On SQLite the event of a code redemption or a refresh joins the batches too, once
its transaction has committed (``record_after``).
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import DBAPIError

from ..errors import TemporarilyUnavailable
from ..logs import carry_audit, write_line
from ..wire import dumps
from .db import Raw, after_commit, now, raw_transaction, run, run_many, transaction
from .schema import AuditEvent
from .waits import Busy, no_wait

__all__ = [
    "AuditRecord",
    "AuditWriter",
    "announce",
    "event_row",
    "observer",
    "queued",
    "record",
    "record_after",
    "record_soon",
    "start_writer",
    "stop_writer",
    "tail",
]

log = logging.getLogger("frontdesk.audit")
MAX_DELAY = 0.2  # seconds an event may wait for its batch
MAX_QUEUED = 20_000  # past this, record_soon writes synchronously: the request waits rather than memory grows
LOCKED_RETRY = 0.01  # seconds before a batch on the event loop tries again for a write lock held elsewhere


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: int
    event: str
    outcome: str
    client_id: str | None
    user_id: str | None
    ip: str | None
    detail: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "event": self.event,
            "outcome": self.outcome,
            "client_id": self.client_id,
            "user_id": self.user_id,
            "ip": self.ip,
            "detail": self.detail,
        }


_INSERT = "INSERT INTO audit_events (at, event, outcome, client_id, user_id, ip, detail) VALUES (?, ?, ?, ?, ?, ?, ?)"
Row = tuple[int, str, str, str | None, str | None, str | None, str]


def event_row(
    event: str, outcome: str, client_id: str | None, user_id: str | None, ip: str | None, detail: dict[str, Any]
) -> Row:
    """An event as the audit table stores it, for a statement that writes it along with other rows
    (storage/redemption.py); ``announce`` it once that statement has committed."""
    return (now(), event, outcome, client_id, user_id, ip, dumps(detail, sort_keys=True).decode())


def record(
    conn: Connection | Raw,
    event: str,
    outcome: str,
    *,
    client_id: str | None = None,
    user_id: str | None = None,
    ip: str | None = None,
    **detail: Any,
) -> None:
    """Write an event in the caller's transaction, so it lands exactly when what it describes does."""
    run(conn, _INSERT, event_row(event, outcome, client_id, user_id, ip, detail))
    announce(event, outcome, client_id, user_id, ip, detail)


def record_soon(
    engine: Engine,
    event: str,
    outcome: str,
    *,
    client_id: str | None = None,
    user_id: str | None = None,
    ip: str | None = None,
    **detail: Any,
) -> None:
    """An event that goes with no transaction of its own: batched by the engine's running writer, else written now."""
    row = event_row(event, outcome, client_id, user_id, ip, detail)
    writer = _writers.get(id(engine))
    if writer is None or not writer.add(row):
        with transaction(engine) as conn:
            run(conn, _INSERT, row)
    announce(event, outcome, client_id, user_id, ip, detail)


def record_after(db: Raw, row: Row) -> None:
    """An event of what ``db``'s transaction writes, queued for the running writer's next batch once that has
    committed: the audit table's six B-trees are then written a batch at a time, not in every such transaction
    (storage/redemption.py, on SQLite). Without a writer that has room, it is written in the transaction, as
    ``record`` writes it. ``announce`` is the caller's."""
    engine = db.engine
    writer = _writers.get(id(engine))
    if writer is None or not writer.has_room():
        run(db, _INSERT, row)
        return
    after_commit(db, lambda: _write_committed(writer, engine, row))


def _write_committed(writer: AuditWriter, engine: Engine, row: Row) -> None:
    # What the event describes has committed: failing here must not turn the issued tokens into an error (a client
    # that tried again with its spent code would be taken for a thief). A writer closed in between (a shutdown)
    # leaves the event to be written here; if that fails too the log says so, and the event's own line has left.
    if writer.add(row):
        return
    try:
        with transaction(engine) as conn:
            run(conn, _INSERT, row)
    except (TemporarilyUnavailable, DBAPIError, Busy):  # Busy: on the loop, another writer holds SQLite's lock
        log.exception("audit event %s not written", row[1])


# Told of every event as it is recorded while metrics are on (frontdesk/metrics.py counts tokens, replays and vault
# calls from them); None otherwise, so that an event costs one comparison more.
observer: Callable[[str, str, dict[str, Any]], None] | None = None


def queued(engine: Engine) -> int:
    """How many events wait in the engine's running writer (0 without one): the audit queue depth of metrics."""
    writer = _writers.get(id(engine))
    return 0 if writer is None else len(writer._queue)


def announce(
    event: str, outcome: str, client_id: str | None, user_id: str | None, ip: str | None, detail: dict[str, Any]
) -> None:
    """An event written: its log line (or its place on the request's access line) and its metrics."""
    if observer is not None:
        observer(event, outcome, detail)
    # At INFO, one line per event; inside a served request it rides on the request's access line (logs.py).
    if not log.isEnabledFor(logging.INFO):
        return
    fields = {"event": event, "outcome": outcome, "client_id": client_id, "user_id": user_id, "ip": ip}
    for key, value in detail.items():
        fields[f"detail_{key}"] = value
    if not carry_audit(fields):
        write_line(log.name, logging.INFO, "audit", fields)


class AuditWriter:
    """Writes queued events in one transaction per batch, within ``MAX_DELAY`` seconds: from its own thread, or on
    SQLite from the event loop (``loop``).

    On SQLite the loop writes the batches itself, with its own connection, as it writes the refreshes and code
    redemptions whose events they mostly hold. A thread of its own took the database's one write lock every
    ``MAX_DELAY`` s for the milliseconds a batch takes, and every write of the loop in that time was refused and
    tried again; each of its commits also emptied the loop connection's page cache (SQLite drops it when another
    connection has written). On the loop the batch never finds its own process's requests in the way, and a lock
    held by another process sends it back ``LOCKED_RETRY`` s later, without waiting on the loop.

    A batch that cannot be written (the database is away) stays queued and is tried again; ``close`` writes what
    is left. What a crash of the process (not a clean shutdown) can lose: the events of its last ``MAX_DELAY``
    seconds, which its log lines still carry (except those of the last ``logs.FLUSH_INTERVAL``, 0.1 s, still
    waiting in the line writer).
    """

    def __init__(self, engine: Engine, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._engine = engine
        self._queue: list[Row] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        if loop is not None:
            loop.call_later(MAX_DELAY, self._on_loop, loop)
        else:
            self._thread = threading.Thread(target=self._run, name="frontdesk-audit", daemon=True)
            self._thread.start()

    def add(self, row: Row) -> bool:
        """Queue an event; False when the writer is closed or full and the caller must write it itself."""
        with self._lock:
            if self._closed or len(self._queue) >= MAX_QUEUED:
                return False
            self._queue.append(row)
        return True

    def has_room(self) -> bool:
        return not self._closed and len(self._queue) < MAX_QUEUED

    def flush(self) -> None:
        with self._lock:
            batch, self._queue = self._queue, []
        if not batch:
            return
        try:
            with raw_transaction(self._engine) as db:
                run_many(db, _INSERT, batch)
        except BaseException:
            with self._lock:
                self._queue[:0] = batch  # kept, in order, for the next round
            raise

    def _run(self) -> None:
        while not self._wake.wait(MAX_DELAY):
            try:
                self.flush()
            except Exception:  # the database is away: the events stay queued, the next round retries
                log.exception("audit batch not written; will retry")

    def _on_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._closed:  # close() has written what was left, or will
            return
        delay = MAX_DELAY
        try:
            with no_wait():
                self.flush()
        except Busy:
            delay = LOCKED_RETRY
        except Exception:
            log.exception("audit batch not written; will retry")
        loop.call_later(delay, self._on_loop, loop)

    def close(self) -> None:
        """Stop, and write what is queued. A writer on the loop is closed on the loop's thread (or once the loop has
        stopped), so that no round of its own is under way meanwhile to put a refused batch back in the queue."""
        with self._lock:
            self._closed = True
        if self._thread is not None:
            self._wake.set()
            self._thread.join(timeout=10)
        self.flush()


_writers: dict[int, AuditWriter] = {}  # id(engine) -> its writer, while the server runs
_writers_lock = threading.Lock()


def start_writer(engine: Engine, loop: asyncio.AbstractEventLoop | None = None) -> AuditWriter:
    """Start batching for this engine: from ``loop`` if given (SQLite; see ``AuditWriter``), else a thread."""
    with _writers_lock:
        writer = _writers.get(id(engine))
        if writer is None:
            writer = _writers[id(engine)] = AuditWriter(engine, loop)
    return writer


def stop_writer(engine: Engine) -> None:
    """Stop batching for this engine and write every queued event."""
    with _writers_lock:
        writer = _writers.pop(id(engine), None)
    if writer is not None:
        writer.close()


@atexit.register
def _flush_at_exit() -> None:
    # A last resort for a process that ends without its server's lifespan shutdown running.
    for engine_id in list(_writers):
        writer = _writers.get(engine_id)
        if writer is not None:
            try:
                stop_writer(writer._engine)
            except Exception:
                log.exception("audit events not written at exit")


def tail(engine: Engine, limit: int = 50) -> list[AuditRecord]:
    with transaction(engine, readonly=True) as conn:
        rows = conn.execute(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)).all()
    return [
        AuditRecord(r.id, r.at, r.event, r.outcome, r.client_id, r.user_id, r.ip, json.loads(r.detail))
        for r in reversed(rows)
    ]
