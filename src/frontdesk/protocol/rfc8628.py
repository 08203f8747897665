"""RFC 8628 device authorization grant: user codes people can type.

§6.1: a short code from an alphabet without look-alike characters, compared case-insensitively with separators
ignored. Twenty consonants, eight characters: 20^8 ≈ 2^34.6 possibilities, against the handful of guesses the
rate limits and the code lifetime allow.
"""

from __future__ import annotations

import secrets

__all__ = ["ALPHABET", "format_user_code", "new_user_code", "normalise_user_code"]

ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"


def new_user_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(8))


def format_user_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def normalise_user_code(typed: str) -> str:
    return "".join(c for c in typed.upper() if c.isalnum())
