"""vault: integration scopes as given, connect sessions that name their owner

Revision ID: 0008
Revises: 0007

``vault_integrations.adds_default_scopes``: an integration's ``scopes`` used to be added to its provider's default
scopes, so an operator could not drop a default the provider refuses (issue 11). Rows made from now on hold the whole
list (false); rows already there keep asking for the defaults on top (true), exactly as before.

``vault_connect_sessions.display_name`` and ``subject``: the account a connect link is for, shown before the person
is sent to the provider, and the frontdesk person who must be signed in to use it, when the platform gives one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("vault_integrations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("adds_default_scopes", sa.Boolean(), nullable=False, server_default=sa.true()))
    with op.batch_alter_table("vault_connect_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("display_name", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("subject", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("vault_connect_sessions", schema=None) as batch_op:
        batch_op.drop_column("subject")
        batch_op.drop_column("display_name")
    with op.batch_alter_table("vault_integrations", schema=None) as batch_op:
        batch_op.drop_column("adds_default_scopes")
