"""Whether an access token was revoked, as introspection and UserInfo ask it (RFC 7662 §2.2, RFC 7009 §2.1): from
memory when this process may answer from memory, from the store otherwise.

A resource server introspects the same token at every call it serves; on PostgreSQL each of those answers was a
round trip through the thread pool, on SQLite a statement. A served process (``start``, at lifespan start-up)
keeps the answers it read, until the listener (storage/notify.py) says that something was revoked somewhere, and
uses them only while the listener's reads are fresh: a revocation at any process or host is seen here within
``notify.BOUND`` (one second; on PostgreSQL usually within milliseconds). On PostgreSQL the same listener drops a
changed or deleted client from the client cache. Without ``start`` (the CLI, a test without a served app) every
answer is read from the store.
"""

from __future__ import annotations

import threading
import weakref

from sqlalchemy import Engine

from ..core import Frontdesk
from ..storage.grants import token_revoked as stored_token_revoked
from ..storage.notify import Listener

__all__ = ["MAX_ANSWERS", "RevocationCache", "revoked_here", "start", "stop", "token_revoked"]

MAX_ANSWERS = 50_000  # answers kept per process; past it the memory starts again empty

_caches: weakref.WeakKeyDictionary[Engine, RevocationCache] = weakref.WeakKeyDictionary()


class RevocationCache:
    """Answers by jti (which carries its grant's id: oauth/tokens.py), dropped all at once on any revocation.

    A revocation is rare next to introspection, so dropping everything costs one read per token in use, and needs
    no index from grants to the tokens of each. An answer read from the store is kept only if no invalidation came
    while it was read (``_epoch``): otherwise a read that began before a revocation could outlive its invalidation.
    """

    def __init__(self, fd: Frontdesk) -> None:
        self._engine = fd.engine
        self._answers: dict[str, bool] = {}
        self._epoch = 0
        self._lock = threading.Lock()
        self.listener = Listener(fd.engine, on_revocation=self.invalidate, on_client=fd.clients.forget)

    def invalidate(self) -> None:
        with self._lock:
            self._epoch += 1
            self._answers = {}

    def revoked(self, jti: str, grant_id: str | None) -> bool:
        if self.listener.fresh():
            known = self._answers.get(jti)
            if known is not None:
                return known
        epoch = self._epoch
        answer = stored_token_revoked(self._engine, jti, grant_id)
        with self._lock:
            if epoch == self._epoch:
                if len(self._answers) >= MAX_ANSWERS:
                    self._answers = {}
                self._answers[jti] = answer
        return answer

    def close(self) -> None:
        self.listener.close()


def start(fd: Frontdesk) -> RevocationCache | None:
    """Keep revocation answers in this process, invalidated across processes (module docstring); on the event loop
    at lifespan start-up. None for an in-memory SQLite database, which no other process shares."""
    if fd.engine.url.database in (None, "", ":memory:") or fd.engine in _caches:
        return _caches.get(fd.engine)
    cache = _caches[fd.engine] = RevocationCache(fd)
    return cache


def stop(fd: Frontdesk) -> None:
    cache = _caches.pop(fd.engine, None)
    if cache is not None:
        cache.close()


def token_revoked(fd: Frontdesk, jti: str, grant_id: str | None) -> bool:
    """The access token ``jti`` (of the grant ``grant_id``, if any) was revoked, or its grant was or is gone."""
    cache = _caches.get(fd.engine)
    if cache is None:
        return stored_token_revoked(fd.engine, jti, grant_id)
    return cache.revoked(jti, grant_id)


def revoked_here(fd: Frontdesk) -> None:
    """This process has just committed a revocation: its own answers go at once rather than at the listener's next
    read, so that a client that revokes a token (RFC 7009 §2.1) and this server's introspection and UserInfo agree
    immediately; other processes and hosts still learn it from the listener, within ``notify.BOUND``."""
    cache = _caches.get(fd.engine)
    if cache is not None:
        cache.invalidate()
