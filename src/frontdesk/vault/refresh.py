"""Refreshing a connection's tokens: ahead of expiry, once at a time, never losing a rotated refresh token.

The field's most common vault failure is two workers refreshing the same rotating refresh token: one wins, the other
gets ``invalid_grant`` and, believing the grant dead, throws the winner's new token away. Here:

1. inside a process, callers of one connection queue on one lock (single flight);
2. across processes, the refresh runs in a transaction holding the connection's row (``SELECT … FOR UPDATE`` on
   PostgreSQL; SQLite's write transaction holds the database);
3. after the lock the row is read again, and a caller whose need was met by the previous holder takes the new token
   without calling the provider;
4. the rotated refresh token is stored in that same transaction; when the provider returns none, the old one stays;
5. ``invalid_grant`` from the provider, for the refresh token that is still the stored one (we hold the row), means
   the grant is gone: the connection becomes ``needs_reauth``, audited, and the platform is told by webhook;
6. a timeout, a 5xx or a 429 is the provider's trouble, not the person's: the connection is kept, and refreshes back
   off (30 s doubling to an hour) so a provider outage is not hammered.
"""

from __future__ import annotations

import json
import logging
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import update

from ..storage import audit
from ..storage.db import now, transaction
from ..storage.schema import VaultConnection
from . import oauth, store
from .catalog import Provider
from .keys import VaultKeys
from .store import ConnectionRecord, Credentials, Integration, record_of

__all__ = ["BackingOff", "Refresher", "due"]

log = logging.getLogger("frontdesk.vault")


class BackingOff(Exception):
    """The provider failed recently; try again at ``retry_at``."""

    def __init__(self, retry_at: int, reason: str) -> None:
        super().__init__(reason)
        self.retry_at = retry_at
        self.reason = reason


def due(row: Any, provider: Provider, at: int) -> bool:
    return row.expires_at is not None and row.expires_at - provider.refresh_margin <= at


def backoff(failures: int) -> int:
    return int(min(30 * 2 ** max(failures - 1, 0), 3600))


@dataclass(frozen=True, slots=True, repr=False)
class Fresh:
    record: ConnectionRecord
    credentials: Credentials | None  # None when the connection is not active


class Refresher:
    STRIPES = 256

    def __init__(
        self,
        engine: Any,
        keys: VaultKeys,
        http: httpx.Client,
        on_dead: Callable[[ConnectionRecord, str], None],
    ) -> None:
        self.engine = engine
        self.keys = keys
        self.http = http
        self.on_dead = on_dead
        # Striped locks: one connection always maps to one lock, and no per-connection entry ever needs evicting.
        self._stripes = tuple(threading.Lock() for _ in range(self.STRIPES))

    def _lock(self, connection_id: str) -> threading.Lock:
        return self._stripes[zlib.crc32(connection_id.encode()) % self.STRIPES]

    def fresh(
        self,
        connection_id: str,
        integration: Integration,
        provider: Provider,
        values: dict[str, str],
        *,
        force: bool = False,
        stale: str | None = None,
        row: Any = None,
    ) -> Fresh:
        """The connection's usable credentials, refreshed first when due, or when ``force`` says the provider just
        refused ``stale`` (the access token a call was made with). ``row`` is the connection as the caller just
        read it, saving a second read on the proxy's path; a refresh always reads it again under the lock."""
        at = now()
        if row is None:
            with transaction(self.engine, readonly=True) as conn:
                row = store.connection(conn, connection_id)
        if row is None:
            raise LookupError(connection_id)
        if row.status != "active":
            return Fresh(record_of(row), None)
        if not force and not due(row, provider, at):
            return Fresh(record_of(row), store.credentials_of(self.keys, row))
        with self._lock(connection_id):
            return self._refresh(connection_id, integration, provider, values, force=force, stale=stale)

    def _refresh(
        self,
        connection_id: str,
        integration: Integration,
        provider: Provider,
        values: dict[str, str],
        *,
        force: bool,
        stale: str | None,
    ) -> Fresh:
        failure: oauth.ProviderError | None = None
        with transaction(self.engine) as conn:
            at = now()
            row = store.connection(conn, connection_id, for_update=True)
            if row is None:
                raise LookupError(connection_id)
            old = store.credentials_of(self.keys, row)
            if row.status != "active":
                return Fresh(record_of(row), None)
            if force and stale is not None and old.access_token != stale:
                return Fresh(record_of(row), old)  # another caller refreshed since that call was made
            if not force and not due(row, provider, at):
                return Fresh(record_of(row), old)  # the lock's previous holder refreshed it
            expired = row.expires_at is not None and row.expires_at <= at
            if row.retry_at is not None and row.retry_at > at:
                if expired or force:
                    raise BackingOff(row.retry_at, row.last_error or "the provider failed recently")
                return Fresh(record_of(row), old)  # still valid for a while: use it, retry later
            detail = {"connection": connection_id, "integration": integration.name, "user": row.user}
            try:
                tokens = oauth.refresh(self.http, provider, integration, values, old)
            except oauth.GrantDead as exc:
                conn.execute(
                    update(VaultConnection)
                    .where(VaultConnection.id == connection_id)
                    .values(status="needs_reauth", last_error=exc.code, updated_at=at)
                )
                audit.record(conn, "vault.connection.needs_reauth", "failure", reason=exc.code, **detail)
                dead = record_of(store.connection(conn, connection_id))
                failure = exc
            except oauth.ProviderError as exc:  # Transient or ProviderRefused: keep the connection, back off
                failures = row.failures + 1
                conn.execute(
                    update(VaultConnection)
                    .where(VaultConnection.id == connection_id)
                    .values(failures=failures, retry_at=at + backoff(failures), last_error=exc.code, updated_at=at)
                )
                audit.record(conn, "vault.connection.refresh", "failure", reason=exc.code, **detail)
                if isinstance(exc, oauth.ProviderRefused):
                    log.error("provider refused a refresh", extra={"error": exc.code, **detail})
                failure = exc
            else:
                sealed, kid = tokens.credentials.seal(self.keys, connection_id)
                meta = {**json.loads(row.meta), **tokens.kept}
                values_ = {
                    "credentials": sealed,
                    "key_id": kid,
                    "expires_at": at + tokens.expires_in if tokens.expires_in is not None else None,
                    "refreshed_at": at,
                    "failures": 0,
                    "retry_at": None,
                    "last_error": None,
                    "updated_at": at,
                    "meta": json.dumps(meta, sort_keys=True),
                }
                if tokens.scopes is not None:
                    values_["scopes"] = json.dumps(list(tokens.scopes))
                conn.execute(update(VaultConnection).where(VaultConnection.id == connection_id).values(**values_))
                audit.record(
                    conn,
                    "vault.connection.refreshed",
                    "success",
                    rotated=tokens.credentials.refresh_token != old.refresh_token,
                    **detail,
                )
                return Fresh(record_of(store.connection(conn, connection_id)), tokens.credentials)
        if isinstance(failure, oauth.GrantDead):
            self.on_dead(dead, failure.code)
            return Fresh(dead, None)
        assert failure is not None
        if expired or force:
            raise BackingOff(at + backoff(row.failures + 1), failure.code)
        return Fresh(record_of(row), old)
