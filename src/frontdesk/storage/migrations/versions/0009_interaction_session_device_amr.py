"""interactions name the session they belong to; device approvals keep how the person signed in

Revision ID: 0009
Revises: 0008

``interactions.session_id``: the browser session whose sign-in an interaction carries (set when it is attached to a
signed-in session, or when the person signs in within it). Consent and the code it leads to take ``amr``,
``auth_time`` and ``sid`` from that session only; a browser holding another session by then starts the request over
(issue 11, item 3). Rows from before this revision have none, so they start over too.

``device_codes.amr``: RFC 8176 methods of the sign-in that approved a device code, so its tokens tell the truth about
a second factor the policy asked for (issue 11, item 4).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_id", sa.String(length=32), nullable=True))
    with op.batch_alter_table("device_codes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("amr", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("device_codes", schema=None) as batch_op:
        batch_op.drop_column("amr")
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_column("session_id")
