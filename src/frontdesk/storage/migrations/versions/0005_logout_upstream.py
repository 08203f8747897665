"""sign-out and upstream providers

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("post_logout_redirect_uris", sa.Text(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("backchannel_logout_uri", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("backchannel_logout_session_required", sa.Boolean(), nullable=False, server_default=sa.false())
        )

    op.create_table(
        "session_grants",
        sa.Column("grant_id", sa.String(length=64), nullable=False),
        sa.Column("sid", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("grant_id", name=op.f("pk_session_grants")),
    )
    with op.batch_alter_table("session_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_session_grants_sid"), ["sid"], unique=False)
        batch_op.create_index(batch_op.f("ix_session_grants_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_session_grants_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "logout_deliveries",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("sid", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_logout_deliveries")),
    )
    with op.batch_alter_table("logout_deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_logout_deliveries_next_attempt_at"), ["next_attempt_at"], unique=False)

    op.create_table(
        "signin_failures",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_signin_failures")),
    )
    with op.batch_alter_table("signin_failures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signin_failures_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "upstream_providers",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("issuer", sa.Text(), nullable=True),
        sa.Column("authorization_endpoint", sa.Text(), nullable=False),
        sa.Column("token_endpoint", sa.Text(), nullable=False),
        sa.Column("userinfo_endpoint", sa.Text(), nullable=True),
        sa.Column("jwks_uri", sa.Text(), nullable=True),
        sa.Column("token_auth_method", sa.String(length=40), nullable=False),
        sa.Column("iss_parameter", sa.Boolean(), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("client_secret", sa.LargeBinary(), nullable=True),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_upstream_providers")),
    )

    op.create_table(
        "upstream_logins",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("state_digest", sa.String(length=64), nullable=False),
        sa.Column("browser_digest", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("interaction_id", sa.String(length=64), nullable=False),
        sa.Column("nonce_digest", sa.String(length=64), nullable=False),
        sa.Column("verifier", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("subject", sa.String(length=255), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upstream_logins")),
        sa.UniqueConstraint("state_digest", name=op.f("uq_upstream_logins_state_digest")),
    )
    with op.batch_alter_table("upstream_logins", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_upstream_logins_interaction_id"), ["interaction_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_upstream_logins_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "upstream_identities",
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_used_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("provider", "subject", name=op.f("pk_upstream_identities")),
    )
    with op.batch_alter_table("upstream_identities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_upstream_identities_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("upstream_identities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_upstream_identities_user_id"))
    op.drop_table("upstream_identities")

    with op.batch_alter_table("upstream_logins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_upstream_logins_expires_at"))
        batch_op.drop_index(batch_op.f("ix_upstream_logins_interaction_id"))
    op.drop_table("upstream_logins")

    op.drop_table("upstream_providers")

    with op.batch_alter_table("signin_failures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signin_failures_expires_at"))
    op.drop_table("signin_failures")

    with op.batch_alter_table("logout_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_logout_deliveries_next_attempt_at"))
    op.drop_table("logout_deliveries")

    with op.batch_alter_table("session_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_grants_expires_at"))
        batch_op.drop_index(batch_op.f("ix_session_grants_user_id"))
        batch_op.drop_index(batch_op.f("ix_session_grants_sid"))
    op.drop_table("session_grants")

    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("backchannel_logout_session_required")
        batch_op.drop_column("backchannel_logout_uri")
        batch_op.drop_column("post_logout_redirect_uris")
