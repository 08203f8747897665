"""The engine, migrations under a lock, and the translation of database failures at the storage boundary."""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from ..errors import TemporarilyUnavailable

__all__ = ["migrate", "normalise_url", "now", "open_engine", "serialize", "transaction"]

MIGRATIONS = Path(__file__).with_name("migrations")
# Any constant works; it only has to be the same for every frontdesk process on one database.
_PG_MIGRATION_LOCK = 0x66726F6E74
KEY_RING_LOCK = 0x66726F6E75


def now() -> int:
    return int(time.time())


def normalise_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here; SQLAlchemy would otherwise pick psycopg2."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def open_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
            # pysqlite's own transaction handling defers BEGIN; take control so that every write transaction
            # begins IMMEDIATE and two writers queue on the lock instead of failing on upgrade.
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            # Reads begin DEFERRED: under WAL they never wait for a writer, and a read made while this process
            # holds the write lock (the key ring, a client lookup) does not deadlock against it.
            readonly = conn.get_execution_options().get("frontdesk_readonly", False)
            conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


@contextlib.contextmanager
def transaction(engine: Engine, *, readonly: bool = False) -> Iterator[Connection]:
    """One transaction; a lost or refused database connection becomes ``temporarily_unavailable``."""
    try:
        with engine.connect() as conn:
            if readonly:
                conn = conn.execution_options(frontdesk_readonly=True)
            with conn.begin():
                yield conn
    except OperationalError as exc:
        raise TemporarilyUnavailable("the service is temporarily unavailable", detail=str(exc.orig)) from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise TemporarilyUnavailable("the service is temporarily unavailable", detail=str(exc.orig)) from exc
        raise


def serialize(conn: Connection, lock: int) -> None:
    """Take a transaction-wide lock so that writers of a whole set of rows (the key ring) go one at a time.

    Row locks cannot do this: a concurrent transaction never sees the rows the first one inserted. On PostgreSQL
    an advisory lock does; on SQLite every write transaction already begins IMMEDIATE and holds the database lock.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock})


def _alembic_config(conn: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


@contextlib.contextmanager
def _sqlite_lock(engine: Engine) -> Iterator[None]:
    path = make_url(str(engine.url)).database
    if not path or path == ":memory:":
        yield
        return
    with open(f"{path}.migrate.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; processes starting together take turns (DESIGN §3)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            try:
                conn.commit()
                command.upgrade(_alembic_config(conn), "head")
                conn.commit()
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
                conn.commit()
        return
    with _sqlite_lock(engine), engine.connect() as conn:
        command.upgrade(_alembic_config(conn), "head")
        conn.commit()
