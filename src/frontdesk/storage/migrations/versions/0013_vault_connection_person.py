"""vault: a connection records its person

Revision ID: 0013
Revises: 0012

``vault_connections.person``: the frontdesk person a connection is (issue 14 item 2), written with the credentials
by the callback. Until now it was read from the connect sessions that last connected it, which the purge deletes ten
minutes after they expire: a person connected through a link bound to them, for a platform user id that is not
their frontdesk id, lost their own connection then.

The backfill applies the rule the sessions were read by (``vault.connect.owner``), frozen here: the subjects of the
latest finished sessions of a connection (those with the greatest ``consumed_at``; none left counts as one link bound
to nobody), each a link bound to nobody standing for the platform's user id; exactly one such owner, and a frontdesk
person, is the connection's person; two owners (links finishing in the same second), or a user id that is no
frontdesk person's, leave it nobody's.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_CONNECTIONS = sa.table(
    "vault_connections", sa.column("id", sa.String), sa.column("user", sa.String), sa.column("person", sa.String)
)
_SESSIONS = sa.table(
    "vault_connect_sessions",
    sa.column("connection_id", sa.String),
    sa.column("subject", sa.String),
    sa.column("consumed_at", sa.BigInteger),
)
_USERS = sa.table("users", sa.column("id", sa.String))
_BATCH = 500


def upgrade() -> None:
    with op.batch_alter_table("vault_connections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("person", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_vault_connections_person"), ["person"], unique=False)
    conn = op.get_bind()
    people = {row.id for row in conn.execute(sa.select(_USERS.c.id))}
    # The latest finished sessions of each connection (the greatest ``consumed_at``, ties kept), as read until now.
    latest: dict[str, tuple[int, list[str | None]]] = {}
    finished = sa.select(_SESSIONS.c.connection_id, _SESSIONS.c.subject, _SESSIONS.c.consumed_at).where(
        _SESSIONS.c.connection_id.is_not(None)
    )
    for connection_id, subject, consumed_at in conn.execute(finished):
        at, subjects = latest.get(connection_id, (-1, []))
        if (consumed_at or 0) > at:
            latest[connection_id] = (consumed_at or 0, [subject])
        elif (consumed_at or 0) == at:
            subjects.append(subject)
    owned: list[dict[str, str]] = []
    for connection_id, user in conn.execute(sa.select(_CONNECTIONS.c.id, _CONNECTIONS.c.user)):
        person = _owner(user, latest.get(connection_id, (0, [None]))[1], people)
        if person is not None:
            owned.append({"connection": connection_id, "owner": person})
    statement = (
        sa.update(_CONNECTIONS)
        .where(_CONNECTIONS.c.id == sa.bindparam("connection"))
        .values(person=sa.bindparam("owner"))
    )
    for start in range(0, len(owned), _BATCH):
        conn.execute(statement, owned[start : start + _BATCH])


def _owner(user: str, subjects: Iterable[str | None], people: set[str]) -> str | None:
    owners = {subject if subject is not None else user for subject in subjects}
    if len(owners) != 1:
        return None
    (one,) = owners
    return one if one in people else None


def downgrade() -> None:
    with op.batch_alter_table("vault_connections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vault_connections_person"))
        batch_op.drop_column("person")
