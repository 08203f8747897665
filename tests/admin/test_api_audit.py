"""The admin API's audit trail (admin/audit_search.py) on SQLite and PostgreSQL: searched by event (or a prefix),
person, client, outcome and time range, newest first with a cursor; exported as JSON lines, the export itself
audited."""

from __future__ import annotations

import json

from frontdesk.core import Frontdesk
from frontdesk.storage import audit
from frontdesk.storage.db import transaction

from .admin_api import Api, events


def _write(fd: Frontdesk, event: str, outcome: str = "success", **fields: str | None) -> None:
    with transaction(fd.engine) as conn:
        audit.record(conn, event, outcome, **fields)


async def test_search_filters_by_event_person_client_outcome_and_time(auditor: Api, fd: Frontdesk, clock):
    start = int(clock())
    _write(fd, "signin", "failure", user_id="u1")
    clock.advance(100)
    _write(fd, "signin", "success", user_id="u1")
    _write(fd, "token.issued", client_id="app", user_id="u1")
    _write(fd, "token.issued", client_id="other")

    async def found(**params: object) -> list[tuple[str, str]]:
        items = (await auditor.get("/audit", **params)).json()["items"]
        return [(e["event"], e["outcome"]) for e in items]

    assert await found(event="signin") == [("signin", "success"), ("signin", "failure")]
    assert await found(event="token.*") == [("token.issued", "success")] * 2
    assert await found(user_id="u1", outcome="failure") == [("signin", "failure")]
    assert await found(client_id="app") == [("token.issued", "success")]
    assert await found(event="signin", until=start + 50) == [("signin", "failure")]
    assert await found(event="signin", since=start + 50) == [("signin", "success")]
    refused = await auditor.get("/audit", since="yesterday")
    assert refused.status_code == 422
    assert "since" in refused.json()["error_description"]


async def test_search_pages_newest_first(auditor: Api, fd: Frontdesk):
    for n in range(5):
        _write(fd, "probe", step=str(n))
    seen: list[str] = []
    cursor = None
    while True:
        params = {"event": "probe", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await auditor.get("/audit", **params)).json()
        seen += [e["detail"]["step"] for e in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == ["4", "3", "2", "1", "0"]
    assert (await auditor.get("/audit", cursor="not-ours!")).status_code == 422


async def test_the_export_is_json_lines_oldest_first_and_audited(auditor: Api, fd: Frontdesk):
    for n in range(3):
        _write(fd, "probe", step=str(n))
    response = await auditor.get("/audit/export", event="probe")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [e["detail"]["step"] for e in lines] == ["0", "1", "2"]
    [exported] = events(fd, "admin.audit.exported")
    assert exported.detail["by"].startswith("token:")
    assert exported.detail["filters"] == {"event": "probe"}


async def test_an_export_larger_than_a_batch_is_whole(auditor: Api, fd: Frontdesk, monkeypatch):
    """The export reads in batches: every event once, in order, across batch boundaries."""
    from frontdesk.admin import audit_search

    monkeypatch.setattr(audit_search, "EXPORT_BATCH", 2)
    for n in range(5):
        _write(fd, "probe", step=str(n))
    response = await auditor.get("/audit/export", event="probe")
    assert [json.loads(line)["detail"]["step"] for line in response.text.splitlines()] == ["0", "1", "2", "3", "4"]
