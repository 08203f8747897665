"""The purge removes clients that registered themselves or came from a metadata document once nobody used them for
``registration.unused_client_days`` (default 30), with everything issued to them; the operator's clients stay
(issue 13, item 1; oauth/housekeeping.py)."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from sqlalchemy import func, select

from frontdesk.cli import upkeep
from frontdesk.core import Frontdesk
from frontdesk.oauth import housekeeping
from frontdesk.oauth.housekeeping import purge, purge_unused_clients
from frontdesk.storage.db import now, transaction
from frontdesk.storage.schema import AuditEvent, Consent, Grant, RefreshToken, SessionGrant
from test_self_registered_clients import authorize_params, refresh, tokens, unvetted

DAY = 86400


def unused_after(fd: Frontdesk, days: int) -> None:
    fd.settings = replace(fd.settings, registration=replace(fd.settings.registration, unused_client_days=days))


def exists(fd: Frontdesk, client_id: str) -> bool:
    return fd.clients.get(client_id, cached=False) is not None


def rows_of(fd: Frontdesk, client_id: str) -> dict[str, int]:
    """What is stored for the client: grants and what hangs off them, and consents."""
    with transaction(fd.engine, readonly=True) as conn:
        grants = select(Grant.id).where(Grant.client_id == client_id).scalar_subquery()

        def count(model, where) -> int:
            return int(conn.execute(select(func.count()).select_from(model).where(where)).scalar_one())

        return {
            "grants": count(Grant, Grant.client_id == client_id),
            "refresh_tokens": count(RefreshToken, RefreshToken.grant_id.in_(grants)),
            "session_grants": count(SessionGrant, SessionGrant.grant_id.in_(grants)),
            "consents": count(Consent, Consent.client_id == client_id),
        }


def purged_events(fd: Frontdesk) -> list[str | None]:
    with transaction(fd.engine, readonly=True) as conn:
        query = select(AuditEvent.client_id).where(AuditEvent.event == "client.purged").order_by(AuditEvent.id)
        return list(conn.execute(query).scalars())


async def test_an_unused_self_registered_client_goes_with_its_grants_and_the_operators_stay(
    fd, http, browser, clock, confidential
):
    unused_after(fd, 7)
    app = unvetted(fd)
    await tokens(http, browser, app)
    await browser.authorize(**authorize_params(confidential))
    before = rows_of(fd, app.client_id)
    assert before["grants"] == before["refresh_tokens"] == before["session_grants"] == before["consents"] == 1
    clock.advance(8 * DAY)
    purged = purge(fd)
    assert purged.deleted["clients"] == 1
    assert not exists(fd, app.client_id)
    assert rows_of(fd, app.client_id) == {"grants": 0, "refresh_tokens": 0, "session_grants": 0, "consents": 0}
    assert exists(fd, confidential.client_id)
    kept = rows_of(fd, confidential.client_id)  # its session's row ended with the session; the rest stays
    assert (kept["grants"], kept["consents"]) == (1, 1)
    assert purged_events(fd) == [app.client_id]


async def test_a_client_counts_as_unused_from_its_last_token(fd, http, browser, clock):
    unused_after(fd, 7)
    app = unvetted(fd)
    issued = await tokens(http, browser, app)
    clock.advance(6 * DAY)
    await refresh(http, app, issued["refresh_token"])
    clock.advance(4 * DAY)  # ten days after it registered, four after its last token
    assert purge(fd).deleted["clients"] == 0
    assert exists(fd, app.client_id)
    clock.advance(4 * DAY)
    assert purge(fd).deleted["clients"] == 1
    assert not exists(fd, app.client_id)


def test_never_used_clients_nobody_vetted_go_after_thirty_days_by_default(fd, clock, confidential):
    own, document = unvetted(fd), unvetted(fd, "document")
    clock.advance(29 * DAY)
    assert purge(fd).deleted["clients"] == 0
    clock.advance(2 * DAY)
    assert purge(fd).deleted["clients"] == 2
    assert not exists(fd, own.client_id)
    assert not exists(fd, document.client_id)
    clock.advance(365 * DAY)
    purge(fd)
    assert exists(fd, confidential.client_id)  # the operator's: never


def test_unused_client_days_zero_keeps_them(fd, clock):
    unused_after(fd, 0)
    app = unvetted(fd)
    clock.advance(365 * DAY)
    assert purge(fd).deleted["clients"] == 0
    assert exists(fd, app.client_id)


def test_a_pass_deletes_a_bounded_number_and_says_it_is_behind(fd, clock, monkeypatch):
    apps = [unvetted(fd) for _ in range(5)]
    clock.advance(31 * DAY)
    assert purge_unused_clients(fd, now(), batch=2, max_batches=1) == 2
    monkeypatch.setattr(housekeeping, "CLIENT_BATCH", 2)
    monkeypatch.setattr(housekeeping, "CLIENT_BATCHES", 1)
    first = purge(fd)
    assert first.deleted["clients"] == 2
    assert first.behind is True
    last = purge(fd)
    assert last.deleted["clients"] == 1
    assert last.behind is False
    assert not any(exists(fd, a.client_id) for a in apps)
    assert len(purged_events(fd)) == 5


def test_frontdesk_purge_prints_how_many_clients_went(fd, clock, monkeypatch, capsys):
    unvetted(fd)
    clock.advance(31 * DAY)
    monkeypatch.setattr(upkeep, "open_for", lambda _: fd)
    upkeep.cmd_purge(argparse.Namespace(json=False))
    assert "clients\t1" in capsys.readouterr().out.splitlines()
    unvetted(fd)
    clock.advance(31 * DAY)
    upkeep.cmd_purge(argparse.Namespace(json=True))
    assert json.loads(capsys.readouterr().out)["clients"] == 1
