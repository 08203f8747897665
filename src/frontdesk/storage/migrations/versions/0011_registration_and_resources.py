"""clients that register themselves, initial access tokens, protected resources, restricted scopes

Revision ID: 0011
Revises: 0010

Agents register without an operator (RFC 7591/7592, client ID metadata documents): a client records who registered
it (every client before this revision was the operator's), its application type (OpenID Connect Registration §2:
"web" for all before), the digest of its registration access token, the last day it was used, the RFC 7591 display
fields, and for a metadata document when to fetch it again. Initial access tokens gate what open registration may
not do; resources (RFC 8707) become objects with their scopes and token lifetime; a scope may be restricted.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("registered_by", sa.String(length=20), server_default="operator", nullable=False))
        batch_op.add_column(sa.Column("application_type", sa.String(length=10), server_default="web", nullable=False))
        batch_op.add_column(sa.Column("registration_token_digest", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("last_used_at", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("extra_metadata", sa.Text(), server_default="{}", nullable=False))
        batch_op.add_column(sa.Column("metadata_expires_at", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("metadata_stale_until", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("scopes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("restricted", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        "resources",
        sa.Column("uri", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("access_token_ttl", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("uri", name=op.f("pk_resources")),
    )
    op.create_table(
        "initial_access_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("uses_left", sa.Integer(), nullable=True),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_initial_access_tokens")),
        sa.UniqueConstraint("digest", name=op.f("uq_initial_access_tokens_digest")),
    )


def downgrade() -> None:
    op.drop_table("initial_access_tokens")
    op.drop_table("resources")
    with op.batch_alter_table("scopes", schema=None) as batch_op:
        batch_op.drop_column("restricted")
    with op.batch_alter_table("clients", schema=None) as batch_op:
        for column in (
            "metadata_stale_until",
            "metadata_expires_at",
            "extra_metadata",
            "last_used_at",
            "registration_token_digest",
            "application_type",
            "registered_by",
        ):
            batch_op.drop_column(column)
