"""clients: the audience their JWT assertions may name

Revision ID: 0010
Revises: 0009

RFC 7523 §3 let a client assertion's ``aud`` be the token endpoint, or an array holding it; the 2025 audience
injection findings, and draft-ietf-oauth-rfc7523bis-09 after them, narrow it to the issuer identifier as a single
string. ``assertion_audience`` is "issuer" for every client, those registered before this revision included; an
operator may relax one client to "token-endpoint" (also this server's token endpoint URL, as a single string) for a
client library that sends it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("assertion_audience", sa.String(length=20), server_default="issuer", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("assertion_audience")
