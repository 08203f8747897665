"""cache invalidation across processes: a revocation generation, and on PostgreSQL the triggers that keep it and
notify every listening process

Revision ID: 0016
Revises: 0015

Each process keeps what introspection learnt about revocation in memory (oauth/revocations.py) and must drop it
when any process or host revokes something (issue 15 item 2; DESIGN §3). On PostgreSQL the database itself says so,
whichever code path revoked: every transaction that revokes a grant, revokes an access token or deletes a grant
(a person or client deleted, the purge) adds one to ``cache_generations.revocation`` and sends a notification on
``frontdesk_cache`` as it commits (storage/notify.py listens); a changed or deleted client is announced there too,
by its client_id, for the client cache.

The generation is bumped by a deferred constraint trigger, once per transaction: at commit, after every row lock
the transaction takes, so two revoking transactions never wait for each other's rows in opposite orders; and in the
same transaction as the revocation, so a process that reads the new generation also reads the revocation. SQLite
(several ``--workers`` share one file) has no notifications and no statement or deferred triggers: a row trigger
counts there, in the revoking transaction too, which holds the database's one write lock anyway.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# pg_notify delivers at commit and folds identical payloads of one transaction into one.
_REVOKED = """
CREATE FUNCTION frontdesk_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('frontdesk.revocation_counted', true) IS DISTINCT FROM txid_current()::text THEN
        UPDATE cache_generations SET generation = generation + 1 WHERE name = 'revocation';
        PERFORM set_config('frontdesk.revocation_counted', txid_current()::text, true);
        PERFORM pg_notify('frontdesk_cache', 'revocation');
    END IF;
    RETURN NULL;
END
$$
"""

_CLIENT_CHANGED = """
CREATE FUNCTION frontdesk_client_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('frontdesk_cache', 'client:' || OLD.client_id);
    RETURN NULL;
END
$$
"""

_TRIGGERS = (
    "CREATE CONSTRAINT TRIGGER grants_revoked AFTER UPDATE OF revoked_at ON grants DEFERRABLE INITIALLY DEFERRED "
    "FOR EACH ROW WHEN (NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL) EXECUTE FUNCTION frontdesk_revoked()",
    "CREATE CONSTRAINT TRIGGER grants_deleted AFTER DELETE ON grants DEFERRABLE INITIALLY DEFERRED "
    "FOR EACH ROW EXECUTE FUNCTION frontdesk_revoked()",
    "CREATE CONSTRAINT TRIGGER access_tokens_revoked AFTER INSERT ON revoked_access_tokens "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION frontdesk_revoked()",
    "CREATE TRIGGER clients_changed AFTER UPDATE OR DELETE ON clients FOR EACH ROW "
    "EXECUTE FUNCTION frontdesk_client_changed()",
)


_SQLITE_COUNT = "BEGIN UPDATE cache_generations SET generation = generation + 1 WHERE name = 'revocation'; END"
_SQLITE_TRIGGERS = (
    "CREATE TRIGGER grants_revoked AFTER UPDATE OF revoked_at ON grants "
    f"WHEN NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL {_SQLITE_COUNT}",
    f"CREATE TRIGGER grants_deleted AFTER DELETE ON grants {_SQLITE_COUNT}",
    f"CREATE TRIGGER access_tokens_revoked AFTER INSERT ON revoked_access_tokens {_SQLITE_COUNT}",
)


def upgrade() -> None:
    generations = op.create_table(
        "cache_generations",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.bulk_insert(generations, [{"name": "revocation", "generation": 0}])
    if op.get_context().dialect.name != "postgresql":
        for trigger in _SQLITE_TRIGGERS:
            op.execute(trigger)
        return
    op.execute(_REVOKED)
    op.execute(_CLIENT_CHANGED)
    for trigger in _TRIGGERS:
        op.execute(trigger)


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        for name in ("access_tokens_revoked", "grants_deleted", "grants_revoked"):
            op.execute(f"DROP TRIGGER {name}")
    else:
        op.execute("DROP TRIGGER clients_changed ON clients")
        op.execute("DROP TRIGGER access_tokens_revoked ON revoked_access_tokens")
        op.execute("DROP TRIGGER grants_deleted ON grants")
        op.execute("DROP TRIGGER grants_revoked ON grants")
        op.execute("DROP FUNCTION frontdesk_client_changed()")
        op.execute("DROP FUNCTION frontdesk_revoked()")
    op.drop_table("cache_generations")
