"""RFC 6750 bearer tokens: the Authorization header only (OAuth 2.1 §5.1 removes the query method)."""

from __future__ import annotations

__all__ = ["bearer_token", "www_authenticate"]


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


def www_authenticate(error: str | None = None, description: str | None = None, realm: str = "frontdesk") -> str:
    parts = [f'realm="{realm}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append('error_description="{}"'.format(description.replace('"', "'")))
    return "Bearer " + ", ".join(parts)
