"""Which migration the database is at, and which ones this code ships: what ``/readyz`` compares."""

from __future__ import annotations

import functools

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from .db import MIGRATIONS, transaction

__all__ = ["applied_revisions", "known_revisions", "shipped_revisions"]


@functools.cache
def _scripts() -> ScriptDirectory:
    # Read once: the migrations this process ships cannot change while it runs.
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config)


def shipped_revisions() -> frozenset[str]:
    """The heads of the migrations in this package: where ``migrate`` brings a database."""
    return frozenset(_scripts().get_heads())


@functools.cache
def known_revisions() -> frozenset[str]:
    """Every revision in this package, the heads and all before them."""
    return frozenset(script.revision for script in _scripts().walk_revisions())


def applied_revisions(engine: Engine) -> frozenset[str]:
    """The revisions the database says it is at (none for an empty database); a database that cannot be reached
    raises ``TemporarilyUnavailable``."""
    # Read here rather than through alembic's MigrationContext, which logs a line each time it is made.
    with transaction(engine, readonly=True) as conn:
        if not inspect(conn).has_table("alembic_version"):
            return frozenset()
        return frozenset(str(row[0]) for row in conn.execute(text("SELECT version_num FROM alembic_version")))
