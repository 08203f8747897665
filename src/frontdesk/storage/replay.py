"""The replay cache of client assertions: a ``jti`` is accepted once (RFC 7523 §3 item 7).

One insert per assertion, under the primary key: of two requests racing with the same assertion, in this process or
another, exactly one inserts and the other meets the key. An entry lives until the assertion expires (``exp``), past
which the assertion is refused anyway; the purge (purge.py) then removes it.
"""

from __future__ import annotations

from sqlalchemy import Engine, insert
from sqlalchemy.exc import IntegrityError

from ..secret import digest
from .db import transaction
from .schema import UsedJti

__all__ = ["spend_jti"]


def _key(client_id: str, jti: str) -> str:
    # Per client: a jti is the client's own choice, unique only among its assertions (RFC 7519 §4.1.7).
    return digest(client_id + "\x00" + jti)


def spend_jti(engine: Engine, client_id: str, jti: str, expires_at: int) -> bool:
    """Record ``client_id``'s assertion ``jti`` as used until ``expires_at``; False when it was used already."""
    try:
        with transaction(engine) as conn:
            conn.execute(insert(UsedJti), {"key": _key(client_id, jti), "expires_at": expires_at})
    except IntegrityError:
        return False
    return True
