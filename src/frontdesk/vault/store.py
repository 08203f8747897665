"""The vault's connections as purpose-named operations (API keys, integrations and connect sessions have their own:
api_key_store.py, integration_store.py, session_store.py).

Tokens are sealed with the vault keys (AES-256-GCM, a fresh nonce each time, the row's id as associated data, the key
id in a column so rotation can find what is left). Nothing here returns a token except :func:`credentials_of`, which
the refresher and the proxy use.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from ..storage.db import now, transaction
from ..storage.schema import VaultConnection

if TYPE_CHECKING:  # keys.py reads the sealed rows' key ids through this module
    from .keys import VaultKeys

__all__ = [
    "LAST_USED_EVERY",
    "ConnectionRecord",
    "ConnectionRow",
    "Credentials",
    "VaultError",
    "connection",
    "connections_of",
    "credentials_of",
    "delete_connection",
    "idle_connections",
    "last_used_due",
    "mark_needs_reauth",
    "note_refresh_failure",
    "person_candidates",
    "record_of",
    "reseal_connections",
    "save_connection",
    "save_refreshed",
    "sealed_connections",
    "sealing_key_ids",
    "storable",
    "touch",
]

Status = Literal["active", "needs_reauth", "revoked"]
# ``last_used_at`` of keys and connections is bookkeeping for the operator: written at most once a minute each, so
# that a busy key or connection does not turn every read into a write.
LAST_USED_EVERY = 60


def storable(text: str) -> bool:
    """Whether a lookup by ``text`` may go to the database: PostgreSQL text holds no NUL (its manual, §8.3), and a
    query with one fails there with an error (a 500) instead of finding nothing. Such a value is found nowhere, on
    either database."""
    return "\x00" not in text


def last_used_due(last_used_at: int | None, at: int) -> bool:
    return last_used_at is None or at - last_used_at > LAST_USED_EVERY


class VaultError(ValueError):
    """A request the vault cannot carry out; the message is safe to show the operator or the platform."""


@dataclass(frozen=True, slots=True, repr=False)
class Credentials:
    """What the provider gave: only ever sealed at rest, only ever placed in an outgoing request."""

    access_token: str
    refresh_token: str | None = None
    token_type: str = "Bearer"

    def __repr__(self) -> str:
        return "Credentials(********)"

    def seal(self, keys: VaultKeys, connection_id: str) -> tuple[bytes, str]:
        blob = json.dumps(
            {"access_token": self.access_token, "refresh_token": self.refresh_token, "token_type": self.token_type}
        ).encode()
        return keys.seal(blob, b"vault connection:" + connection_id.encode())

    @classmethod
    def open(cls, keys: VaultKeys, connection_id: str, envelope: bytes) -> Credentials:
        data = json.loads(keys.open(envelope, b"vault connection:" + connection_id.encode()))
        return cls(data["access_token"], data.get("refresh_token"), data.get("token_type") or "Bearer")


@dataclass(frozen=True, slots=True)
class ConnectionRecord:
    """A connection as it may be shown to the platform: status, scopes, expiry — never a token."""

    id: str
    integration: str
    user: str
    status: Status
    scopes: tuple[str, ...]
    meta: Mapping[str, str]
    expires_at: int | None
    refreshed_at: int | None
    last_used_at: int | None
    failures: int
    retry_at: int | None
    last_error: str | None
    created_at: int
    updated_at: int
    # Who last called through it (``vault.person_tokens.Caller``, as JSON): an API key, or a client and its actors.
    last_used_by: str | None = None
    # The frontdesk person it is (``vault.connect.owner``), None when it is no person's; not shown to the platform.
    person: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "integration": self.integration,
            "user": self.user,
            "status": self.status,
            "scopes": list(self.scopes),
            "metadata": dict(self.meta),
            "expires_at": self.expires_at,
            "refreshed_at": self.refreshed_at,
            "last_used_at": self.last_used_at,
            "last_used_by": json.loads(self.last_used_by) if self.last_used_by else None,
            "last_error": self.last_error,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def record_of(row: Any) -> ConnectionRecord:
    return ConnectionRecord(
        row.id,
        row.integration,
        row.user,
        row.status,
        tuple(json.loads(row.scopes)),
        json.loads(row.meta),
        row.expires_at,
        row.refreshed_at,
        row.last_used_at,
        row.failures,
        row.retry_at,
        row.last_error,
        row.created_at,
        row.updated_at,
        row.last_used_by,
        row.person,
    )


class ConnectionRow(NamedTuple):
    """A ``vault_connections`` row read as plain SQL, under its columns' names: :func:`record_of`,
    :func:`credentials_of` and the refresher take it as they take a SQLAlchemy row."""

    id: str
    integration: str
    user: str
    status: str
    scopes: str
    meta: str
    credentials: bytes
    key_id: str
    expires_at: int | None
    refreshed_at: int | None
    last_used_at: int | None
    failures: int
    retry_at: int | None
    last_error: str | None
    created_at: int
    updated_at: int
    last_used_by: str | None
    person: str | None


def connection(conn: Connection, connection_id: str, *, for_update: bool = False) -> Any:
    if not storable(connection_id):
        return None
    query = select(VaultConnection).where(VaultConnection.id == connection_id)
    if for_update:
        # The refresher's row lock (PostgreSQL); SQLite's write transaction already holds the database lock.
        query = query.with_for_update()
    return conn.execute(query).one_or_none()


def connections_of(engine: Engine, user: str, integration_name: str | None = None) -> list[ConnectionRecord]:
    if not storable(user) or (integration_name is not None and not storable(integration_name)):
        return []
    query = select(VaultConnection).where(VaultConnection.user == user)
    if integration_name is not None:
        query = query.where(VaultConnection.integration == integration_name)
    with transaction(engine, readonly=True) as conn:
        rows = conn.execute(query.order_by(VaultConnection.created_at)).all()
    return [record_of(r) for r in rows]


def person_candidates(conn: Connection, person: str) -> list[ConnectionRecord]:
    """The frontdesk person ``person``'s connections, oldest first: those whose ``person`` the link that connected
    them set to them (``vault.connect.owner``), by its index."""
    if not storable(person):
        return []
    query = select(VaultConnection).where(VaultConnection.person == person).order_by(VaultConnection.created_at)
    return [record_of(r) for r in conn.execute(query).all()]


def credentials_of(keys: VaultKeys, row: Any) -> Credentials:
    return Credentials.open(keys, row.id, row.credentials)


def save_connection(
    conn: Connection,
    keys: VaultKeys,
    *,
    integration_name: str,
    user: str,
    credentials: Credentials,
    scopes: Sequence[str],
    meta: Mapping[str, str],
    expires_at: int | None,
    person: str | None,
) -> tuple[ConnectionRecord, bool]:
    """Store a completed connection for the frontdesk ``person`` it is (None: nobody's), with the credentials, so
    that the one who gave them is the one it is: reconnecting updates the same connection in place (its id
    survives) and its person with it. Returns the record and whether it is new."""
    at = now()
    existing = conn.execute(
        select(VaultConnection)
        .where(VaultConnection.integration == integration_name, VaultConnection.user == user)
        .with_for_update()
    ).one_or_none()
    connection_id = existing.id if existing else "conn_" + secrets.token_urlsafe(16)
    sealed, kid = credentials.seal(keys, connection_id)
    values = {
        "status": "active",
        "scopes": json.dumps(list(scopes)),
        "meta": json.dumps(dict(meta), sort_keys=True),
        "credentials": sealed,
        "key_id": kid,
        "expires_at": expires_at,
        "refreshed_at": at,
        "failures": 0,
        "retry_at": None,
        "last_error": None,
        "updated_at": at,
        "person": person,
    }
    if existing:
        conn.execute(update(VaultConnection).where(VaultConnection.id == connection_id).values(**values))
    else:
        conn.execute(
            insert(VaultConnection),
            {"id": connection_id, "integration": integration_name, "user": user, "created_at": at, **values},
        )
    return record_of(connection(conn, connection_id)), existing is None


def save_refreshed(
    conn: Connection,
    keys: VaultKeys,
    connection_id: str,
    credentials: Credentials,
    *,
    expires_at: int | None,
    meta: Mapping[str, str],
    scopes: Sequence[str] | None,
    at: int,
) -> None:
    """Store what a refresh returned (RFC 6749 §6): the new credentials, sealed, with the backoff cleared. ``scopes``
    None keeps the stored scopes: a provider that names none granted the same (§5.1)."""
    sealed, kid = credentials.seal(keys, connection_id)
    values: dict[str, Any] = {
        "credentials": sealed,
        "key_id": kid,
        "expires_at": expires_at,
        "refreshed_at": at,
        "failures": 0,
        "retry_at": None,
        "last_error": None,
        "updated_at": at,
        "meta": json.dumps(dict(meta), sort_keys=True),
    }
    if scopes is not None:
        values["scopes"] = json.dumps(list(scopes))
    conn.execute(update(VaultConnection).where(VaultConnection.id == connection_id).values(**values))


def mark_needs_reauth(conn: Connection, connection_id: str, error: str, at: int) -> None:
    """The grant is gone at the provider (``invalid_grant``, RFC 6749 §5.2): only the person can connect again."""
    conn.execute(
        update(VaultConnection)
        .where(VaultConnection.id == connection_id)
        .values(status="needs_reauth", last_error=error, updated_at=at)
    )


def note_refresh_failure(
    conn: Connection, connection_id: str, *, failures: int, retry_at: int, error: str, at: int
) -> None:
    """A refresh the provider failed for its own reasons: the connection is kept, refreshes wait until ``retry_at``."""
    conn.execute(
        update(VaultConnection)
        .where(VaultConnection.id == connection_id)
        .values(failures=failures, retry_at=retry_at, last_error=error, updated_at=at)
    )


def delete_connection(conn: Connection, connection_id: str) -> None:
    conn.execute(delete(VaultConnection).where(VaultConnection.id == connection_id))


def touch(conn: Connection, connection_id: str, at: int, by: str | None = None) -> None:
    """Note a call through the connection, and who made it when known (``by``)."""
    values: dict[str, Any] = {"last_used_at": at}
    if by is not None:
        values["last_used_by"] = by
    conn.execute(update(VaultConnection).where(VaultConnection.id == connection_id).values(**values))


def idle_connections(
    conn: Connection, integration_name: str, idle_for: int, at: int, limit: int
) -> list[ConnectionRecord]:
    """Active connections of ``integration_name`` neither made nor refreshed in the last ``idle_for`` seconds, and
    not backing off: the keep-alive sweep's work, at most ``limit`` of them."""
    rows = conn.execute(
        select(VaultConnection)
        .where(
            VaultConnection.integration == integration_name,
            VaultConnection.status == "active",
            func.coalesce(VaultConnection.refreshed_at, VaultConnection.created_at) <= at - idle_for,
            func.coalesce(VaultConnection.retry_at, 0) <= at,
        )
        .limit(limit)
    ).all()
    return [record_of(r) for r in rows]


def reseal_connections(conn: Connection, keys: VaultKeys, batch: int) -> int:
    """Re-seal up to ``batch`` connections' credentials sealed under another key than the active one, their rows
    held to the end of the caller's transaction. Returns how many."""
    rows = conn.execute(
        select(VaultConnection).where(VaultConnection.key_id != keys.active_id).limit(batch).with_for_update()
    ).all()
    for row in rows:
        sealed, kid = credentials_of(keys, row).seal(keys, row.id)
        conn.execute(update(VaultConnection).where(VaultConnection.id == row.id).values(credentials=sealed, key_id=kid))
    return len(rows)


def sealed_connections(conn: Connection) -> int:
    """How many connections hold sealed credentials (every one does)."""
    return int(conn.execute(select(func.count()).select_from(VaultConnection)).scalar_one())


def sealing_key_ids(conn: Connection) -> set[str]:
    """The ids of the vault keys the connections' credentials are sealed under."""
    return {r for (r,) in conn.execute(select(VaultConnection.key_id).distinct())}
