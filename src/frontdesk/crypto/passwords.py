"""Passwords chosen by people: argon2id (RFC 9106), the only secrets here that warrant a slow hash."""

from __future__ import annotations

import os
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["DUMMY_HASH", "hash_password", "verify_password"]

_hasher = PasswordHasher()
# Each check takes argon2's memory cost (64 MiB by default) for its duration: a burst of sign-ins must queue rather
# than multiply it by every thread of the server's pool.
_checks = threading.BoundedSemaphore(max(2, (os.cpu_count() or 1) * 2))
# Verified against when the username is unknown, so both paths cost the same (no user enumeration by timing).
DUMMY_HASH = _hasher.hash("frontdesk-dummy-password")


def hash_password(password: str) -> str:
    with _checks:
        return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    with _checks:
        try:
            return _hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
