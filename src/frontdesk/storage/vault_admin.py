"""The vault's connections as the operator lists them, across every person (the admin API and console), a page at a
time. Rows only, never opened: the credentials stay sealed (``frontdesk.vault.store.record_of`` reads a row)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from .schema import VaultConnection

__all__ = ["connection_page"]


def connection_page(
    conn: Connection,
    *,
    integration: str | None,
    user: str | None,
    status: str | None,
    after: str | None,
    limit: int,
) -> list[Any]:
    """Connections by id, those after ``after``, of one integration, platform user or status when given."""
    c = VaultConnection
    query = select(c)
    if integration is not None:
        query = query.where(c.integration == integration)
    if user is not None:
        query = query.where(c.user == user)
    if status is not None:
        query = query.where(c.status == status)
    if after is not None:
        query = query.where(c.id > after)
    return list(conn.execute(query.order_by(c.id).limit(limit)).all())
