"""The audit trail for the operator: searched by event, person, client, outcome and time range, newest first with a
cursor; exported as JSON lines, oldest first, streamed in batches so an export of any size holds one batch in
memory. An export is itself audited (``admin.audit.exported``): who read the trail is part of it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..core import Frontdesk
from ..storage.audit import AuditRecord
from ..storage.audit_search import AuditFilter, events_after, events_before
from ..storage.db import transaction
from ..wire import dumps
from .errors import Invalid
from .paging import Page, check_limit, decode_cursor, page_of
from .principals import Principal, record, require

__all__ = ["EXPORT_BATCH", "AuditEntry", "AuditQuery", "export_audit", "search_audit"]

# What the search answers: one event of the trail (never a secret: audit details hold none).
AuditEntry = AuditRecord
EXPORT_BATCH = 500


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """What to look for. ``event`` ending in ``*`` is a prefix (``admin.*``); times are seconds since the epoch,
    ``since`` included, ``until`` not."""

    event: str | None = None
    user_id: str | None = None
    client_id: str | None = None
    outcome: str | None = None
    since: int | None = None
    until: int | None = None

    def as_filter(self) -> AuditFilter:
        for name, value, longest in (
            ("event", self.event, 65),
            ("user_id", self.user_id, 64),
            ("client_id", self.client_id, 255),
            ("outcome", self.outcome, 16),
        ):
            if value is not None and (len(value) > longest or "\x00" in value):
                raise Invalid(f"{name} is at most {longest} characters")
        for name, moment in (("since", self.since), ("until", self.until)):
            if moment is not None and not 0 <= moment < 2**53:
                raise Invalid(f"{name} must be seconds since the epoch")
        prefix = self.event is not None and self.event.endswith("*")
        event = self.event[:-1] if prefix and self.event is not None else self.event
        return AuditFilter(event or None, prefix, self.user_id, self.client_id, self.outcome, self.since, self.until)


def _before(cursor: str | None) -> int | None:
    key = decode_cursor(cursor)
    if key is None:
        return None
    if not key.isdigit() or len(key) > 18:
        raise Invalid("cursor is not one this server handed out")
    return int(key)


def search_audit(
    fd: Frontdesk, by: Principal, query: AuditQuery, *, cursor: str | None = None, limit: int = 50
) -> Page[AuditEntry]:
    """Matching events, newest first; the cursor continues with older ones."""
    require(by, "audit.read")
    check_limit(limit)
    found = query.as_filter()
    with transaction(fd.engine, readonly=True) as conn:
        rows = events_before(conn, found, _before(cursor), limit + 1)
    return page_of(rows, limit, lambda e: str(e.id))


def export_audit(fd: Frontdesk, by: Principal, query: AuditQuery) -> Iterator[str]:
    """Every matching event as one JSON line each, oldest first. The export is audited before the first line, so
    a reader that stops early is on record too. Judged when called, read as iterated."""
    require(by, "audit.export")
    found = query.as_filter()
    with transaction(fd.engine) as conn:
        record(conn, by, "audit.exported", filters=_shown(query))
    return _lines(fd, found)


def _shown(query: AuditQuery) -> dict[str, object]:
    """The export's filters, as its audit event's detail."""
    return {
        name: value
        for name, value in (
            ("event", query.event),
            ("user_id", query.user_id),
            ("client_id", query.client_id),
            ("outcome", query.outcome),
            ("since", query.since),
            ("until", query.until),
        )
        if value is not None
    }


def _lines(fd: Frontdesk, found: AuditFilter) -> Iterator[str]:
    after = 0
    while True:
        with transaction(fd.engine, readonly=True) as conn:
            batch = events_after(conn, found, after, EXPORT_BATCH)
        for event in batch:
            yield dumps(event.as_dict(), sort_keys=True).decode() + "\n"
        if len(batch) < EXPORT_BATCH:
            return
        after = batch[-1].id
