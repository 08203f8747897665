"""The alerts as the operator handles them (admin/alerts.py, shared by the admin API, the console and the command
line), on SQLite and PostgreSQL: listing with filters and a cursor, acknowledging and resolving by a principal with
the role for it, each change audited; and the evaluator running in a served process from its lifespan."""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

from frontdesk import asgi
from frontdesk.admin import alert_evaluator, alerts
from frontdesk.admin.errors import Conflict, Forbidden, Invalid, NotFound
from frontdesk.admin.principals import CLI, Principal

from .alerting import evaluate_all, events, raised, write

AUDITOR = Principal("token", "t-audit", "auditor", "read-only token")
OPERATOR = Principal("person", "u-op", "operator", "Olive", ip="198.51.100.4")


def _replays(fd, n: int) -> None:
    for i in range(n):
        write(fd, "code.replayed", "revoked", client_id=f"app-{i}", grant_id=f"g{i}")
        evaluate_all(fd)


def test_the_listing_pages_through_every_alert_once(fd, clock):
    """Five alerts in pages of two: three pages, newest first, no alert twice, no cursor after the last."""
    for i in range(5):
        write(fd, "code.replayed", "revoked", client_id=f"app-{i}", grant_id=f"g{i}")
        evaluate_all(fd)
        clock.advance(1)
    keys: list[str] = []
    cursor = None
    for _ in range(3):
        page = alerts.list_alerts(fd, AUDITOR, cursor=cursor, limit=2)
        keys += [a.key for a in page.items]
        cursor = page.next_cursor
    assert cursor is None
    assert keys == [f"app-{i}" for i in reversed(range(5))]


def test_the_listing_filters_by_status_and_rule(fd):
    """Only the acknowledged ones, only one rule's: each filter narrows the listing."""
    _replays(fd, 3)
    write(fd, "vault.connection.refresh", "failure", connection="c1", reason="x")
    write(fd, "vault.connection.refresh", "failure", connection="c1", reason="x")
    write(fd, "vault.connection.refresh", "failure", connection="c1", reason="x")
    evaluate_all(fd)
    one = raised(fd, "token.replayed")[0]
    alerts.acknowledge(fd, OPERATOR, one.id)
    assert [a.id for a in alerts.list_alerts(fd, AUDITOR, status="acknowledged").items] == [one.id]
    assert [a.key for a in alerts.list_alerts(fd, AUDITOR, rule="vault.refresh.failing").items] == ["c1"]
    assert len(alerts.list_alerts(fd, AUDITOR, status="open", rule="token.replayed").items) == 2


@pytest.mark.parametrize(
    "bad",
    [{"status": "closed"}, {"rule": "no.such.rule"}, {"limit": 0}, {"limit": 201}, {"cursor": "%%%"}],
)
def test_bad_listing_parameters_are_refused(fd, bad):
    with pytest.raises(Invalid):
        alerts.list_alerts(fd, AUDITOR, **bad)


def test_acknowledge_then_resolve_names_who_did_it(fd):
    """Open → acknowledged → resolved, each step stored with its principal and audited as admin.alert.*."""
    _replays(fd, 1)
    (alert,) = raised(fd)
    acknowledged = alerts.acknowledge(fd, OPERATOR, alert.id)
    assert (acknowledged.status, acknowledged.acknowledged_by) == ("acknowledged", "person:u-op")
    resolved = alerts.resolve(fd, CLI, alert.id)
    assert (resolved.status, resolved.resolved_by) == ("resolved", "cli")
    assert resolved.resolved_at is not None
    assert acknowledged.acknowledged_at is not None
    (ack,) = events(fd, "admin.alert.acknowledged")
    assert (ack.detail["by"], ack.detail["alert"], ack.ip) == ("person:u-op", alert.id, "198.51.100.4")
    (done,) = events(fd, "admin.alert.resolved")
    assert done.detail["by"] == "cli"


def test_changes_that_do_not_apply_are_conflicts(fd):
    """Acknowledging one that is not open, or resolving one resolved already, is refused; an unknown id is not
    found."""
    _replays(fd, 1)
    (alert,) = raised(fd)
    alerts.resolve(fd, OPERATOR, alert.id)
    with pytest.raises(Conflict):
        alerts.acknowledge(fd, OPERATOR, alert.id)
    with pytest.raises(Conflict):
        alerts.resolve(fd, OPERATOR, alert.id)
    with pytest.raises(NotFound):
        alerts.alert(fd, AUDITOR, "0" * 32)
    assert alerts.alert(fd, AUDITOR, alert.id).status == "resolved"


def test_an_auditor_reads_but_does_not_change(fd):
    _replays(fd, 1)
    (alert,) = raised(fd)
    with pytest.raises(Forbidden):
        alerts.acknowledge(fd, AUDITOR, alert.id)
    with pytest.raises(Forbidden):
        alerts.resolve(fd, AUDITOR, alert.id)
    assert raised(fd)[0].status == "open"


def test_a_served_process_evaluates_from_its_lifespan(fd, monkeypatch):
    """Started with the app's lifespan (web/app.py), the evaluator raises the alert of a replay within a few rounds,
    and stops with the app."""
    monkeypatch.setattr(alert_evaluator, "EVERY", 0.05)
    with TestClient(asgi.served(fd)):
        write(fd, "refresh.reused", "revoked", client_id="app", grant_id="g1")
        deadline = time.monotonic() + 10
        while not raised(fd) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [a.rule for a in raised(fd)] == ["token.replayed"]
