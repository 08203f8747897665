"""The signing key ring: per algorithm one *active* key that signs, one *next* key published ahead of use, and
*retired* keys kept in the JWKS until everything they signed has expired.

Private keys live in the database sealed under the master key, behind a :class:`KeyStore` (storage/signing_keys.py;
the core wires the two). Each process keeps parsed key objects and reloads the ring at most every
``RELOAD_SECONDS`` so that a rotation made by any process is picked up everywhere.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from joserfc import jwt

from ..config import SIGNING_ALGS
from .aead import MasterKey
from .keys import KeyInfo, KeySet, StoredKey, new_stored_key, read_key_set

__all__ = ["KeyRing", "KeyStore", "NewKey"]

log = logging.getLogger("frontdesk.keys")
RELOAD_SECONDS = 30.0

# (alg, state, at) -> a freshly generated key, sealed: called by the store inside its transaction.
NewKey = Callable[[str, str, int], StoredKey]


class KeyStore(Protocol):
    """The key ring's rows. Each write runs in one transaction under a lock shared by every process, so that
    processes starting or rotating at once take turns."""

    def add_missing(self, algs: Sequence[str], new_key: NewKey) -> list[str]:
        """Add an active and a next key for every algorithm that lacks one; returns the kids added."""
        ...

    def rotate(self, algs: Sequence[str], retire_for: int, new_key: NewKey) -> list[str]:
        """Retire each active key (published ``retire_for`` seconds more), promote the next one (or add an active
        key where none is next), and add a fresh next key; returns the kids of the new next keys."""
        ...

    def infos(self) -> list[KeyInfo]:
        """Every stored key, without its private part, oldest first."""
        ...

    def published(self) -> list[StoredKey]:
        """The keys in the JWKS now, oldest first: all but those retired past their ``publish_until``."""
        ...


class KeyRing:
    def __init__(self, store: KeyStore, master: MasterKey, retire_for: Callable[[], int]) -> None:
        self._store = store
        self._master = master
        self._retire_for = retire_for  # seconds a retired key must stay published
        self._loaded: KeySet | None = None
        self._lock = threading.Lock()
        self._reloading = threading.Lock()  # held while a background reload runs: one at a time

    def _new_key(self, alg: str, state: str, at: int) -> StoredKey:
        return new_stored_key(self._master, alg, state, at)

    def ensure(self) -> list[str]:
        """Create an active and a next key for every algorithm that has none; returns the kids created."""
        created = self._store.add_missing(SIGNING_ALGS, self._new_key)
        self._loaded = None
        return created

    def rotate(self) -> list[str]:
        """Promote each next key to active, retire the active one, and publish a fresh next key."""
        created = self._store.rotate(SIGNING_ALGS, self._retire_for(), self._new_key)
        self._loaded = None
        return created

    def list(self) -> list[KeyInfo]:
        return self._store.infos()

    def read(self) -> None:
        """Read the ring now, as the first request otherwise would; raises ``DecryptionFailed`` when a stored private
        key does not open under this master key."""
        self._load()

    def _load(self) -> KeySet:
        """The ring as last read. Past ``RELOAD_SECONDS`` a background thread re-reads it while requests go on
        with the one they have: a request never waits for the database here (it may be inside a transaction that
        holds the last pooled connection), except for the very first read: a served process makes that one at
        start-up (asgi.py), since requests that waited for it here, each holding a pooled connection, left it none
        (on PostgreSQL, 30 concurrent refreshes on a fresh worker stalled for the pool's 30 s timeout)."""
        loaded = self._loaded
        if loaded is None:
            with self._lock:
                if self._loaded is None:
                    self._loaded = self._read()
                return self._loaded
        if time.monotonic() - loaded.loaded_at >= RELOAD_SECONDS and self._reloading.acquire(blocking=False):
            threading.Thread(target=self._reload, args=(loaded,), name="frontdesk-keyring", daemon=True).start()
        return loaded

    def _reload(self, stale: KeySet) -> None:
        try:
            fresh = self._read()
            with self._lock:
                # ensure() or rotate() in this process replaced the ring meanwhile: their read is the newer one.
                if self._loaded is stale:
                    self._loaded = fresh
        except Exception:  # the old ring stays in use; the next request past the deadline tries again
            log.exception("signing key ring reload failed")
        finally:
            self._reloading.release()

    def _read(self) -> KeySet:
        return read_key_set(self._store.published(), self._master, time.monotonic(), self._loaded)

    @property
    def jwks(self) -> bytes:
        return self._load().jwks

    def sign(self, claims: dict[str, Any], alg: str, typ: str = "JWT") -> str:
        return self._load().sign(claims, alg, typ)

    def verify(self, token: str) -> jwt.Token:
        """Verify a JWT signed by this ring; raises ``ValueError`` (or a joserfc error) when it is not ours.

        A token that verified once is remembered (by its exact text) until the next reload of the ring, so a
        resource server introspecting the same token again costs no second signature check."""
        return self._load().verify(token)
