"""The engine, migrations under a lock, and the translation of database failures at the storage boundary."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.pool import PoolProxiedConnection

from ..config import ConfigError
from ..errors import TemporarilyUnavailable
from . import waits
from .sqlite_file import owner_only
from .waits import BUSY_TIMEOUT_MS

__all__ = [
    "DB",
    "Raw",
    "after_commit",
    "clock",
    "fetch",
    "migrate",
    "normalise_url",
    "now",
    "on_revocation_here",
    "open_engine",
    "raw_transaction",
    "revoking",
    "run",
    "run_many",
    "serialize",
    "transaction",
]

log = logging.getLogger("frontdesk.storage")
MIGRATIONS = Path(__file__).with_name("migrations")
# Any constant works; it only has to be the same for every frontdesk process on one database.
_PG_MIGRATION_LOCK = 0x66726F6E74
KEY_RING_LOCK = 0x66726F6E75
PING_IDLE = 1.0  # seconds a pooled PostgreSQL connection may sit unused before it is pinged at checkout


# The wall clock behind ``now``: every lifetime, expiry and timestamp frontdesk stores or checks is read through it,
# so that a test can move time forward (tests/conftest.py ``clock``) instead of sleeping.
clock: Callable[[], float] = time.time


def now() -> int:
    return int(clock())


def normalise_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here; SQLAlchemy would otherwise pick psycopg2."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def open_engine(url: str, pool_size: int = 20) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:" and not path.startswith("file:"):
            try:
                owner_only(path)
            except OSError as exc:
                raise ConfigError(f"cannot create the database {path}: {exc.strerror or exc}") from None
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cur.close()
            # pysqlite's own transaction handling defers BEGIN; take control so that every write transaction
            # begins IMMEDIATE and two writers queue on the lock instead of failing on upgrade.
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            # Reads begin DEFERRED: under WAL they never wait for a writer, and a read made while this process
            # holds the write lock (the key ring, a client lookup) does not deadlock against it.
            readonly = conn.get_execution_options().get("frontdesk_readonly", False)
            waits.busy_timeout(conn.connection, BUSY_TIMEOUT_MS)  # one used under ``no_wait`` last may not wait
            conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

        return engine
    # At most ``pool_size`` connections a process (``database_pool_size``, 20 by default), all kept once opened: one
    # over the pool size was closed on return and opened again for the next request (a server process forked, a
    # ping, psycopg's prepared statements lost), about every other refresh at 32 requests in flight (BENCHMARKS.md).
    engine = create_engine(url, pool_size=pool_size, max_overflow=0)
    dbapi_error = engine.dialect.loaded_dbapi.Error

    # Pessimistic disconnect handling, as pool_pre_ping, but only for a connection idle for PING_IDLE seconds: a ping
    # at every checkout is a round trip per statement on the token paths. A connection that dies in use fails its
    # statement (a 503) and is invalidated, by SQLAlchemy or by ``raw_transaction``; one idle through an outage is
    # pinged and replaced before it is used.
    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("frontdesk_checkin", 0.0) < PING_IDLE:
            return
        try:  # in autocommit: BEGIN, SELECT 1, ROLLBACK were three round trips, and the ROLLBACK dropped psycopg's
            dbapi_conn.autocommit = True  # prepared statements; a connection that fails here is dropped
            dbapi_conn.execute("SELECT 1")
            dbapi_conn.autocommit = False
        except dbapi_error as exc:
            raise DisconnectionError(str(exc)) from exc  # the pool drops it and checks out another

    @event.listens_for(engine, "checkin")
    def _stamp(_dbapi_conn: Any, record: Any) -> None:
        record.info["frontdesk_checkin"] = time.monotonic()

    return engine


# What a transaction that revokes a grant or a token notes on itself (``revoking``), so that once it has committed
# this process drops the answers it keeps at once (oauth/memory.py) rather than at its listener's next read: other
# processes learn it from the triggers of migration 0016 (storage/notify.py), within ``notify.BOUND``.
_REVOKES = "frontdesk_revokes"
_COMMITTED = "frontdesk_after_commit"
_revocation_hooks: weakref.WeakKeyDictionary[Engine, Callable[[], None]] = weakref.WeakKeyDictionary()


def revoking(db: Connection | Raw) -> None:
    """This transaction revokes: after its commit this process's revocation answers go (RFC 7009 §2.1: at once)."""
    (db.known if isinstance(db, Raw) else db.info)[_REVOKES] = True


def after_commit(db: Raw, hook: Callable[[], None]) -> None:
    """Call ``hook`` once this ``raw_transaction`` has committed (never if it rolls back): to queue the audit event
    of what it wrote (storage/audit.py ``record_after``)."""
    db.known.setdefault(_COMMITTED, []).append(hook)


def on_revocation_here(engine: Engine, hook: Callable[[], None] | None) -> None:
    """Call ``hook`` after each commit of a transaction of this process that revoked (None: no longer)."""
    if hook is None:
        _revocation_hooks.pop(engine, None)
    else:
        _revocation_hooks[engine] = hook


def _revoked_here(engine: Engine) -> None:
    hook = _revocation_hooks.get(engine)
    if hook is not None:
        hook()


@contextlib.contextmanager
def transaction(engine: Engine, *, readonly: bool = False) -> Iterator[Connection]:
    """One transaction; a lost or refused database connection becomes ``temporarily_unavailable``."""
    waits.may_use(engine)
    try:
        with engine.connect() as conn:
            if readonly:
                conn = conn.execution_options(frontdesk_readonly=True)
            try:
                with conn.begin():
                    yield conn
                revoked = conn.info.get(_REVOKES, False)
            finally:
                conn.info.pop(_REVOKES, None)  # the DBAPI connection's: it outlives this transaction in the pool
        if revoked:
            _revoked_here(engine)
    except OperationalError as exc:
        raise TemporarilyUnavailable("the service is temporarily unavailable", detail=str(exc.orig)) from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise TemporarilyUnavailable("the service is temporarily unavailable", detail=str(exc.orig)) from exc
        raise
    except engine.dialect.loaded_dbapi.OperationalError as exc:  # from a driver-level statement (``fetch``, ``run``)
        raise _unavailable(exc) from exc


# The statements of the token paths (a client lookup's rate-limit read, a refresh, a code redemption) run below
# SQLAlchemy: plain SQL on the driver's connection, in a SQLAlchemy transaction or in a ``raw_transaction``. Building,
# compiling and wrapping a Core statement, and opening a Core transaction, cost several times the statement itself
# on SQLite (see BENCHMARKS.md); these few are written out once instead, with ``?`` placeholders that become ``%s``
# for psycopg.
_PG_SQL: dict[str, str] = {}


class Raw:
    """A transaction on a pooled driver connection (``raw_transaction``); ``known``: what a statement of it read for
    a later one (``storage.grants.session_of``). Not pipelined: psycopg's pipeline mode cut a refresh's round trips
    from seven to four but cost ~150 µs more CPU per refresh than the waits it saved (BENCHMARKS.md)."""

    __slots__ = ("driver", "engine", "known")

    def __init__(self, engine: Engine, driver: Any) -> None:
        self.engine = engine
        self.driver = driver
        self.known: dict[str, Any] = {}

    @property
    def dialect(self) -> Dialect:  # as a SQLAlchemy Connection's: ``_sql`` and the stores read it off any ``DB``
        return self.engine.dialect


DB = Connection | Engine | Raw


def _sql(db: DB, sql: str) -> str:
    if db.dialect.paramstyle == "qmark":
        return sql
    pg = _PG_SQL.get(sql)
    if pg is None:
        pg = _PG_SQL[sql] = sql.replace("%", "%%").replace("?", "%s")
    return pg


def _driver(db: Connection | Raw) -> Any:
    return db.driver if isinstance(db, Raw) else db.connection.driver_connection


def _unavailable(exc: Exception) -> TemporarilyUnavailable:
    return TemporarilyUnavailable("the service is temporarily unavailable", detail=str(getattr(exc, "orig", exc)))


@contextlib.contextmanager
def raw_transaction(engine: Engine) -> Iterator[Raw]:
    """A write transaction for ``fetch`` and ``run`` alone, without SQLAlchemy's Connection around it: on SQLite
    it begins IMMEDIATE like every write transaction here; errors are translated as ``transaction`` does."""
    dbapi_error = engine.dialect.loaded_dbapi.OperationalError
    pooled, held = _checkout(engine)
    try:
        driver: Any = pooled.driver_connection
        try:
            if engine.dialect.name == "sqlite":
                waits.begin_immediate(pooled, dbapi_error)
            raw = Raw(engine, driver)
            yield raw
            driver.commit()
            if raw.known.get(_REVOKES):
                _revoked_here(engine)
            for hook in raw.known.get(_COMMITTED, ()):
                hook()
        except BaseException as exc:
            with contextlib.suppress(Exception):
                driver.rollback()
            if isinstance(exc, dbapi_error):
                if engine.dialect.name != "sqlite":
                    pooled.invalidate(exc)  # a lost server connection must not go back to the pool
                raise _unavailable(exc) from exc
            raise
    finally:
        if not held:
            pooled.close()


def _checkout(engine: Engine) -> tuple[PoolProxiedConnection, bool]:
    """A pooled connection, and whether it is the held one. On SQLite the main thread (the event loop's, where
    web/http.py runs the hot endpoints' reads and writes) keeps one connection checked out for as long as the
    pool lives, saving a checkout per statement; only that thread uses it, one statement or transaction at a time."""
    waits.may_use(engine)
    held = engine.dialect.name == "sqlite" and threading.current_thread() is threading.main_thread()
    if held:
        kept: PoolProxiedConnection | None = getattr(engine.pool, "_frontdesk_held", None)
        if kept is not None:
            return kept, True
    try:
        pooled = engine.raw_connection()
    except (OperationalError, engine.dialect.loaded_dbapi.OperationalError) as exc:
        raise _unavailable(exc) from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise _unavailable(exc) from exc
        raise
    if held:
        engine.pool._frontdesk_held = pooled  # type: ignore[attr-defined]  # replaced with the pool on dispose()
        if getattr(engine.pool, "_frontdesk_checkpointer", None) is not None:
            driver: Any = pooled.driver_connection
            driver.execute("PRAGMA wal_autocheckpoint = 0")  # a thread checkpoints instead (storage/wal.py)
    return pooled, held


def fetch(db: DB, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of one driver-level query: in ``db``'s transaction, or for an engine on a pooled connection of its own
    (one statement is atomic without a transaction around it)."""
    if isinstance(db, Engine):
        return _fetch_alone(db, sql, params)
    cursor = _driver(db).cursor()
    try:
        cursor.execute(_sql(db, sql), params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _fetch_alone(engine: Engine, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    dbapi_error = engine.dialect.loaded_dbapi.OperationalError
    pooled, held = _checkout(engine)
    # On PostgreSQL the statement runs in autocommit: psycopg would otherwise send BEGIN before it, and the pool a
    # ROLLBACK after it, three round trips for one read; the rollback also dropped psycopg's prepared statements,
    # so none of these was ever prepared. On SQLite the connection is in autocommit already (``open_engine``).
    driver: Any = pooled.driver_connection
    alone = engine.dialect.name != "sqlite"
    try:
        if alone:
            driver.autocommit = True
        else:
            waits.busy_timeout(pooled, BUSY_TIMEOUT_MS)  # a read may wait, as ever, on a connection that wrote no_wait
        cursor = pooled.cursor()
        try:
            cursor.execute(_sql(engine, sql), params)
            return list(cursor.fetchall())
        finally:
            cursor.close()  # on SQLite this also ends the read
    except dbapi_error as exc:
        if alone:
            pooled.invalidate(exc)
        raise _unavailable(exc) from exc
    finally:
        if alone and not driver.closed:
            driver.autocommit = False  # as the pool and every transaction expect it back
        if not held:
            pooled.close()  # back to the pool


def run(db: Connection | Raw, sql: str, params: Sequence[Any] = ()) -> int:
    """One driver-level statement in ``db``'s transaction; returns the rows it changed."""
    cursor = _driver(db).cursor()
    try:
        cursor.execute(_sql(db, sql), params)
        return int(cursor.rowcount)
    finally:
        cursor.close()


def run_many(db: Connection | Raw, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    cursor = _driver(db).cursor()
    try:
        cursor.executemany(_sql(db, sql), rows)
    finally:
        cursor.close()


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
    with os.fdopen(os.open(f"{path}.migrate.lock", os.O_WRONLY | os.O_CREAT, 0o600), "w") as fh:
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
