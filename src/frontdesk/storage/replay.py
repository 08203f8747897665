"""The replay cache of client assertions: a ``jti`` is accepted once (RFC 7523 §3 item 7).

One insert per assertion, under the primary key: of two requests racing with the same assertion, in this process or
another, exactly one inserts and the other meets the key (``ON CONFLICT DO NOTHING``: no row, on SQLite and
PostgreSQL alike). An entry lives until the assertion expires (``exp``), past which the assertion is refused anyway;
the purge (purge.py) then removes it.

It runs on the token endpoint's path (a client assertion, a DPoP proof), so as plain SQL in a ``redemption.session``:
on PostgreSQL one statement in autocommit, one round trip where SQLAlchemy's transaction was three; on SQLite an
IMMEDIATE transaction that, on the event loop, does not wait for the write lock (``db.no_wait``).
"""

from __future__ import annotations

from sqlalchemy import Engine

from ..secret import digest
from .db import run
from .redemption import session

__all__ = ["spend_dpop_jti", "spend_jti"]


def _key(client_id: str, jti: str) -> str:
    # Per client: a jti is the client's own choice, unique only among its assertions (RFC 7519 §4.1.7).
    return digest(client_id + "\x00" + jti)


def spend_jti(engine: Engine, client_id: str, jti: str, expires_at: int) -> bool:
    """Record ``client_id``'s assertion ``jti`` as used until ``expires_at``; False when it was used already."""
    return _spend(engine, _key(client_id, jti), expires_at)


def spend_dpop_jti(engine: Engine, jkt: str, htu: str, jti: str, expires_at: int) -> bool:
    """Record a DPoP proof's ``jti`` as used for its key and target URI (RFC 9449 §11.1) until ``expires_at``; False
    when it was used already. A key space of its own: the digested text starts with a control character, as no
    client_id does."""
    return _spend(engine, digest("\x01dpop\x00" + jkt + "\x00" + htu + "\x00" + jti), expires_at)


def _spend(engine: Engine, key: str, expires_at: int) -> bool:
    with session(engine) as db:
        inserted = run(
            db, "INSERT INTO used_jtis (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (key, expires_at)
        )
    return inserted == 1
