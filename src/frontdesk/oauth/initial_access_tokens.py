"""Initial access tokens (RFC 7591 §3): what an operator hands a developer so that dynamic registration lets them
register more than an open registration may (``client_credentials``, restricted scopes), or register at all under
``[registration] mode = "token"``. Each is shown once at creation and stored as a digest; each change is audited."""

from __future__ import annotations

import secrets

from ..core import Frontdesk
from ..secret import new_token
from ..storage import audit
from ..storage.db import now, transaction
from ..storage.initial_access_tokens import (
    InitialAccessTokenRow,
    initial_access_tokens,
    insert_initial_access_token,
)
from ..storage.initial_access_tokens import revoke_initial_access_token as revoke_row

__all__ = [
    "InitialAccessTokenError",
    "InitialAccessTokenRow",
    "create_initial_access_token",
    "list_initial_access_tokens",
    "revoke_initial_access_token",
]

MAX_NAME = 255
MAX_LIFETIME = 366 * 24 * 3600


class InitialAccessTokenError(ValueError):
    """A token that cannot be made as asked (the operator's mistake, said in words)."""


def create_initial_access_token(
    fd: Frontdesk, *, name: str, expires_in: int | None, uses: int | None
) -> tuple[str, InitialAccessTokenRow]:
    """A new token (to be shown this once) and its record: valid ``expires_in`` seconds (None: until revoked) for
    ``uses`` registrations (None: any number)."""
    name = name.strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise InitialAccessTokenError(f"the name must be printable text of 1 to {MAX_NAME} characters")
    if expires_in is not None and not 0 < expires_in <= MAX_LIFETIME:
        raise InitialAccessTokenError(f"--expires-in must be between 1 and {MAX_LIFETIME} seconds")
    if uses is not None and uses < 1:
        raise InitialAccessTokenError("--uses must be at least 1")
    token = new_token("initial_access_token")
    at = now()
    with transaction(fd.engine) as conn:
        row = insert_initial_access_token(
            conn,
            token_id=secrets.token_hex(8),
            token=token,
            name=name,
            at=at,
            expires_at=at + expires_in if expires_in is not None else None,
            uses_left=uses,
        )
        audit.record(
            conn,
            "initial_access_token.created",
            "success",
            token_id=row.id,
            name=row.name,
            expires_at=row.expires_at,
            uses=row.uses_left,
        )
    return token, row


def list_initial_access_tokens(fd: Frontdesk) -> list[InitialAccessTokenRow]:
    with transaction(fd.engine, readonly=True) as conn:
        return initial_access_tokens(conn)


def revoke_initial_access_token(fd: Frontdesk, token_id: str) -> bool:
    """Revoke a token by its id; False when no unrevoked token has it."""
    with transaction(fd.engine) as conn:
        revoked = revoke_row(conn, token_id, now())
        if revoked:
            audit.record(conn, "initial_access_token.revoked", "success", token_id=token_id)
    return revoked
