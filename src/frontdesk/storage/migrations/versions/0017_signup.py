"""sign-up: an account that waits for its address to be confirmed

Revision ID: 0017
Revises: 0016

Self sign-up (``[signup] enabled``, oauth/signup.py) with ``require_verified_email`` and email set up creates the
account with ``users.verification_pending`` true: it cannot sign in until its owner follows the link mailed to the
address (oauth/email_links.py), which sets it back to false. Every account made any other way has it false.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("verification_pending", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("verification_pending")
