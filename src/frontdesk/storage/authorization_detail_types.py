"""The ``authorization_details`` types the operator registered (RFC 9396 §2), each with the JSON Schema a request of
it must satisfy and the plain-words template consent and approval pages show.

Storage only: ``frontdesk.oauth.authorization_detail_types`` judges what may be registered and reads the schema;
here it is text. The reads are plain SQL on any connection (``db.fetch``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert

from .db import DB, fetch
from .schema import AuthorizationDetailType

__all__ = ["DetailTypeRow", "all_detail_types", "delete_detail_type", "detail_type_named", "insert_detail_type"]

_COLUMNS = "SELECT type, schema, describe, created_at FROM authorization_detail_types"


@dataclass(frozen=True, slots=True)
class DetailTypeRow:
    type: str
    schema: str  # the JSON Schema document, as registered
    describe: str
    created_at: int


def _row(row: Sequence[Any]) -> DetailTypeRow:
    type_, schema, describe, created_at = row
    return DetailTypeRow(type_, schema, describe, created_at)


def all_detail_types(db: DB) -> list[DetailTypeRow]:
    return [_row(r) for r in fetch(db, f"{_COLUMNS} ORDER BY type")]


def detail_type_named(db: DB, type_: str) -> DetailTypeRow | None:
    rows = fetch(db, f"{_COLUMNS} WHERE type = ?", (type_,))
    return _row(rows[0]) if rows else None


def insert_detail_type(conn: Connection, *, type_: str, schema: str, describe: str, at: int) -> DetailTypeRow:
    """Store a type; one stored already raises ``IntegrityError`` (the primary key), for the caller to turn into its
    own error once the transaction is rolled back."""
    conn.execute(
        insert(AuthorizationDetailType), {"type": type_, "schema": schema, "describe": describe, "created_at": at}
    )
    return DetailTypeRow(type_, schema, describe, at)


def delete_detail_type(conn: Connection, type_: str) -> DetailTypeRow | None:
    """Remove a type; the row it was, or None when there is none of that name."""
    found = detail_type_named(conn, type_)
    if found is not None:
        conn.execute(delete(AuthorizationDetailType).where(AuthorizationDetailType.type == type_))
    return found
