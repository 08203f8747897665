"""alert evaluation: the audit trail by address, per-key tallies, webhook retries, who acknowledged and resolved

Revision ID: 0018
Revises: 0017

The alert rules (admin/alert_rules.py) count failed sign-ins per address over a window: an index on
``audit_events (ip, at)``, as ``(user_id, at)`` and ``(client_id, at)`` serve the per-person and per-client rules.
What the audit trail cannot answer by index is kept in ``alert_tallies``, written by the evaluator as it reads each
event once: a vault connection's proxied calls in ten-minute buckets (a week of them, for its usual rate) and a
connection's run of failed refreshes. ``alerts.notify_after`` says when the webhook is next due (NULL: nothing to
send), so that retries back off across processes. The cursor starts at the trail's end: events written before
this upgrade raise nothing; a second row, ``periodic``, says when the checks that no event triggers (key rotation
overdue) last ran.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_events_ip_at", "audit_events", ["ip", "at"])
    op.create_table(
        "alert_tallies",
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("rule", "key", "bucket"),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notify_after", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("acknowledged_at", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("resolved_at", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("resolved_by", sa.String(length=100), nullable=True))
    op.create_index("ix_alerts_notify_after", "alerts", ["notify_after"])
    op.execute(
        sa.text(
            "INSERT INTO alert_cursor (name, last_event_id, updated_at) "
            "SELECT 'audit', COALESCE(MAX(id), 0), :at FROM audit_events"
        ).bindparams(at=int(time.time()))
    )
    # The periodic checks (key rotation overdue): ``updated_at`` is when one last ran; 0, never.
    op.execute(sa.text("INSERT INTO alert_cursor (name, last_event_id, updated_at) VALUES ('periodic', 0, 0)"))


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM alert_cursor WHERE name IN ('audit', 'periodic')"))
    op.drop_index("ix_alerts_notify_after", table_name="alerts")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_column("resolved_by")
        batch_op.drop_column("resolved_at")
        batch_op.drop_column("acknowledged_at")
        batch_op.drop_column("notify_after")
    op.drop_table("alert_tallies")
    op.drop_index("ix_audit_events_ip_at", table_name="audit_events")
