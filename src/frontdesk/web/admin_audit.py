"""The admin console's audit trail: search by event (``admin.*`` for a prefix), person, client, outcome and time
range, newest first a page at a time, and download what matches as JSON lines (oldest first). The search, its
limits and the export's own audit event are ``admin.audit_search``'s; a person is found by username through
``admin.people``.

Times are typed and shown in UTC: a page without script cannot know the reader's zone (``pages.when``)."""

from __future__ import annotations

import calendar
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..admin import audit_search, people
from ..admin.errors import AdminError, Invalid
from ..core import Frontdesk
from ..protocol.forms import Params
from .admin_gate import Admin, admin_of, render, shown
from .authorize import posted_form

__all__ = ["OUTCOMES", "audit", "export"]

HERE = "/admin/audit"
PAGE_SIZE = 50
OUTCOMES = ("success", "failure", "revoked", "throttled", "granted", "denied", "refused", "expired")
_TIME = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends


@dataclass(frozen=True, slots=True)
class Filters:
    """The search form as typed: shown back on the page, and turned into the service's query."""

    event: str = ""
    person: str = ""  # a username
    user_id: str = ""  # or a person's id (the link from a person's page)
    client_id: str = ""
    outcome: str = ""
    since: str = ""
    until: str = ""

    @classmethod
    def of(cls, params: Mapping[str, str]) -> Filters:
        return cls(**{name: params.get(name, "").strip() for name in cls.__slots__})

    def fields(self) -> dict[str, str]:
        """The filters that are set, for a link to the next page or the export form."""
        return {name: getattr(self, name) for name in self.__slots__ if getattr(self, name)}


def _moment(name: str, text: str) -> int | None:
    if not text:
        return None
    try:
        return calendar.timegm(time.strptime(text[:16], _TIME))
    except ValueError:
        raise Invalid(f"the {name} time must be a date and time such as 2026-01-31T09:00") from None


def _query(fd: Frontdesk, admin: Admin, f: Filters) -> audit_search.AuditQuery:
    user_id = f.user_id or None
    if f.person:
        user_id = people.find_person(fd, admin.principal, f.person).id
    return audit_search.AuditQuery(
        event=f.event or None,
        user_id=user_id,
        client_id=f.client_id or None,
        outcome=f.outcome or None,
        since=_moment("from", f.since),
        until=_moment("until", f.until),
    )


def _audit(fd: Frontdesk, admin: Admin, f: Filters, cursor: str | None) -> Response:
    context: dict[str, Any] = {"filters": f, "outcomes": OUTCOMES}
    try:
        found = audit_search.search_audit(fd, admin.principal, _query(fd, admin, f), cursor=cursor, limit=PAGE_SIZE)
    except AdminError as exc:
        return render(fd, admin, "admin/audit.html", HERE, exc.status, events=(), message=exc.description, **context)
    return render(fd, admin, "admin/audit.html", HERE, events=found.items, next=found.next_cursor, **context)


async def audit(request: Request) -> Response:
    filters = Filters.of(request.query_params)
    cursor = request.query_params.get("cursor") or None
    return await shown(request, lambda fd, admin: _audit(fd, admin, filters, cursor))


def _export(fd: Frontdesk, admin: Admin, form: Params) -> Response:
    filters = Filters.of(form)
    try:
        lines = audit_search.export_audit(fd, admin.principal, _query(fd, admin, filters))
    except AdminError:
        return _audit(fd, admin, filters, None)  # the search page, saying what was wrong with the filters
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(admin.visitor.at))
    return StreamingResponse(
        lines,  # read from the database a batch at a time as the download goes (admin.audit_search)
        media_type="application/x-ndjson; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="frontdesk-audit-{stamp}.jsonl"',
            "Cache-Control": "no-store",
        },
    )


async def export(request: Request) -> Response:
    """POST /admin/audit/export: the matching events as a JSON lines download. A form with the console's CSRF token
    (the export is itself audited), open to every admin role, auditors included."""
    admin = await admin_of(request)
    if isinstance(admin, Response):
        return admin
    fd: Frontdesk = request.app.state.fd
    form = await posted_form(request, fd, admin.csrf(fd), "Reload the page and try again.")
    if isinstance(form, Response):
        return form
    return await run_in_threadpool(_export, fd, admin, form)
