"""operations: admin tokens and roles, alerts, email links, people's verified email and disabling, client secret
rotation with overlap, audit search indexes

Revision ID: 0015
Revises: 0014

Issue 16: the admin API authenticates with admin tokens (digests) or a person's admin role; alerts raised from the
audit trail are stored and grouped, and ``alert_cursor`` records how far the rules have read the trail; email
verification, password reset and sign-up links are single-use digests; ``users.email_verified`` backs the OpenID
Connect claim (false for everyone until they verify); a person can be disabled without deleting their audit history;
a client's secret can be rotated while the previous one works for an overlap window; the audit trail is searched by
event and by client over a time range.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("last_used_at", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("digest"),
    )
    op.create_table(
        "admin_roles",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("granted_at", sa.BigInteger(), nullable=False),
        sa.Column("granted_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), server_default="{}", nullable=False),
        sa.Column("first_at", sa.BigInteger(), nullable=False),
        sa.Column("last_at", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), server_default="1", nullable=False),
        sa.Column("notified_at", sa.BigInteger(), nullable=True),
        sa.Column("notify_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("acknowledged_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alerts_last_at", "alerts", ["last_at"])
    op.create_table(
        "alert_cursor",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_index("ix_alerts_rule_key_status", "alerts", ["rule", "key", "status"])
    op.create_table(
        "email_links",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("consumed_at", sa.BigInteger(), nullable=True),
        sa.Column("requested_by", sa.String(length=100), server_default="self", nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )
    op.create_index("ix_email_links_user_id", "email_links", ["user_id"])
    op.create_index("ix_email_links_expires_at", "email_links", ["expires_at"])
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_verified", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("disabled_at", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_secret_digest", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("previous_secret_expires_at", sa.BigInteger(), nullable=True))
    op.create_index("ix_audit_events_event_at", "audit_events", ["event", "at"])
    op.create_index("ix_audit_events_client_id_at", "audit_events", ["client_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_client_id_at", table_name="audit_events")
    op.drop_index("ix_audit_events_event_at", table_name="audit_events")
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("previous_secret_expires_at")
        batch_op.drop_column("previous_secret_digest")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("disabled_at")
        batch_op.drop_column("email_verified")
    op.drop_index("ix_email_links_expires_at", table_name="email_links")
    op.drop_index("ix_email_links_user_id", table_name="email_links")
    op.drop_table("email_links")
    op.drop_table("alert_cursor")
    op.drop_index("ix_alerts_rule_key_status", table_name="alerts")
    op.drop_index("ix_alerts_last_at", table_name="alerts")
    op.drop_table("alerts")
    op.drop_table("admin_roles")
    op.drop_table("admin_tokens")
