"""The migrations build what the models declare; revision 0006's index on audit events by person goes down and up
again and serves the account activity query (0020: only for events that name a person); revision 0007 leaves refresh
tokens one index by grant."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, event, inspect

from frontdesk.storage import alert_cursor
from frontdesk.storage.db import MIGRATIONS, now, open_engine, transaction
from frontdesk.storage.people import recent_events
from frontdesk.storage.schema import Base

PERSON_INDEX = "ix_audit_events_user_id_at"


@pytest.fixture
def engine(fd_database: str) -> Iterator[Engine]:
    """The test's own copy of the migrated template database, with no frontdesk on it."""
    engine = open_engine(fd_database)
    yield engine
    engine.dispose()


def alembic(conn: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def head() -> str | None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def audit_indexes(engine: Engine) -> dict[str, list[str | None]]:
    return {i["name"] or "": i["column_names"] for i in inspect(engine).get_indexes("audit_events")}


def test_migrations_build_what_the_models_declare(engine):
    """Alembic finds no difference at all between the migrated database and the models."""
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_audit_events_are_indexed_by_person_then_time(engine):
    """The migrated database has the (user_id, at) index on audit_events."""
    assert audit_indexes(engine)[PERSON_INDEX] == ["user_id", "at"]


def test_0006_downgrades_and_upgrades_again(engine):
    """Down to 0005 the index is gone and the rest of audit_events is untouched; up again it is back."""
    with engine.connect() as conn:
        command.downgrade(alembic(conn), "0005")
        conn.commit()
    assert revision(engine) == "0005"
    assert PERSON_INDEX not in audit_indexes(engine)
    assert audit_indexes(engine)["ix_audit_events_at"] == ["at"]
    with engine.connect() as conn:
        command.upgrade(alembic(conn), "head")
        conn.commit()
    assert revision(engine) == head()
    assert audit_indexes(engine)[PERSON_INDEX] == ["user_id", "at"]


def index_text(engine: Engine, name: str) -> str:
    """The statement that made the index ``name`` (SQLite), or its definition (PostgreSQL)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            found = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (name,))
        else:
            found = conn.exec_driver_sql("SELECT indexdef FROM pg_indexes WHERE indexname = %s", (name,))
        return str(found.scalar_one())


ADDRESS_INDEX = "ix_audit_events_ip_at"
PARTIAL = {PERSON_INDEX: "user_id IS NOT NULL", ADDRESS_INDEX: "'success'"}


def test_0020_leaves_unread_events_out_of_two_indexes_and_goes_down_and_up(engine):
    """The (user_id, at) index holds only events that name a person, the (ip, at) index only events that did not
    succeed; down to 0019 both hold every event, and up again they are partial once more."""
    for name, condition in PARTIAL.items():
        assert condition in index_text(engine, name), name
    with engine.connect() as conn:
        command.downgrade(alembic(conn), "0019")
        conn.commit()
    for name in PARTIAL:
        assert "WHERE" not in index_text(engine, name).upper(), name
    assert audit_indexes(engine)[PERSON_INDEX] == ["user_id", "at"]
    assert audit_indexes(engine)[ADDRESS_INDEX] == ["ip", "at"]
    with engine.connect() as conn:
        command.upgrade(alembic(conn), "head")
        conn.commit()
    for name, condition in PARTIAL.items():
        assert condition in index_text(engine, name), name
    assert audit_indexes(engine)[ADDRESS_INDEX] == ["ip", "at"]


def refresh_indexes(engine: Engine) -> dict[str, list[str | None]]:
    return {i["name"] or "": i["column_names"] for i in inspect(engine).get_indexes("refresh_tokens")}


def test_0007_leaves_one_index_by_grant_and_goes_down_and_up(engine):
    """Refresh tokens keep (grant_id, consumed_at) and lose the (grant_id) index it makes redundant; 0006 has both."""
    assert "ix_refresh_tokens_grant_id" not in refresh_indexes(engine)
    assert refresh_indexes(engine)["ix_refresh_tokens_grant_consumed"] == ["grant_id", "consumed_at"]
    with engine.connect() as conn:
        command.downgrade(alembic(conn), "0006")
        conn.commit()
    assert refresh_indexes(engine)["ix_refresh_tokens_grant_id"] == ["grant_id"]
    with engine.connect() as conn:
        command.upgrade(alembic(conn), "head")
        conn.commit()
    assert "ix_refresh_tokens_grant_id" not in refresh_indexes(engine)


def test_refresh_tokens_of_a_grant_are_found_by_index(engine):
    """Revoking a family, and the account's connected apps, find a grant's refresh tokens without a scan."""
    with engine.connect() as conn:
        found = plan(engine, conn, "SELECT digest FROM refresh_tokens WHERE grant_id = 'g'", ())
    assert "ix_refresh_tokens_grant_consumed" in found, found


def plan(engine: Engine, conn: Connection, statement: str, parameters: Any) -> str:
    if engine.dialect.name == "sqlite":
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        return "\n".join(str(row[-1]) for row in rows)
    # An empty table is cheapest to scan whole; without that way out the planner shows which index it prefers.
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    return "\n".join(str(row[0]) for row in conn.exec_driver_sql(f"EXPLAIN {statement}", parameters))


def test_the_activity_query_searches_one_persons_events_by_index(engine):
    """The account activity query looks up the person's events through (user_id, at), not every recent event."""
    statements: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        statements.append((statement, parameters))

    with transaction(engine, readonly=True) as conn:
        event.listen(engine, "before_cursor_execute", seen)
        try:
            recent_events(conn, "someone", now() - 30 * 86400)
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        [(statement, parameters)] = [s for s in statements if "audit_events" in s[0]]
        shown = plan(engine, conn, statement, parameters)
    assert PERSON_INDEX in shown, shown
    assert "TEMP B-TREE" not in shown, shown  # SQLite: the index order is the page's order, nothing to sort


@pytest.mark.parametrize(("column", "index"), [("user_id", PERSON_INDEX), ("ip", ADDRESS_INDEX)])
def test_the_alert_counts_of_failed_sign_ins_search_by_index(engine, monkeypatch, column, index):
    """The alert rules' counts of one person's, or one address's, failed sign-ins go through the partial index."""
    statements: list[tuple[str, Any]] = []
    fetch = alert_cursor.fetch

    def seen(conn: Any, statement: str, parameters: Any) -> Any:  # the count runs on the driver's connection
        statements.append((statement, parameters))
        return fetch(conn, statement, parameters)

    monkeypatch.setattr(alert_cursor, "fetch", seen)
    with transaction(engine, readonly=True) as conn:
        matches = (("signin.failed", ("failure", "throttled")),)
        alert_cursor.count_matching(conn, column, "someone", matches, since=now() - 3600, upto=10**9)
        [(statement, parameters)] = statements
        if engine.dialect.name != "sqlite":
            statement = statement.replace("?", "%s")  # as the driver-level helpers write it for psycopg
        shown = plan(engine, conn, statement, tuple(parameters))
    assert index in shown, shown
