"""Counters of recent failed sign-ins, shared by every process (DESIGN §3).

One upsert per failure: it starts again at one when the stored count was already forgotten, else adds one —
atomic on both SQLite (``INSERT … ON CONFLICT``) and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, case, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from ..secret import digest
from .schema import SigninFailure

__all__ = ["Failures", "add_failure", "clear_failures", "failures_of"]


@dataclass(frozen=True, slots=True)
class Failures:
    count: int
    last_at: int


NONE = Failures(0, 0)


def _key(subject: str) -> str:
    # Subjects hold usernames and addresses: hashed, so the table holds no personal data in clear.
    return digest("signin\x00" + subject)


def add_failure(conn: Connection, subject: str, at: int, forget_after: int) -> None:
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    fresh = insert(SigninFailure).values(key=_key(subject), failures=1, last_at=at, expires_at=at + forget_after)
    remembered = SigninFailure.expires_at > at
    conn.execute(
        fresh.on_conflict_do_update(
            index_elements=[SigninFailure.key],
            set_={
                "failures": case((remembered, SigninFailure.failures + 1), else_=1),
                "last_at": at,
                "expires_at": at + forget_after,
            },
        )
    )


def failures_of(conn: Connection, subjects: Sequence[str], at: int) -> list[Failures]:
    """The remembered failures of each subject, in order (none for a subject quiet long enough to be forgotten)."""
    keys = [_key(s) for s in subjects]
    rows = conn.execute(
        select(SigninFailure.key, SigninFailure.failures, SigninFailure.last_at).where(
            SigninFailure.key.in_(keys), SigninFailure.expires_at > at
        )
    )
    found = {r.key: Failures(r.failures, r.last_at) for r in rows}
    return [found.get(k, NONE) for k in keys]


def clear_failures(conn: Connection, subject: str) -> None:
    conn.execute(delete(SigninFailure).where(SigninFailure.key == _key(subject)))
