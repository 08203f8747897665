"""Secrets: generation, digests, masked values and constant-time comparison.

High-entropy secrets (codes, refresh tokens, generated client secrets) are stored as SHA-256 digests: with 256
bits of randomness a slow hash buys nothing (DESIGN §4), and a digest keeps the token endpoint fast.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

__all__ = ["Secret", "digest", "new_token", "same"]

# Prefixes let secret scanners recognise a leaked frontdesk credential.
PREFIXES = {
    "code": "fd_ac_",
    "refresh_token": "fd_rt_",
    "client_secret": "fd_cs_",
    "device_code": "fd_dc_",
    "session": "fd_ss_",
    "interaction": "fd_ix_",
    "api_key": "fd_ak_",
    "connect_link": "fd_vc_",
    "connect_state": "fd_vs_",
    "registration_access_token": "fd_rat_",  # RFC 7592 §3
    "initial_access_token": "fd_iat_",  # RFC 7591 §3
    "auth_req_id": "fd_ar_",  # OpenID Connect CIBA Core 1.0 §7.3
    "admin_token": "fd_adm_",  # the admin API (frontdesk.admin.principals)
    "email_verify_link": "fd_ev_",  # oauth/email_links.py
    "password_reset_link": "fd_pr_",
}


@dataclass(frozen=True, slots=True, repr=False)
class Secret:
    """A value that must never reach a log or a traceback: its repr is masked."""

    value: str

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__


def new_token(kind: str) -> str:
    """A URL-safe token with 256 bits of randomness and the scanner prefix of its kind."""
    return PREFIXES[kind] + secrets.token_urlsafe(32)


def digest(value: str) -> str:
    """The at-rest form of a high-entropy secret: hex SHA-256."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time string comparison."""
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))
