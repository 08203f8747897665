"""The vault's connect sessions (a person's link to connect an account) as purpose-named operations.

The link token and the provider ``state`` are kept only as digests, the PKCE verifier only sealed. A session is
opened once and consumed once: each step is a compare-and-set, so two browsers racing on one link cannot both win.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ..secret import digest
from ..storage.schema import User, VaultConnectSession

__all__ = [
    "attach_connection",
    "consume_session",
    "create_session",
    "open_session",
    "owner_of_state",
    "person",
    "session_for_link",
    "session_for_state",
]


def person(conn: Connection, subject: str) -> Any:
    """The frontdesk person a link is made for (``name``, ``username``), or None."""
    return conn.execute(select(User.name, User.username).where(User.id == subject)).one_or_none()


def create_session(
    conn: Connection,
    *,
    session_id: str,
    link: str,
    user: str,
    integration_name: str,
    scopes: Sequence[str],
    params: Mapping[str, str],
    return_url: str | None,
    display_name: str | None,
    subject: str | None,
    created_at: int,
    expires_at: int,
) -> None:
    """A new session for the link token ``link``, kept as its digest."""
    conn.execute(
        insert(VaultConnectSession),
        {
            "id": session_id,
            "digest": digest(link),
            "user": user,
            "integration": integration_name,
            "scopes": json.dumps(list(scopes)),
            "params": json.dumps(dict(params), sort_keys=True),
            "return_url": return_url,
            "display_name": display_name,
            "subject": subject,
            "created_at": created_at,
            "expires_at": expires_at,
        },
    )


def session_for_link(conn: Connection, link: str) -> Any:
    return conn.execute(select(VaultConnectSession).where(VaultConnectSession.digest == digest(link))).one_or_none()


def open_session(conn: Connection, session_id: str, at: int, *, browser: str, state: str, sealed: bytes) -> bool:
    """Bind the session to the browser that opened it and the ``state`` it was sent off with; False when another
    request opened it first."""
    won = conn.execute(
        update(VaultConnectSession)
        .where(VaultConnectSession.id == session_id, VaultConnectSession.opened_at.is_(None))
        .values(opened_at=at, browser_digest=digest(browser), state_digest=digest(state), sealed=sealed)
    ).rowcount
    return bool(won)


def session_for_state(conn: Connection, state: str) -> Any:
    return conn.execute(
        select(VaultConnectSession).where(VaultConnectSession.state_digest == digest(state))
    ).one_or_none()


def owner_of_state(conn: Connection, state: str) -> Any:
    """(``integration``, ``user``) of the session sent off with ``state``, or None."""
    return conn.execute(
        select(VaultConnectSession.integration, VaultConnectSession.user).where(
            VaultConnectSession.state_digest == digest(state)
        )
    ).one_or_none()


def consume_session(conn: Connection, session_id: str, at: int) -> bool:
    """Use the session up; False when another request used it first."""
    consumed = conn.execute(
        update(VaultConnectSession)
        .where(VaultConnectSession.id == session_id, VaultConnectSession.consumed_at.is_(None))
        .values(consumed_at=at)
    ).rowcount
    return bool(consumed)


def attach_connection(conn: Connection, session_id: str, connection_id: str) -> None:
    conn.execute(
        update(VaultConnectSession).where(VaultConnectSession.id == session_id).values(connection_id=connection_id)
    )
