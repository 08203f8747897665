"""Revocation answers kept in memory (oauth/revocations.py, oauth/memory.py) and invalidated by the listener
(storage/notify.py): on PostgreSQL by the triggers' notification at once, by the generation when a notification is
lost, and not used at all while the listener cannot read; on SQLite by the generation alone."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from sqlalchemy import Connection, Engine, text

from conftest import Registered
from frontdesk.core import Frontdesk
from frontdesk.oauth import memory, revocations
from frontdesk.storage.db import now, transaction
from frontdesk.storage.grants import GrantRow, insert_grant, revoke_access_token, revoke_grant
from frontdesk.storage.notify import APPLICATION_NAME, BOUND, POLL
from frontdesk.storage.people_admin import revoke_grants_of

from .conftest import eventually

PG = pytest.mark.parametrize("backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)


def _grant(fd: Frontdesk) -> GrantRow:
    at = now()
    with transaction(fd.engine) as conn:
        return insert_grant(
            conn, client_id="c", user_id="u", scope=("openid",), resource=(), auth_time=at, amr=(), at=at,
            expires_at=at + 3600,
        )  # fmt: skip


def _kill_listeners(engine: Engine) -> int:
    with engine.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = :name"
            ),
            {"name": APPLICATION_NAME},
        ).scalar_one()
        conn.commit()
    return int(killed)


def _revoke_silently(engine: Engine, grant_id: str, *, count: bool = False) -> None:
    """Revoke with the triggers off (``session_replication_role = replica``): no notification; and the generation
    counted by hand when ``count``."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        else:  # SQLite cannot turn triggers off: undo the trigger's count instead
            conn.execute(text("UPDATE cache_generations SET generation = generation - 1 WHERE name = 'revocation'"))
        conn.execute(text("UPDATE grants SET revoked_at = 1 WHERE id = :g"), {"g": grant_id})
        if count:
            conn.execute(text("UPDATE cache_generations SET generation = generation + 1 WHERE name = 'revocation'"))
        conn.commit()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_revocation_on_sqlite_is_seen_within_a_poll(fd: Frontdesk, kept: memory.Memory):
    """SQLite has no notifications: the generation, counted by a row trigger in the revoking transaction, tells."""
    grant = _grant(fd)
    jti = f"{grant.id}.s"
    assert not revocations.token_revoked(fd, jti, grant.id)
    with transaction(fd.engine) as conn:
        revoke_grant(conn, grant.id, now())
    assert eventually(lambda: revocations.token_revoked(fd, jti, grant.id), BOUND) <= POLL + 0.2


@PG
def test_a_revoked_grant_is_seen_at_once_by_its_notification(fd: Frontdesk, kept: memory.Memory):
    grant = _grant(fd)
    jti = f"{grant.id}.a"
    assert not revocations.token_revoked(fd, jti, grant.id)
    with transaction(fd.engine) as conn:
        revoke_grant(conn, grant.id, now())
    took = eventually(lambda: revocations.token_revoked(fd, jti, grant.id), BOUND)
    assert took < POLL  # the notification, not the next read of the generation


def test_an_answer_is_kept_while_the_listener_vouches_for_it(fd: Frontdesk, kept: memory.Memory):
    """The store is not read again: a revocation made with the triggers off (which no deployment does: it neither
    notifies nor counts) goes unseen, until the next invalidation."""
    grant = _grant(fd)
    jti = f"{grant.id}.k"
    assert not revocations.token_revoked(fd, jti, grant.id)
    _revoke_silently(fd.engine, grant.id)
    time.sleep(POLL * 2)
    assert not revocations.token_revoked(fd, jti, grant.id)
    kept.revocations.drop()
    assert revocations.token_revoked(fd, jti, grant.id)


@PG
def test_a_revoked_access_token_is_seen_at_once(fd: Frontdesk, kept: memory.Memory):
    grant = _grant(fd)
    jti = f"{grant.id}.b"
    assert not revocations.token_revoked(fd, jti, grant.id)
    with transaction(fd.engine) as conn:
        revoke_access_token(conn, jti, now() + 60)
    assert eventually(lambda: revocations.token_revoked(fd, jti, grant.id), BOUND) < POLL


def test_a_changed_generation_without_notification_invalidates_within_a_poll(fd: Frontdesk, kept: memory.Memory):
    """A notification that never arrives (lost with a connection): the generation read every POLL seconds tells."""
    grant = _grant(fd)
    jti = f"{grant.id}.c"
    assert not revocations.token_revoked(fd, jti, grant.id)
    # The revocation as another host's transaction leaves it, minus its notification: only the generation tells.
    _revoke_silently(fd.engine, grant.id, count=True)
    took = eventually(lambda: revocations.token_revoked(fd, jti, grant.id), BOUND)
    assert took <= POLL + 0.2


@PG
def test_without_its_connection_the_listener_stops_vouching_within_the_bound_and_comes_back(
    fd: Frontdesk, kept: memory.Memory
):
    """Killed with pg_terminate_backend, the listener's reads stop: kept answers lapse within BOUND, and a
    revocation whose notification nobody received is answered from the store; then it reconnects and vouches again."""
    grant = _grant(fd)
    jti = f"{grant.id}.d"
    assert not revocations.token_revoked(fd, jti, grant.id)
    assert _kill_listeners(fd.engine) == 1
    _revoke_silently(fd.engine, grant.id, count=True)  # its notification lost: nobody listens
    assert eventually(lambda: revocations.token_revoked(fd, jti, grant.id), BOUND + 0.1) <= BOUND + 0.1
    eventually(kept.listener.fresh, 5.0)  # connected again
    other = _grant(fd)
    assert not revocations.token_revoked(fd, f"{other.id}.e", other.id)
    with transaction(fd.engine) as conn:
        revoke_grant(conn, other.id, now())
    assert eventually(lambda: revocations.token_revoked(fd, f"{other.id}.e", other.id), BOUND) < POLL


@PG
def test_a_changed_client_is_dropped_from_the_client_cache(
    fd: Frontdesk, kept: memory.Memory, confidential: Registered
):
    """Within the bound, not the client cache's five seconds: the trigger names the client on the channel."""
    client_id = confidential.client_id
    before = fd.clients.get(client_id)
    assert before is not None
    with fd.engine.connect() as conn:
        conn.execute(text("UPDATE clients SET name = 'Renamed' WHERE client_id = :c"), {"c": client_id})
        conn.commit()
    eventually(lambda: (c := fd.clients.get(client_id)) is not None and c.name == "Renamed", BOUND)


REVOKING = {
    "the grant (/revoke of a refresh token, a reused one, a sign-out)": lambda conn, grant: revoke_grant(
        conn, grant.id, now()
    ),
    "the access token (/revoke of an access token)": lambda conn, grant: revoke_access_token(
        conn, "jti-any", now() + 60
    ),
    "a person's grants (an operator disables them, a password reset)": lambda conn, grant: revoke_grants_of(
        conn, "u", now()
    ),
}


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
@pytest.mark.parametrize("revoke", list(REVOKING.values()), ids=list(REVOKING))
def test_a_transaction_that_revokes_here_drops_the_answers_here_at_once(
    fd: Frontdesk, kept: memory.Memory, revoke: Callable[[Connection, GrantRow], object]
):
    """RFC 7009 §2.1, and the full matrix once caught it: whatever revokes in this process, this process's
    introspection and UserInfo stop accepting the token as the transaction commits (``db.revoking``), with the
    listener told nothing (the triggers' count undone, their notification suppressed)."""
    grant = _grant(fd)
    assert revocations.token_revoked(fd, "jti-any", grant.id) is False  # kept in memory
    with transaction(fd.engine) as conn:
        if fd.engine.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        revoke(conn, grant)
        if fd.engine.dialect.name != "postgresql":
            conn.execute(text("UPDATE cache_generations SET generation = generation - 1 WHERE name = 'revocation'"))
    assert revocations.token_revoked(fd, "jti-any", grant.id) is True
