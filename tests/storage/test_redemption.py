"""Spending a code or refresh token writes everything issued with it, or nothing: on PostgreSQL in one statement
in autocommit, on SQLite in the caller's IMMEDIATE transaction (storage/redemption.py)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text

from frontdesk.errors import TemporarilyUnavailable
from frontdesk.secret import digest
from frontdesk.storage import grants as storage_grants
from frontdesk.storage import redemption
from frontdesk.storage.db import now, transaction
from frontdesk.storage.grants import GrantRow
from frontdesk.storage.redemption import Redemption, Spent, new_refresh, session, spend
from frontdesk.storage.schema import AuditEvent, Grant, RefreshToken

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
    SQLite, which has no data-modifying CTEs, three statements in the caller's transaction."""
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
        assert seen == [("UPDATE", "Raw"), ("INSERT", "Raw"), ("INSERT", "Raw")]


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
