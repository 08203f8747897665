"""Interactions: an authorization (or device) request waiting for the person to sign in and consent.

The id travels in the URL; a random binding value travels in a cookie and only its digest is stored, so an
interaction started in one browser cannot be finished in another (a login-CSRF and session-swap guard). Once the
person is signed in, the interaction also names the session that sign-in lives in (``session_id``): within one
browser the session cookie can change under an open interaction (another tab signs someone else in), and the code
must carry the facts of the sign-in that belongs to it.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ..secret import digest, same
from .schema import Interaction

__all__ = [
    "InteractionRow",
    "attach_user",
    "finish_interaction",
    "hold_for_second_factor",
    "interaction_for",
    "open_interaction",
]


@dataclass(frozen=True, slots=True)
class InteractionRow:
    id: str
    params: dict[str, Any]
    user_id: str | None
    auth_time: int | None
    pending_user_id: str | None = None  # passed the first factor; the second is still owed
    pending_amr: tuple[str, ...] = ()
    session_id: str | None = None  # the session of the sign-in it carries, once user_id is set


def open_interaction(conn: Connection, params: dict[str, Any], at: int, ttl: int) -> tuple[str, str]:
    """Returns (id, binding); the binding goes into a cookie and is stored only as a digest."""
    ix_id = secrets.token_urlsafe(16)
    binding = secrets.token_urlsafe(32)
    conn.execute(
        insert(Interaction),
        {
            "id": ix_id,
            "binding_digest": digest(binding),
            "params": json.dumps(params),
            "user_id": None,
            "auth_time": None,
            "created_at": at,
            "expires_at": at + ttl,
            "consumed_at": None,
        },
    )
    return ix_id, binding


def interaction_for(conn: Connection, ix_id: str, binding: str | None, at: int) -> InteractionRow | None:
    if not binding:
        return None
    row = conn.execute(
        select(Interaction).where(
            Interaction.id == ix_id, Interaction.expires_at > at, Interaction.consumed_at.is_(None)
        )
    ).first()
    if row is None or not same(row.binding_digest, digest(binding)):
        return None
    pending_amr = tuple(json.loads(row.pending_amr)) if row.pending_amr else ()
    return InteractionRow(
        row.id,
        json.loads(row.params),
        row.user_id,
        row.auth_time,
        row.pending_user_id,
        pending_amr,
        row.session_id,
    )


def attach_user(conn: Connection, ix_id: str, user_id: str, auth_time: int, session_id: str) -> None:
    """The person is signed in for this interaction, in the session ``session_id``."""
    conn.execute(
        update(Interaction)
        .where(Interaction.id == ix_id)
        .values(user_id=user_id, auth_time=auth_time, pending_user_id=None, pending_amr=None, session_id=session_id)
    )


def hold_for_second_factor(conn: Connection, ix_id: str, user_id: str, amr: tuple[str, ...]) -> None:
    """The person passed the first factor: remember who and how, until the second step signs them in."""
    conn.execute(
        update(Interaction)
        .where(Interaction.id == ix_id)
        .values(
            user_id=None, auth_time=None, pending_user_id=user_id, pending_amr=json.dumps(list(amr)), session_id=None
        )
    )


def finish_interaction(conn: Connection, ix_id: str, at: int) -> bool:
    """Single use: False when another request finished it first."""
    result = conn.execute(
        update(Interaction).where(Interaction.id == ix_id, Interaction.consumed_at.is_(None)).values(consumed_at=at)
    )
    return result.rowcount == 1
