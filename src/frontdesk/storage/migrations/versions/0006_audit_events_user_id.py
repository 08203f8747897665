"""audit events by person

Revision ID: 0006
Revises: 0005

The account activity page reads one person's events of the last 30 days, newest first: an index on (user_id, at)
serves both its WHERE and its ORDER BY (ties on ``at`` are ordered by ``id``, which SQLite keeps in every index
entry and PostgreSQL sorts within each ``at``).

Not CREATE INDEX CONCURRENTLY on PostgreSQL, though a plain build holds audit writes while a large table is read:
processes starting together wait for the migration lock inside a statement, whose snapshot a concurrent build
would wait for in turn — a deadlock. So the build runs in the migration's transaction like every other change.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_user_id_at", ["user_id", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_user_id_at")
