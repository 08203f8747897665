"""The audit trail searched (the admin API and console): by event (exactly, or by a prefix such as ``admin.``),
person, client, outcome and time range, a page at a time by event id. Reads go through the indexes of migrations
0006 and 0015: (user_id, at), (event, at), (client_id, at)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from .audit import AuditRecord
from .schema import AuditEvent

__all__ = ["AuditFilter", "events_after", "events_before"]


@dataclass(frozen=True, slots=True)
class AuditFilter:
    event: str | None = None
    event_prefix: bool = False  # ``event`` is a prefix (``admin.`` finds every admin event)
    user_id: str | None = None
    client_id: str | None = None
    outcome: str | None = None
    since: int | None = None  # at >= since
    until: int | None = None  # at < until


def _where(f: AuditFilter) -> list[Any]:
    e = AuditEvent
    conditions: list[Any] = []
    if f.event is not None:
        conditions.append(e.event.startswith(f.event, autoescape=True) if f.event_prefix else e.event == f.event)
    if f.user_id is not None:
        conditions.append(e.user_id == f.user_id)
    if f.client_id is not None:
        conditions.append(e.client_id == f.client_id)
    if f.outcome is not None:
        conditions.append(e.outcome == f.outcome)
    if f.since is not None:
        conditions.append(e.at >= f.since)
    if f.until is not None:
        conditions.append(e.at < f.until)
    return conditions


def _record(r: Any) -> AuditRecord:
    return AuditRecord(r.id, r.at, r.event, r.outcome, r.client_id, r.user_id, r.ip, json.loads(r.detail))


def events_before(conn: Connection, f: AuditFilter, before: int | None, limit: int) -> list[AuditRecord]:
    """Matching events newest first, those with an id below ``before`` when given."""
    query = select(AuditEvent).where(*_where(f))
    if before is not None:
        query = query.where(AuditEvent.id < before)
    return [_record(r) for r in conn.execute(query.order_by(AuditEvent.id.desc()).limit(limit))]


def events_after(conn: Connection, f: AuditFilter, after: int, limit: int) -> list[AuditRecord]:
    """Matching events oldest first, those with an id above ``after`` (an export's next batch)."""
    query = select(AuditEvent).where(*_where(f), AuditEvent.id > after)
    return [_record(r) for r in conn.execute(query.order_by(AuditEvent.id).limit(limit))]
