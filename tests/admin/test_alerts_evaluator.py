"""The alert evaluator's reading of the audit trail, on SQLite and PostgreSQL: the cursor moves by compare-and-set,
so two evaluators racing (two processes) evaluate each event exactly once; a loser writes nothing; batches; and an
id gap (an audit event whose transaction has not committed yet) is waited for rather than skipped."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from frontdesk import asgi
from frontdesk.admin import alert_evaluator
from frontdesk.admin.alert_evaluator import GAP_WAIT, evaluate, ready
from frontdesk.admin.alert_rules import READ
from frontdesk.storage import alert_cursor, audit
from frontdesk.storage.alert_cursor import AUDIT, Passed
from frontdesk.storage.db import now, transaction

from .alerting import evaluate_all, events, raised, write


def _position(fd) -> int:
    with transaction(fd.engine, readonly=True) as conn:
        return alert_cursor.position(conn, AUDIT)[0]


def _last_event_id(fd) -> int:
    with transaction(fd.engine, readonly=True) as conn:
        return int(conn.execute(text("SELECT MAX(id) FROM audit_events")).scalar_one())


def _replays(fd, n: int) -> None:
    for i in range(n):
        write(fd, "code.replayed", "revoked", client_id=f"app-{i}", grant_id=f"g{i}")


def test_the_cursor_moves_only_from_where_it_was_read(fd):
    """Compare-and-set: a move from a position the cursor has left changes nothing."""
    seen = _position(fd)
    with transaction(fd.engine) as conn:
        assert alert_cursor.advance(conn, AUDIT, seen=seen, to=seen + 5, at=now()) is True
    with transaction(fd.engine) as conn:
        assert alert_cursor.advance(conn, AUDIT, seen=seen, to=seen + 9, at=now()) is False
    assert _position(fd) == seen + 5


def test_the_evaluator_reads_in_batches_up_to_the_end(fd, monkeypatch):
    """Twelve events in batches of five: three rounds, then none; the cursor at the last event."""
    monkeypatch.setattr(alert_evaluator, "BATCH", 5)
    for _ in range(12):
        write(fd, "token.issued", "success", client_id="app", grant_type="client_credentials")
    assert [evaluate(fd) for _ in range(4)] == [5, 5, 2, 0]
    assert _position(fd) == _last_event_id(fd)


def test_events_no_rule_reads_are_counted_not_read(fd):
    """Tokens issued, which no rule reads, are counted along the ids; the replay among them is read in full and
    evaluated; the cursor moves past all of them."""
    seen = _position(fd)
    issued, replayed = ("token.issued", "success"), ("refresh.reused", "revoked")
    for name, outcome in [issued, issued, issued, replayed, issued]:
        write(fd, name, outcome, client_id="app", grant_id="g1")
    with transaction(fd.engine, readonly=True) as conn:
        assert alert_cursor.span_after(conn, seen, 10) == (5, seen + 5)
        assert alert_cursor.span_after(conn, seen + 5, 10) == (0, seen + 5)
        (replay,) = alert_cursor.events_between(conn, seen, seen + 5, READ)
    assert (replay.id, replay.event, replay.detail) == (seen + 4, "refresh.reused", {"grant_id": "g1"})
    assert evaluate(fd) == 5
    assert _position(fd) == seen + 5
    (alert,) = raised(fd)
    assert alert.rule == "token.replayed"
    assert alert.key == "app"


def test_a_gap_in_the_ids_is_waited_for_while_young_and_passed_once_old(fd):
    """Ids with a hole: the count falls short of the distance, so the ids are read one by one. The batch stops
    before a hole whose next event is younger than GAP_WAIT (its transaction may be open still), and takes the
    event after it once that is older (the hole was a rolled-back transaction's)."""
    seen, at = _position(fd), now()
    write(fd, "token.issued", "success", client_id="app")
    write(fd, "token.issued", "success", client_id="app")
    write(fd, "refresh.reused", "revoked", client_id="app", grant_id="g1")
    with transaction(fd.engine) as conn:
        conn.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": seen + 2})
    assert evaluate(fd) == 1
    assert _position(fd) == seen + 1
    assert raised(fd) == []
    with transaction(fd.engine) as conn:
        conn.execute(text("UPDATE audit_events SET at = :at WHERE id = :id"), {"at": at - GAP_WAIT, "id": seen + 3})
    assert evaluate(fd) == 1
    assert _position(fd) == seen + 3
    (alert,) = raised(fd)
    assert alert.rule == "token.replayed"


def test_an_evaluator_that_loses_the_race_writes_nothing(fd, monkeypatch):
    """Another evaluator moves the cursor while this one reads the same batch: this one stores no alert of it."""
    other = asgi.open_frontdesk(fd.settings, run_migrations=False, ensure_keys=False)
    write(fd, "refresh.reused", "revoked", client_id="app", grant_id="g1")
    real = alert_cursor.events_between
    others: list[int] = []

    def read_while_another_evaluates(conn, after, upto, names):
        found = real(conn, after, upto, names)
        if not others:
            others.append(0)  # the other evaluator's own read must not start a third
            others[0] = evaluate(other)
        return found

    monkeypatch.setattr(alert_cursor, "events_between", read_while_another_evaluates)
    try:
        assert evaluate(fd) == 0
    finally:
        other.close()
    assert others == [1]
    (alert,) = raised(fd)
    assert alert.count == 1
    assert len(events(fd, "alert.raised")) == 1


def test_two_evaluators_racing_evaluate_each_event_exactly_once(fd, monkeypatch):
    """Two evaluators on their own connection pools (two processes), in threads, over 60 replays (and the 60
    ``alert.raised`` events they cause) in batches of 7: between them they evaluate each of the 120 events once,
    and each replay is one alert counted once."""
    monkeypatch.setattr(alert_evaluator, "BATCH", 7)
    first = _position(fd)
    _replays(fd, 60)
    other = asgi.open_frontdesk(fd.settings, run_migrations=False, ensure_keys=False)
    totals: dict[str, int] = {}
    start = threading.Barrier(2)

    def run(name: str, frontdesk) -> None:
        start.wait()
        done = 0
        while (n := evaluate(frontdesk)) or _position(frontdesk) < _last_event_id(frontdesk):
            done += n
        totals[name] = done

    threads = [threading.Thread(target=run, args=(n, f)) for n, f in (("one", fd), ("two", other))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        other.close()
    assert _last_event_id(fd) - first == 120
    assert sum(totals.values()) == 120, totals
    found = raised(fd)
    assert len(found) == 60
    assert {a.count for a in found} == {1}
    assert len(events(fd, "alert.raised")) == 60


def _event(id: int, at: int) -> Passed:
    return Passed(id, at)


def test_a_young_gap_stops_the_batch_and_an_old_one_does_not():
    """After event 2, event 4 without 3: evaluated up to 2 while 4 is younger than GAP_WAIT, all of it after."""
    at = 1_000_000
    young = [_event(1, at), _event(2, at), _event(4, at - GAP_WAIT + 1)]
    assert [e.id for e in ready(young, 0, at)] == [1, 2]
    old = [_event(1, at), _event(2, at), _event(4, at - GAP_WAIT)]
    assert [e.id for e in ready(old, 0, at)] == [1, 2, 4]
    assert ready([_event(7, at)], 5, at) == []  # a gap right after the cursor counts too


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_an_event_committed_after_a_later_one_is_still_evaluated(fd):
    """PostgreSQL hands out ids at insert and shows rows at commit: an event whose transaction is still open when a
    later one commits is evaluated once it commits, not skipped."""
    with transaction(fd.engine) as slow:
        audit.record(slow, "code.replayed", "revoked", client_id="slow", grant_id="g1")
        write(fd, "code.replayed", "revoked", client_id="fast", grant_id="g2")
        evaluate_all(fd)
        assert raised(fd) == []  # the fast one waits behind the gap
    evaluate_all(fd)
    assert sorted(a.key for a in raised(fd)) == ["fast", "slow"]
