"""Fixed-window counters in the database, so that limits hold across processes and hosts (DESIGN §3).

One upsert per counted attempt: it starts a new window when the stored one has passed, else adds one, and
returns the count — atomic on both SQLite (``INSERT … ON CONFLICT … RETURNING``) and PostgreSQL.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from sqlalchemy import Connection, Engine, case, select
from sqlalchemy.dialects import postgresql, sqlite

from ..secret import digest
from .db import fetch
from .schema import RateLimit

__all__ = ["count", "counts", "hit", "key"]


@functools.lru_cache(maxsize=4096)
def key(name: str, subject: str) -> str:
    # Subjects are usernames, addresses and client ids: hashed so the table holds no personal data in clear.
    # Remembered, since the same client from the same address asks again and again (no secret goes in here).
    return digest(f"{name}\x00{subject}")


def hit(conn: Connection, name: str, subject: str, window: int, at: int) -> int:
    """Count one attempt; returns the attempts in the current window, this one included."""
    start = at - at % window
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    fresh = insert(RateLimit).values(key=key(name, subject), window_start=start, count=1, expires_at=start + window)
    current = RateLimit.window_start == start
    stmt = fresh.on_conflict_do_update(
        index_elements=[RateLimit.key],
        set_={
            "count": case((current, RateLimit.count + 1), else_=1),
            "window_start": start,
            "expires_at": start + window,
        },
    ).returning(RateLimit.count)
    return int(conn.execute(stmt).scalar_one())


def count(conn: Connection, name: str, subject: str, window: int, at: int) -> int:
    """Attempts so far in the current window, without counting one."""
    start = at - at % window
    row = conn.execute(
        select(RateLimit.count).where(RateLimit.key == key(name, subject), RateLimit.window_start == start)
    ).first()
    return int(row[0]) if row else 0


@functools.cache
def _counts_sql(n: int) -> str:
    # One primary-key seek per key, joined by UNION ALL: SQLite answers ``key IN (?, ?)`` by first building a
    # temporary index of the list, which doubled the cost of this statement (BENCHMARKS.md).
    return " UNION ALL ".join(["SELECT key, window_start, count FROM rate_limits WHERE key = ?"] * n)


def counts(db: Connection | Engine, limits: Sequence[tuple[str, str, int]], at: int) -> list[int]:
    """``count`` for several (name, subject, window) at once, in one statement (in a transaction or alone)."""
    keys = [key(name, subject) for name, subject, _ in limits]
    if not keys:
        return []
    rows = fetch(db, _counts_sql(len(keys)), keys)
    stored = {stored_key: (window_start, n) for stored_key, window_start, n in rows}
    out = []
    for asked, (_, _, window) in zip(keys, limits, strict=True):
        window_start, n = stored.get(asked, (None, 0))
        out.append(int(n) if window_start == at - at % window else 0)
    return out
