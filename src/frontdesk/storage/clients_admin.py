"""Clients as the operator manages them (the admin API and console): a page at a time, and their secrets replaced
with an overlap. Persistence only: ``frontdesk.admin.clients`` judges."""

from __future__ import annotations

from sqlalchemy import Connection, func, or_, select, update

from .clients import ClientRecord, _record
from .schema import Client

__all__ = ["client_page", "replace_secret"]


def client_page(conn: Connection, search: str | None, after: str | None, limit: int) -> list[ClientRecord]:
    """Clients by client_id, those after ``after``; with ``search``, those whose client_id or name contains it."""
    query = select(Client)
    if search:
        needle = search.lower()
        query = query.where(
            or_(
                func.lower(Client.client_id).contains(needle, autoescape=True),
                func.lower(Client.name).contains(needle, autoescape=True),
            )
        )
    if after is not None:
        query = query.where(Client.client_id > after)
    return [_record(r) for r in conn.execute(query.order_by(Client.client_id).limit(limit))]


def replace_secret(
    conn: Connection,
    client_id: str,
    *,
    secret_digest: str | None,
    previous_digest: str | None,
    previous_expires_at: int | None,
) -> bool:
    """Store a client's new secret (as its digest) and the previous one's until its overlap ends (None: none)."""
    updated = conn.execute(
        update(Client)
        .where(Client.client_id == client_id)
        .values(
            secret_digest=secret_digest,
            previous_secret_digest=previous_digest,
            previous_secret_expires_at=previous_expires_at,
        )
    ).rowcount
    return bool(updated)
