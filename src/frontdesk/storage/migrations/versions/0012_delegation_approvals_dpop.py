"""agents act for people within limits: token exchange policy, CIBA requests, RAR types and details, DPoP bindings

Revision ID: 0012
Revises: 0011

Issue 14. Clients say which resources they may exchange a person's token for (RFC 8693), whether their tokens must
be DPoP-bound (RFC 9449 §5.2) and how CIBA tokens reach them (poll or ping); resources may require DPoP. Grants keep
the authorization details a person approved (RFC 9396) and the key a public client's refresh tokens are bound to;
codes keep the dpop_jkt named at /authorize (RFC 9449 §10). Backchannel authentication requests (CIBA Core §7) and
the operator's authorization detail types (with their JSON Schema and plain-words template) get tables. A vault
connection records who last called through it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("may_exchange_for", sa.Text(), server_default="[]", nullable=False))
        batch_op.add_column(
            sa.Column("dpop_bound_access_tokens", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("backchannel_token_delivery_mode", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("backchannel_client_notification_endpoint", sa.Text(), nullable=True))
    with op.batch_alter_table("resources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("require_dpop", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("authorization_details", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("dpop_jkt", sa.String(length=64), nullable=True))
    with op.batch_alter_table("authorization_codes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dpop_jkt", sa.String(length=64), nullable=True))
    with op.batch_alter_table("vault_connections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_used_by", sa.String(length=255), nullable=True))
    op.create_table(
        "authorization_detail_types",
        sa.Column("type", sa.String(length=255), nullable=False),
        sa.Column("schema", sa.Text(), nullable=False),
        sa.Column("describe", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("type", name=op.f("pk_authorization_detail_types")),
    )
    op.create_table(
        "backchannel_requests",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("authorization_details", sa.Text(), nullable=True),
        sa.Column("binding_message", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("interval", sa.Integer(), nullable=False),
        sa.Column("last_polled_at", sa.BigInteger(), nullable=True),
        sa.Column("notification_token", sa.LargeBinary(), nullable=True),
        sa.Column("auth_time", sa.BigInteger(), nullable=True),
        sa.Column("amr", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("decided_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_backchannel_requests")),
    )
    with op.batch_alter_table("backchannel_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_backchannel_requests_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_backchannel_requests_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_backchannel_requests_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_table("backchannel_requests")
    op.drop_table("authorization_detail_types")
    with op.batch_alter_table("vault_connections", schema=None) as batch_op:
        batch_op.drop_column("last_used_by")
    with op.batch_alter_table("authorization_codes", schema=None) as batch_op:
        batch_op.drop_column("dpop_jkt")
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_column("dpop_jkt")
        batch_op.drop_column("authorization_details")
    with op.batch_alter_table("resources", schema=None) as batch_op:
        batch_op.drop_column("require_dpop")
    with op.batch_alter_table("clients", schema=None) as batch_op:
        for column in (
            "backchannel_client_notification_endpoint",
            "backchannel_token_delivery_mode",
            "dpop_bound_access_tokens",
            "may_exchange_for",
        ):
            batch_op.drop_column(column)
