"""The platform's API keys for the vault API, as purpose-named operations (RFC 6750 bearer credentials).

A key is shown once, at creation, and kept only as a digest: a lookup finds the row by the digest's index, so
nothing secret is compared byte by byte. Its ``last_used_at`` is written at most once a minute
(:data:`store.LAST_USED_EVERY`).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Engine, insert, select, update

from ..secret import Secret, digest, new_token
from ..storage.db import fetch, now, transaction
from ..storage.schema import ApiKey
from .store import ConnectionRow, VaultError, last_used_due, storable

__all__ = [
    "ApiKeyRecord",
    "api_key_and_connection",
    "api_keys",
    "authenticate_api_key",
    "create_api_key",
    "revoke_api_key",
]


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: str
    name: str
    scope: tuple[str, ...]
    created_at: int
    last_used_at: int | None
    revoked_at: int | None

    @property
    def may_export(self) -> bool:
        return "vault:export" in self.scope


def create_api_key(engine: Engine, name: str, *, export: bool = False) -> tuple[ApiKeyRecord, Secret]:
    """A key for the platform's backend, shown this once and kept as a digest."""
    if not name.strip():
        raise VaultError("name the API key after what uses it")
    key = new_token("api_key")
    record = ApiKeyRecord(
        "ak_" + secrets.token_hex(8), name.strip(), ("vault", "vault:export") if export else ("vault",), now(), None,
        None,
    )  # fmt: skip
    with transaction(engine) as conn:
        conn.execute(
            insert(ApiKey),
            {
                "id": record.id,
                "name": record.name,
                "digest": digest(key),
                "scope": " ".join(record.scope),
                "created_at": record.created_at,
            },
        )
    return record, Secret(key)


def _api_key(row: Any) -> ApiKeyRecord:
    return ApiKeyRecord(row.id, row.name, tuple(row.scope.split()), row.created_at, row.last_used_at, row.revoked_at)


# The API key's own checks run on every API call, so they are plain SQL on the driver's connection, one statement
# outside a transaction (storage/db.py ``fetch``): a SQLAlchemy Core read in a transaction costs ~20 times as much.
class _KeyRow(NamedTuple):
    """An ``api_keys`` row in ``_KEY_COLUMNS`` order, under the names ``_api_key`` reads."""

    id: str
    name: str
    scope: str
    created_at: int
    last_used_at: int | None
    revoked_at: int | None


_KEY_COLUMNS = ", ".join("k." + name for name in _KeyRow._fields)
_KEY_WIDTH = len(_KeyRow._fields)
_KEY_FOR = f"SELECT {_KEY_COLUMNS} FROM api_keys k WHERE k.digest = ?"  # noqa: S608  (constants; values bound)


def authenticate_api_key(engine: Engine, key: str) -> ApiKeyRecord | None:
    """Looked up by digest: the index finds the row, and nothing secret is compared byte by byte."""
    if not key.startswith("fd_ak_"):
        return None
    rows = fetch(engine, _KEY_FOR, (digest(key),))
    return _key_in_use(engine, rows[0]) if rows else None


def _key_in_use(engine: Engine, values: Sequence[Any]) -> ApiKeyRecord | None:
    """The key of a row in ``_KEY_COLUMNS`` order, or None when it was revoked; notes its use, once a minute."""
    row = _KeyRow(*values)
    if row.revoked_at is not None:
        return None
    at = now()
    if last_used_due(row.last_used_at, at):
        with transaction(engine) as conn:
            conn.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=at))
    return _api_key(row)


def api_keys(engine: Engine) -> list[ApiKeyRecord]:
    with transaction(engine, readonly=True) as conn:
        return [_api_key(r) for r in conn.execute(select(ApiKey).order_by(ApiKey.created_at)).all()]


def revoke_api_key(engine: Engine, key_id: str) -> bool:
    with transaction(engine) as conn:
        result = conn.execute(
            update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)).values(revoked_at=now())
        )
        return result.rowcount > 0


# "user" is a reserved word in PostgreSQL: every column is quoted. LEFT JOIN: a known key and an unknown connection
# is a 404, an unknown key a 401 whatever the connection.
_CONNECTION_COLUMNS = ", ".join('c."' + name + '"' for name in ConnectionRow._fields)
_KEY_AND_CONNECTION = (
    f"SELECT {_KEY_COLUMNS}, {_CONNECTION_COLUMNS} "  # noqa: S608  (constant column names; values bound)
    "FROM api_keys k LEFT JOIN vault_connections c ON c.id = ? WHERE k.digest = ?"
)


def api_key_and_connection(
    engine: Engine, key: str, connection_id: str
) -> tuple[ApiKeyRecord | None, ConnectionRow | None]:
    """The proxy's two lookups in one statement (one round trip on PostgreSQL): the API key, None when unknown or
    revoked, and then the connection, None when there is none of that id."""
    if not key.startswith("fd_ak_"):
        return None, None
    if not storable(connection_id):
        return authenticate_api_key(engine, key), None
    rows = fetch(engine, _KEY_AND_CONNECTION, (connection_id, digest(key)))
    if not rows:
        return None, None
    row = rows[0]
    record = _key_in_use(engine, row[:_KEY_WIDTH])
    if record is None or row[_KEY_WIDTH] is None:
        return record, None
    return record, ConnectionRow(*row[_KEY_WIDTH:])
