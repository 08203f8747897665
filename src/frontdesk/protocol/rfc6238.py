"""RFC 6238 TOTP: six digits every 30 seconds (the parameters every authenticator app agrees on), one step of
clock drift either way (§5.2), and each step accepted once."""

from __future__ import annotations

import hmac

import pyotp

__all__ = ["DIGITS", "PERIOD", "matching_step", "new_secret", "provisioning_uri"]

DIGITS = 6
PERIOD = 30
DRIFT_STEPS = 1


def new_secret() -> str:
    """160 bits (RFC 4226 §4 recommends at least that), base32 as authenticator apps expect."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD).provisioning_uri(name=account, issuer_name=issuer)


def matching_step(secret: str, code: str, at: int, after: int | None = None) -> int | None:
    """The time step ``code`` is valid for at ``at`` (within the drift), if it is later than ``after``."""
    code = "".join(code.split())
    if len(code) != DIGITS or not (code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD)
    current = at // PERIOD
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if after is not None and step <= after:
            continue
        if hmac.compare_digest(totp.at(step * PERIOD), code):
            return step
    return None
