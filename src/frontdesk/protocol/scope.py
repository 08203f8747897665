"""Scopes (RFC 6749 §3.3): space-delimited, case-sensitive tokens of NQCHAR."""

from __future__ import annotations

import re

from ..errors import InvalidScope

__all__ = ["OIDC_SCOPES", "format_scope", "parse_scope"]

_TOKEN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")

# Plain words for the consent screen; operators describe their own scopes the same way.
OIDC_SCOPES = {
    "openid": "Confirm who you are",
    "profile": "See your name and username",
    "email": "See your email address",
    "offline_access": "Keep access when you are not using it",
}


def parse_scope(value: str | None) -> tuple[str, ...]:
    """Ordered, de-duplicated scope tokens; refuses characters outside NQCHAR."""
    if value is None:
        return ()
    out: list[str] = []
    for token in value.split(" "):
        if token == "":
            continue
        if not _TOKEN.fullmatch(token):
            raise InvalidScope("scope contains characters outside RFC 6749 §3.3")
        if token not in out:
            out.append(token)
    return tuple(out)


def format_scope(scopes: tuple[str, ...] | list[str]) -> str:
    return " ".join(scopes)
