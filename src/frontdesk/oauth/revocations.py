"""Whether an access token was revoked, as introspection and UserInfo ask it (RFC 7662 §2.2, RFC 7009 §2.1): from
this process's memory when it may answer from memory (oauth/memory.py), from the store otherwise.

A resource server introspects the same token at every call it serves; on PostgreSQL each of those answers was a
round trip through the thread pool, on SQLite a statement. Answers are kept by jti (which carries its grant's id:
oauth/tokens.py) and dropped all at once on any revocation anywhere: a revocation at any process or host is seen
here within ``notify.BOUND`` (one second; on PostgreSQL usually within milliseconds), one committed here at once
(``storage.db.revoking``: every storage operation that revokes marks its transaction).
"""

from __future__ import annotations

import functools

from ..core import Frontdesk
from ..storage.grants import token_revoked as stored_token_revoked
from .memory import memory_of

__all__ = ["token_revoked"]


def token_revoked(fd: Frontdesk, jti: str, grant_id: str | None) -> bool:
    """The access token ``jti`` (of the grant ``grant_id``, if any) was revoked, or its grant was or is gone."""
    memory = memory_of(fd.engine)
    if memory is None:
        return stored_token_revoked(fd.engine, jti, grant_id)
    return memory.revocations.read(jti, functools.partial(stored_token_revoked, fd.engine, jti, grant_id))
