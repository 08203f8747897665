"""two more cache generations: the catalog of resources and scopes, and failed attempts counted against a limit

Revision ID: 0019
Revises: 0018

A served process keeps the resource registry and the counts of its abuse limits in memory (oauth/memory.py), so that
a client_credentials or introspection request reads nothing from the store (issue 15). Like revocations (0016),
both must be dropped everywhere when they change anywhere:

- ``catalog``: every transaction that adds, changes or deletes a resource or a scope counts it here (triggers,
  whichever code path wrote: the admin API, the CLI, an upgrade) and on PostgreSQL notifies ``frontdesk_cache``;
- ``rate_limit``: a failed attempt counted against a limit (oauth/rate_limits.py ``count_failure``) counts it here in
  its own transaction, in code rather than by a trigger: the same table holds the per-request limits
  (``count_and_check``, e.g. every authorization request), whose writes must not empty the caches.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_TABLES = ("resources", "scopes")

# Statement-level: a bulk change of the catalog counts once per statement, and the notifications of one transaction
# fold into one (pg_notify delivers at commit).
_CATALOG_CHANGED = """
CREATE FUNCTION frontdesk_catalog_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE cache_generations SET generation = generation + 1 WHERE name = 'catalog';
    PERFORM pg_notify('frontdesk_cache', 'catalog');
    RETURN NULL;
END
$$
"""

_SQLITE_COUNT = "BEGIN UPDATE cache_generations SET generation = generation + 1 WHERE name = 'catalog'; END"


def upgrade() -> None:
    generations = sa.table("cache_generations", sa.column("name", sa.String), sa.column("generation", sa.BigInteger))
    op.bulk_insert(generations, [{"name": "catalog", "generation": 0}, {"name": "rate_limit", "generation": 0}])
    if op.get_context().dialect.name != "postgresql":
        for table in _TABLES:  # SQLite has no statement triggers: a row trigger for each change
            for change in ("INSERT", "UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_{change.lower()}_counted AFTER {change} ON {table} {_SQLITE_COUNT}")
        return
    op.execute(_CATALOG_CHANGED)
    for table in _TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION frontdesk_catalog_changed()"
        )


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        for table in _TABLES:
            for change in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER {table}_{change}_counted")
    else:
        for table in _TABLES:
            op.execute(f"DROP TRIGGER {table}_changed ON {table}")
        op.execute("DROP FUNCTION frontdesk_catalog_changed()")
    op.execute("DELETE FROM cache_generations WHERE name IN ('catalog', 'rate_limit')")
