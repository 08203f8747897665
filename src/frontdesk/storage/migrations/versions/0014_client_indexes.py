"""indexes for the purge of unused self-registered clients and for RFC 7592 token lookups

Revision ID: 0014
Revises: 0013

`frontdesk purge` finds self-registered and metadata-document clients by who registered them and when they were last
used, and deletes their consents by client; an RFC 7592 registration access token is looked up by its digest. Each
was a scan of every row; with open registration those tables grow with strangers' clients.
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_clients_registered_by_last_used_at", "clients", ["registered_by", "last_used_at"])
    op.create_index("ix_clients_registration_token_digest", "clients", ["registration_token_digest"])
    op.create_index("ix_consents_client_id", "consents", ["client_id"])


def downgrade() -> None:
    op.drop_index("ix_consents_client_id", table_name="consents")
    op.drop_index("ix_clients_registration_token_digest", table_name="clients")
    op.drop_index("ix_clients_registered_by_last_used_at", table_name="clients")
