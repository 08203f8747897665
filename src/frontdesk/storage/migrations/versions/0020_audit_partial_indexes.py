"""audit events: the indexes by person and by address hold only the events their queries read

Revision ID: 0020
Revises: 0019

Every audit event was written into all five indexes of ``audit_events``, two of them under keys no query reads:

- ``ix_audit_events_user_id_at``: most events name no person (every client_credentials token, every failed client
  authentication), and went in under a NULL key. The account activity page, the admin search and the per-person
  alert rules all ask ``user_id = ?``, which implies ``user_id IS NOT NULL``: the index now holds only events that
  name a person.
- ``ix_audit_events_ip_at``: only the alert rules read it, to count an address's failed sign-ins, and the count
  says ``outcome <> 'success'`` whenever no outcome it asks for is a success (storage/alert_cursor.py). The index
  now holds only events that did not succeed: most events never enter it.

SQLite and PostgreSQL both use a partial index for a query whose conditions imply the index's own. Each index left
out saves about 7,500 of the 833,000 instructions a served client_credentials request runs (BENCHMARKS.md). The
upgrade rebuilds both indexes, reading the table once for each.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

_PARTIAL = {
    "ix_audit_events_user_id_at": (["user_id", "at"], "user_id IS NOT NULL"),
    "ix_audit_events_ip_at": (["ip", "at"], "outcome <> 'success'"),
}


def upgrade() -> None:
    for name, (columns, where) in _PARTIAL.items():
        op.drop_index(name, table_name="audit_events")
        op.create_index(name, "audit_events", columns, sqlite_where=sa.text(where), postgresql_where=sa.text(where))


def downgrade() -> None:
    for name, (columns, _) in _PARTIAL.items():
        op.drop_index(name, table_name="audit_events")
        op.create_index(name, "audit_events", columns)
