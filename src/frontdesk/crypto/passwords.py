"""Passwords chosen by people: argon2id (RFC 9106), the only secrets here that warrant a slow hash.

The cost of new hashes is the process's ``[passwords]`` setting, applied by ``use_cost`` when frontdesk opens; a
stored hash carries the cost it was made with, so hashes made under any earlier setting still verify."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["hash_password", "use_cost", "verify_password"]


@dataclass(frozen=True, slots=True)
class _Hashing:
    hasher: PasswordHasher
    # Verified against when there is no stored hash (an unknown username), so both paths cost the same: no user
    # enumeration by timing. Made at the configured cost, as every real hash is.
    dummy: str


def _hashing(time_cost: int, memory_cost: int, parallelism: int) -> _Hashing:
    hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)
    return _Hashing(hasher, hasher.hash("frontdesk-dummy-password"))


_lock = threading.Lock()
_known: dict[tuple[int, int, int], _Hashing] = {}
# argon2-cffi's defaults, as the default ``[passwords]`` setting: the cost until ``use_cost`` says otherwise.
_cost = (3, 65536, 4)
# Each check takes argon2's memory cost (64 MiB by default) for its duration: a burst of sign-ins must queue rather
# than multiply it by every thread of the server's pool.
_checks = threading.BoundedSemaphore(max(2, (os.cpu_count() or 1) * 2))


def _current() -> _Hashing:
    cost = _cost
    made = _known.get(cost)
    if made is not None:
        return made
    with _lock:
        if cost not in _known:
            _known[cost] = _hashing(*cost)
        return _known[cost]


def use_cost(time_cost: int, memory_cost: int, parallelism: int) -> None:
    """Make new hashes at this cost (validated by ``Settings``, which holds it to a floor), from now on. Called as
    frontdesk opens, which also makes the dummy hash then rather than at the first unknown username."""
    global _cost
    _cost = (time_cost, memory_cost, parallelism)
    _current()


def hash_password(password: str) -> str:
    hashing = _current()
    with _checks:
        return hashing.hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches the ``stored`` hash; with none stored, False after a check of the same cost."""
    hashing = _current()
    with _checks:
        try:
            return hashing.hasher.verify(hashing.dummy if stored is None else stored, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
