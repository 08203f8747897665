"""What a served process keeps in memory of the store, and the one listener (storage/notify.py) that drops it.

The token paths read a few things at every request that change rarely: whether an access token was revoked
(introspection, UserInfo), how many failed attempts a client's limits have counted (every client authentication),
and the registered resources (every token minted for one). On PostgreSQL each read was a round trip through the
thread pool; on SQLite a statement. A served process (``start``, at lifespan start-up) keeps what it read, and drops
it when the listener says that it changed somewhere: a revocation, a counted failure, a changed catalog (migrations
0016 and 0019). Kept answers are used only while the listener's reads are fresh (``notify.BOUND``), so a change at
any process or host is seen here within a second, on PostgreSQL usually within milliseconds; a change made by this
process drops its own copy at once, after its commit. Without ``start`` (the CLI, a test without a served app)
every answer is read from the store.

Nothing here is kept while it is being changed: an answer read from the store is kept only if no invalidation came
while it was read (``Kept``), otherwise a read that began before a change could outlive its invalidation.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from sqlalchemy import Engine

from ..core import Frontdesk
from ..storage.db import on_revocation_here
from ..storage.notify import CATALOG, RATE_LIMIT, REVOCATION, Listener
from ..storage.resources import ResourceRow

__all__ = ["MAX_ANSWERS", "Kept", "Memory", "memory_of", "start", "stop"]

MAX_ANSWERS = 50_000  # answers kept per kind and process; past it the memory starts again empty

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_memories: weakref.WeakKeyDictionary[Engine, Memory] = weakref.WeakKeyDictionary()


class Kept(Generic[K, V]):
    """Answers by key, dropped all at once when what they answer changes anywhere.

    A change is rare next to the reads (a revocation, a failed client authentication, a new resource), so dropping
    everything costs one read per key in use, and needs no index from a change to the answers it touches."""

    def __init__(self, listener: Listener) -> None:
        self._listener = listener
        self._answers: dict[K, V] = {}
        self._epoch = 0
        self._lock = threading.Lock()

    def drop(self) -> None:
        with self._lock:
            self._epoch += 1
            self._answers = {}

    def get(self, key: K) -> V | None:
        """The kept answer, if there is one the listener still vouches for."""
        return self._answers.get(key) if self._listener.fresh() else None

    def read(self, key: K, load: Callable[[], V]) -> V:
        """The kept answer, or ``load()``'s, kept unless a change came while it was read."""
        known = self.get(key)
        if known is not None:
            return known
        epoch = self._epoch
        answer = load()
        self.keep(epoch, {key: answer})
        return answer

    def epoch(self) -> int:
        """Take before reading from the store what ``keep`` is then given."""
        return self._epoch

    def keep(self, epoch: int, answers: dict[K, V]) -> None:
        with self._lock:
            if epoch != self._epoch:
                return
            if len(self._answers) + len(answers) > MAX_ANSWERS:
                self._answers = {}
            self._answers.update(answers)


class Memory:
    """One process's memory of one store: revocation answers by jti, failure counts by limit key and window, the
    resource registry (under the one key ``None``), and the listener that drops each on its change. A changed or
    deleted client leaves the client cache the same way (on PostgreSQL, which names it)."""

    def __init__(self, fd: Frontdesk) -> None:
        self.listener = Listener(fd.engine, on_change=self._changed, on_client=fd.clients.forget)
        self.revocations: Kept[str, bool] = Kept(self.listener)
        self.failures: Kept[tuple[str, int], int] = Kept(self.listener)
        self.catalog: Kept[None, dict[str, ResourceRow]] = Kept(self.listener)
        self._drops: dict[str, Callable[[], None]] = {
            REVOCATION: self.revocations.drop,
            RATE_LIMIT: self.failures.drop,
            CATALOG: self.catalog.drop,
        }
        self.listener.start()  # last: its first read calls ``_changed`` at once, from its own thread

    def _changed(self, name: str) -> None:
        drop = self._drops.get(name)
        if drop is not None:
            drop()

    def close(self) -> None:
        self.listener.close()


def start(fd: Frontdesk) -> Memory | None:
    """Keep answers in this process, invalidated across processes (module docstring); on the event loop at lifespan
    start-up. None for an in-memory SQLite database, which no other process shares."""
    if fd.engine.url.database in (None, "", ":memory:") or fd.engine in _memories:
        return _memories.get(fd.engine)
    memory = _memories[fd.engine] = Memory(fd)
    # A revocation committed here drops this process's answers at once, not at the listener's next read.
    on_revocation_here(fd.engine, memory.revocations.drop)
    return memory


def stop(fd: Frontdesk) -> None:
    memory = _memories.pop(fd.engine, None)
    if memory is not None:
        on_revocation_here(fd.engine, None)
        memory.close()


def memory_of(engine: Engine) -> Memory | None:
    """This process's memory of the store, when it keeps one."""
    return _memories.get(engine)
