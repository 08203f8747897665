"""How far the alert rules have read the audit trail (``alert_cursor``), what they count in it, and the tallies they
keep where the trail has no index for the question (``alert_tallies``).

The cursor moves by compare-and-set: an evaluator that read position ``seen`` moves it only if it is still there,
in the transaction that stores what it found, so among several processes each event is evaluated exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Literal, NamedTuple

from sqlalchemy import Connection, delete, insert, select, update

from .audit import AuditRecord
from .db import fetch
from .schema import AlertCursor, AlertTally

__all__ = [
    "AUDIT",
    "PERIODIC",
    "Match",
    "Passed",
    "add_tally",
    "advance",
    "claim_periodic",
    "count_matching",
    "drop_tally",
    "events_between",
    "marks_after",
    "position",
    "purge_tallies",
    "span_after",
    "tallies",
]

AUDIT = "audit"  # the cursor over audit_events
PERIODIC = "periodic"  # when the checks no event triggers last ran (its updated_at)

# (event, outcomes): the audit events a rule counts.
Match = tuple[str, tuple[str, ...]]


class Passed(NamedTuple):
    """An event's place in the trail: what the evaluator needs to tell a gap in the ids."""

    id: int
    at: int


def position(conn: Connection, name: str) -> tuple[int, int]:
    """(last event id evaluated, when the cursor last moved). Both rows are created by migration 0018."""
    row = conn.execute(
        select(AlertCursor.last_event_id, AlertCursor.updated_at).where(AlertCursor.name == name)
    ).one_or_none()
    if row is None:
        raise LookupError(f"alert cursor {name!r} is missing: run the migrations")
    return int(row.last_event_id), int(row.updated_at)


def advance(conn: Connection, name: str, *, seen: int, to: int, at: int) -> bool:
    """Move the cursor from ``seen`` to ``to``; False when another evaluator moved it first. On PostgreSQL the loser
    waits for the winner's transaction, then finds the row changed (READ COMMITTED re-checks the condition)."""
    changed = conn.execute(
        update(AlertCursor)
        .where(AlertCursor.name == name, AlertCursor.last_event_id == seen)
        .values(last_event_id=to, updated_at=at)
    )
    return changed.rowcount == 1


def claim_periodic(conn: Connection, *, seen_at: int, at: int) -> bool:
    """Take this round of the periodic checks: compare-and-set on when the last round ran."""
    changed = conn.execute(
        update(AlertCursor).where(AlertCursor.name == PERIODIC, AlertCursor.updated_at == seen_at).values(updated_at=at)
    )
    return changed.rowcount == 1


def span_after(conn: Connection, after: int, limit: int) -> tuple[int, int]:
    """(how many of the next ``limit`` audit events after id ``after`` there are, the last one's id, or ``after``).
    A count equal to the distance means no id is missing in between: the evaluator then need read none of them but
    those its rules read (``events_between``). Most of the trail is tokens issued, which no rule reads; reading
    and decoding each of them was most of the evaluator's cost, ~15 µs of CPU an event in the process that serves
    the requests writing them (BENCHMARKS.md)."""
    ((count, last),) = fetch(
        conn,
        "SELECT COUNT(*), MAX(id) FROM (SELECT id FROM audit_events WHERE id > ? ORDER BY id LIMIT ?) AS span",
        (after, limit),
    )
    return int(count), int(last if last is not None else after)


def marks_after(conn: Connection, after: int, limit: int) -> list[Passed]:
    """The id and time of each of the next ``limit`` audit events after id ``after``, in id order: where the ids
    have a gap, whether it may be an event still to commit."""
    rows = fetch(conn, "SELECT id, at FROM audit_events WHERE id > ? ORDER BY id LIMIT ?", (after, limit))
    return [Passed(id, at) for id, at in rows]


def events_between(conn: Connection, after: int, upto: int, names: Collection[str]) -> list[AuditRecord]:
    """The audit events after id ``after`` up to ``upto`` that are named in ``names``, in id order."""
    named = sorted(names)  # the rules' own event names, never input: only their placeholders are written in
    # ``event || ''``: read along the ids, never through the (event, at) index, which would visit every such event
    # ever written.
    which = ", ".join("?" * len(named))
    columns = "id, at, event, outcome, client_id, user_id, ip, detail"
    sql = f"SELECT {columns} FROM audit_events WHERE id > ? AND id <= ? AND event || '' IN ({which}) ORDER BY id"  # noqa: S608
    rows = fetch(conn, sql, (after, upto, *named))
    return [
        AuditRecord(id, at, event, outcome, client_id, user_id, ip, json.loads(detail))
        for id, at, event, outcome, client_id, user_id, ip, detail in rows
    ]


_COLUMNS = ("user_id", "ip", "client_id")
_COUNTS: dict[tuple[str, tuple[Match, ...]], str] = {}


def _count_sql(column: str, matches: tuple[Match, ...]) -> str:
    sql = _COUNTS.get((column, matches))
    if sql is None:
        assert column in _COLUMNS  # a column name, never input: the rules' own table names it
        which = " OR ".join(f"(event = ? AND outcome IN ({', '.join('?' * len(outcomes))}))" for _, outcomes in matches)
        # Said outright when it holds, as the (ip, at) index's own condition (migration 0020): a planner uses a
        # partial index only for a query whose conditions imply the index's, and neither SQLite nor PostgreSQL
        # infers it from the outcomes as parameters. (A rule that counted an address's successes would read the table
        # without an index: none does.)
        if not any("success" in outcomes for _, outcomes in matches):
            which = f"outcome <> 'success' AND ({which})"
        sql = _COUNTS[(column, matches)] = (
            f"SELECT COUNT(*) FROM audit_events WHERE {column} = ? AND at > ? AND id <= ? AND {which}"  # noqa: S608
        )
    return sql


def count_matching(
    conn: Connection,
    column: Literal["user_id", "ip", "client_id"],
    value: str,
    matches: tuple[Match, ...],
    *,
    since: int,
    upto: int,
) -> int:
    """Events matching one of ``matches`` with ``column`` = ``value``, after ``since`` (seconds) and at most id
    ``upto``: through the (column, at) index of each column. Written out once per rule rather than built per call:
    the evaluator asks this for every failed sign-in, and building the statement cost more than running it."""
    params: list[str | int] = [value, since, upto]
    for event, outcomes in matches:
        params += [event, *outcomes]
    return int(fetch(conn, _count_sql(column, matches), params)[0][0])


def add_tally(conn: Connection, rule: str, key: str, bucket: int, n: int = 1) -> int:
    """Add ``n`` to a tally and return it. The evaluator holds the cursor's row meanwhile, so no other writes it."""
    t = AlertTally
    where = (t.rule == rule, t.key == key, t.bucket == bucket)
    counted = conn.execute(update(t).where(*where).values(count=t.count + n).returning(t.count)).scalar()
    if counted is not None:
        return int(counted)
    conn.execute(insert(t).values(rule=rule, key=key, bucket=bucket, count=n))
    return n


def drop_tally(conn: Connection, rule: str, key: str) -> None:
    conn.execute(delete(AlertTally).where(AlertTally.rule == rule, AlertTally.key == key))


def tallies(conn: Connection, rule: str, key: str, since: int) -> list[tuple[int, int]]:
    """(bucket, count) of a key from bucket ``since`` on, oldest first."""
    t = AlertTally
    rows = conn.execute(
        select(t.bucket, t.count).where(t.rule == rule, t.key == key, t.bucket >= since).order_by(t.bucket)
    )
    return [(int(bucket), int(count)) for bucket, count in rows]


def purge_tallies(conn: Connection, rule: str, before: int) -> int:
    """Delete a rule's buckets older than ``before``; returns how many."""
    t = AlertTally
    return conn.execute(delete(t).where(t.rule == rule, t.bucket < before)).rowcount
