"""Spending a code or refresh token writes everything issued with it, or nothing: on PostgreSQL in one statement
in autocommit, on SQLite in the caller's IMMEDIATE transaction (storage/redemption.py)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text

from frontdesk.errors import TemporarilyUnavailable
from frontdesk.secret import digest
from frontdesk.storage import audit, redemption
from frontdesk.storage import grants as storage_grants
from frontdesk.storage.db import after_commit, now, raw_transaction, run, transaction
from frontdesk.storage.grants import GrantRow
from frontdesk.storage.redemption import Redemption, Spent, new_refresh, session, spend
from frontdesk.storage.schema import AuditEvent, Grant, RefreshToken
from frontdesk.storage.waits import Busy, no_wait

from .helpers import race, stored_grant


def _grant(fd) -> tuple[GrantRow, str, str]:
    return stored_grant(fd, ("openid", "offline_access"))


def _writes(grant: GrantRow, *, refresh: bool = True, bind: str | None = None, event: str = "token.refreshed"):
    at = now()
    token, expires_at = new_refresh(grant, at, 600) if refresh else (None, 0)
    row = (at, event, "success", "c", "u", "192.0.2.1", json.dumps({"grant_id": grant.id}))
    return Redemption(grant, "c", row, token, expires_at, bind)


def _spend(fd, spent: Spent, secret: str, writes: Redemption) -> bool:
    with session(fd.engine) as db:
        return spend(db, spent, secret, now(), writes)


def _live_refresh(fd, grant: GrantRow) -> list[str]:
    with transaction(fd.engine) as conn:
        return list(
            conn.execute(
                select(RefreshToken.digest).where(RefreshToken.grant_id == grant.id, RefreshToken.consumed_at.is_(None))
            ).scalars()
        )


def _events(fd, event: str) -> int:
    with transaction(fd.engine) as conn:
        return len(conn.execute(select(AuditEvent.id).where(AuditEvent.event == event)).all())


def test_a_rotation_writes_the_new_token_and_its_event_with_the_spend(fd):
    """The old refresh token is spent, the new one lives, and the audit event is written, together."""
    grant, _, refresh = _grant(fd)
    writes = _writes(grant)
    assert _spend(fd, "refresh", refresh, writes)
    assert writes.refresh is not None
    assert _live_refresh(fd, grant) == [digest(writes.refresh)]
    assert _events(fd, "token.refreshed") == 1
    with transaction(fd.engine) as conn:
        expires_at = conn.execute(
            select(RefreshToken.expires_at).where(RefreshToken.digest == digest(writes.refresh))
        ).scalar_one()
    assert expires_at == writes.refresh_expires_at


def test_a_second_spend_writes_nothing(fd):
    """A replayed refresh token is refused, and neither a token nor an event is written for it."""
    grant, _, refresh = _grant(fd)
    first = _writes(grant)
    assert _spend(fd, "refresh", refresh, first)
    assert not _spend(fd, "refresh", refresh, _writes(grant))
    assert first.refresh is not None
    assert _live_refresh(fd, grant) == [digest(first.refresh)]
    assert _events(fd, "token.refreshed") == 1


def test_a_code_is_spent_with_or_without_a_refresh_token(fd):
    """A code redemption writes a refresh token only when one is issued; its event always."""
    grant, code, refresh = _grant(fd)
    assert _spend(fd, "code", code, _writes(grant, refresh=False, event="token.issued"))
    assert _live_refresh(fd, grant) == [digest(refresh)]  # the one minted with the grant, and no other
    assert _events(fd, "token.issued") == 1
    assert not _spend(fd, "code", code, _writes(grant, event="token.issued"))
    assert _live_refresh(fd, grant) == [digest(refresh)]
    assert _events(fd, "token.issued") == 1


def test_the_dpop_binding_is_written_once(fd):
    """RFC 9449 §5: the first binding of a grant stays; a later one does not replace it."""
    grant, code, refresh = _grant(fd)
    assert _spend(fd, "code", code, _writes(grant, bind="first-jkt", event="token.issued"))
    assert _spend(fd, "refresh", refresh, _writes(grant, bind="second-jkt"))
    with transaction(fd.engine) as conn:
        assert conn.execute(select(Grant.dpop_jkt).where(Grant.id == grant.id)).scalar_one() == "first-jkt"


def test_a_refresh_token_raced_by_eight_engines_issues_once(fd):
    """Of eight processes spending one refresh token at once, one wins, and one token and one event are written."""
    grant, _, refresh = _grant(fd)

    def attempt(engine) -> bool:
        writes = _writes(grant)
        with session(engine) as db:
            return spend(db, "refresh", refresh, now(), writes)

    results = race(fd, attempt)
    assert sorted(results) == [False] * 7 + [True]
    assert len(_live_refresh(fd, grant)) == 1
    assert _events(fd, "token.refreshed") == 1


def test_the_writes_are_one_statement_on_postgresql_and_one_transaction_on_sqlite(fd, monkeypatch):
    """On PostgreSQL the spend and its writes are one statement sent alone (no BEGIN, no COMMIT round trips); on
    SQLite, which has no data-modifying CTEs, two statements in the caller's transaction, and the audit event after
    its commit."""
    grant, _, refresh = _grant(fd)
    seen: list[tuple[str, str]] = []

    def spy(module, name):
        real = getattr(module, name)

        def call(db, sql, params=()):
            seen.append((sql.split()[0], type(db).__name__))
            return real(db, sql, params)

        monkeypatch.setattr(module, name, call)

    for module in (storage_grants, redemption):
        spy(module, "run")
    spy(redemption, "fetch")
    assert _spend(fd, "refresh", refresh, _writes(grant))
    if fd.engine.dialect.name == "postgresql":
        assert seen == [("WITH", "Raw")]
    else:
        assert seen == [("UPDATE", "Raw"), ("INSERT", "Raw")]
        assert _events(fd, "token.refreshed") == 1


def _rolled_back(fd, spent: Spent, secret: str, writes: Redemption) -> None:
    """Spend in a transaction that then fails: nothing of it may last."""
    with session(fd.engine) as db:
        assert spend(db, spent, secret, now(), writes)
        raise RuntimeError("after the spend")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_on_sqlite_the_event_waits_for_the_audit_writer_and_only_for_a_commit(fd, monkeypatch):
    """On SQLite, under a running audit writer, the event is not written in the spend's transaction but queued once
    that has committed, for the writer's next batch; a spend rolled back queues nothing."""
    grant, code, refresh = _grant(fd)
    # The batch is written by hand below: a round of the writer's own (every 0.2 s) could come between the spend
    # and the first check on a busy machine, and write the event before the test looks for it in the queue.
    monkeypatch.setattr(audit, "MAX_DELAY", 3600.0)
    writer = audit.start_writer(fd.engine)
    try:
        assert _spend(fd, "refresh", refresh, _writes(grant))
        assert _events(fd, "token.refreshed") == 0
        assert audit.queued(fd.engine) == 1
        with pytest.raises(RuntimeError, match="after the spend"):
            _rolled_back(fd, "code", code, _writes(grant, event="token.issued"))
        assert audit.queued(fd.engine) == 1
        writer.flush()
        assert (_events(fd, "token.refreshed"), _events(fd, "token.issued")) == (1, 0)
    finally:
        audit.stop_writer(fd.engine)
    assert _spend(fd, "code", code, _writes(grant, event="token.issued"))  # the rollback spent nothing
    assert _events(fd, "token.issued") == 1  # no writer: written in the spend's transaction


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_an_event_whose_writer_stopped_after_the_commit_is_written_or_logged_never_raised(fd, monkeypatch, caplog):
    """The tokens are issued once the spend commits: an event that finds its writer closed is written then, and if
    that fails too it is logged; the redemption still succeeds (a client retrying its spent code would be taken for
    a thief)."""
    grant, code, refresh = _grant(fd)
    audit.start_writer(fd.engine)

    def stop_then_spend(secret: str, spent: Spent, event: str) -> bool:
        with session(fd.engine) as db:
            won = spend(db, spent, secret, now(), _writes(grant, event=event))
            audit.stop_writer(fd.engine)  # between the spend and its commit: a shutdown
            return won

    assert stop_then_spend(refresh, "refresh", "token.refreshed")
    assert _events(fd, "token.refreshed") == 1

    def full(*_args, **_kwargs):
        raise TemporarilyUnavailable("the service is temporarily unavailable", detail="database or disk is full")

    audit.start_writer(fd.engine)
    monkeypatch.setattr(audit, "transaction", full)
    assert stop_then_spend(code, "code", "token.issued")
    assert "audit event token.issued not written" in caplog.text
    monkeypatch.undo()
    assert _events(fd, "token.issued") == 0


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_on_the_loop_an_event_that_finds_the_lock_taken_after_its_writer_stopped_is_logged(fd, monkeypatch, caplog):
    """On the event loop (``no_wait``) the write of an event whose writer stopped between spend and commit may find
    SQLite's lock taken: ``Busy`` is logged like any failure there, never raised (raised, it would make the loop run
    the redemption again, and its spent code would be taken for a replay)."""
    grant, _, refresh = _grant(fd)
    audit.start_writer(fd.engine)

    def locked(*_args, **_kwargs):
        raise Busy

    monkeypatch.setattr(audit, "transaction", locked)
    with no_wait(), session(fd.engine) as db:
        assert spend(db, "refresh", refresh, now(), _writes(grant))
        audit.stop_writer(fd.engine)  # between the spend and its commit: a shutdown
    assert "audit event token.refreshed not written" in caplog.text
    monkeypatch.undo()
    assert _live_refresh(fd, grant) != []  # the spend committed: its new token is there


def test_what_follows_a_commit_runs_after_it_and_never_after_a_rollback(fd):
    """``after_commit``: the hook of a transaction that commits runs once its rows are there to read; that of one
    that rolls back never runs."""
    grant, _, refresh = _grant(fd)
    seen: list[list[str]] = []
    with raw_transaction(fd.engine) as db:
        run(db, "UPDATE refresh_tokens SET consumed_at = ? WHERE digest = ?", (now(), digest(refresh)))
        after_commit(db, lambda: seen.append(_live_refresh(fd, grant)))
        assert seen == []
    assert seen == [[]]

    def rolled_back() -> None:
        with raw_transaction(fd.engine) as db:
            after_commit(db, lambda: seen.append(["rolled back"]))
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        rolled_back()
    assert seen == [[]]


@pytest.mark.parametrize("backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_a_connection_lost_in_a_redemption_is_temporarily_unavailable_and_spends_nothing(fd):
    """A PostgreSQL connection that dies between the read and the spend answers 503, not 500; the token is unspent
    and the next redemption, on a connection of its own, spends it. (A lost server connection is PostgreSQL's:
    SQLite is a file in the process.)"""
    grant, _, refresh = _grant(fd)

    def spend_on_a_lost_connection() -> None:
        with session(fd.engine) as db:
            with transaction(fd.engine) as conn:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": db.driver.info.backend_pid})
            spend(db, "refresh", refresh, now(), _writes(grant))

    with pytest.raises(TemporarilyUnavailable):
        spend_on_a_lost_connection()
    assert _live_refresh(fd, grant) == [digest(refresh)]
    assert _spend(fd, "refresh", refresh, _writes(grant))
