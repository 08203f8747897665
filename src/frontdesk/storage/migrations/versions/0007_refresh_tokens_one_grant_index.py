"""refresh tokens: one index by grant

Revision ID: 0007
Revises: 0006

``ix_refresh_tokens_grant_id`` (grant_id) repeats the first column of ``ix_refresh_tokens_grant_consumed``
(grant_id, consumed_at), which answers every lookup by grant as well. Each refresh wrote both: one more B-tree page in
every rotation's commit, at a random place in the file (BENCHMARKS.md).
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_refresh_tokens_grant_id")


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.create_index("ix_refresh_tokens_grant_id", ["grant_id"], unique=False)
