"""Refreshing a connection's tokens: ahead of expiry, once at a time, never losing a rotated refresh token.

The field's most common vault failure is two workers refreshing the same rotating refresh token: one wins, the other
gets ``invalid_grant`` and, believing the grant dead, throws the winner's new token away. Here:

1. inside a process, the first caller that finds a connection due runs its refresh, and every caller that finds that
   refresh in flight waits for it and takes its result (single flight): thirty calls after expiry make one refresh
   and one database transaction, not thirty in a row. A waiter holds a :class:`concurrent.futures.Future`, which a
   thread waits on with ``result()`` and an event loop with ``asyncio.wrap_future``, so the proxy's waiters hold no
   worker thread;
2. across processes, the refresh runs in a transaction holding the connection's row (``SELECT … FOR UPDATE`` on
   PostgreSQL; SQLite's write transaction holds the database);
3. after the lock the row is read again, and a caller whose need was met by the previous holder takes the new token
   without calling the provider;
4. the rotated refresh token is stored in that same transaction; when the provider returns none, the old one stays;
5. ``invalid_grant`` from the provider, for the refresh token that is still the stored one (we hold the row), means
   the grant is gone: the connection becomes ``needs_reauth``, audited, and the platform is told by webhook;
6. a timeout, a 5xx or a 429 is the provider's trouble, not the person's: the connection is kept, and refreshes back
   off (30 s doubling to an hour) so a provider outage is not hammered;
7. "ahead of expiry" means at most half the token's lifetime ahead: a provider whose tokens live no longer than the
   margin (5-minute tokens against the default 300 s) would otherwise have every token due the moment it is issued,
   and every call would refresh, rotating the refresh token each time (step 3 could never find the need met).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import httpx

from ..storage import audit
from ..storage.db import now, transaction
from . import oauth, store
from .catalog import Provider
from .integration_store import Integration
from .keys import VaultKeys
from .store import ConnectionRecord, Credentials, record_of

__all__ = ["BackingOff", "Flight", "Fresh", "Refresher", "due", "margin", "serves"]

log = logging.getLogger("frontdesk.vault")


class BackingOff(Exception):
    """The provider failed recently; try again at ``retry_at``."""

    def __init__(self, retry_at: int, reason: str) -> None:
        super().__init__(reason)
        self.retry_at = retry_at
        self.reason = reason

    def retry_after(self) -> int:
        """Whole seconds until ``retry_at``, at least one: a ``Retry-After`` (RFC 9110 §10.2.3)."""
        return max(self.retry_at - now(), 1)


def margin(row: Any, provider: Provider) -> int:
    """Seconds ahead of expiry that the connection's token falls due: the provider's margin, but never more than half
    the lifetime the provider gave this token (``expires_at - refreshed_at``: both are written together, from the
    token response's ``expires_in``, when a token is stored)."""
    if row.refreshed_at is None or row.expires_at is None:
        return int(provider.refresh_margin)
    return int(min(provider.refresh_margin, max(row.expires_at - row.refreshed_at, 0) // 2))


def due(row: Any, provider: Provider, at: int) -> bool:
    return row.expires_at is not None and row.expires_at - margin(row, provider) <= at


def serves(fresh: Fresh, force: bool, stale: str | None) -> bool:
    """Whether a refresh another caller ran meets this caller's need. It always does, but for a caller whose call
    the provider refused (``force``) when that refresh only re-read the row and found ``stale`` still stored."""
    return not force or stale is None or fresh.credentials is None or fresh.credentials.access_token != stale


def backoff(failures: int) -> int:
    return int(min(30 * 2 ** max(failures - 1, 0), 3600))


@dataclass(frozen=True, slots=True, repr=False)
class Fresh:
    record: ConnectionRecord
    credentials: Credentials | None  # None when the connection is not active


Flight = Future[Fresh]


class Refresher:
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
        # The refreshes in flight in this process, by connection: an entry lives from the first caller that found
        # the connection due until its refresh is over, so the table holds at most one per refresh running.
        self._flights: dict[str, Flight] = {}
        self._guard = threading.Lock()

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
        read it, saving a second read on the proxy's path; a refresh always reads it again under the lock.
        Blocks while another caller's refresh of the connection is in flight (see :meth:`begin` not to)."""
        for _ in range(2):  # a second time only when the refresh joined did not serve (rare: see serves)
            outcome = self.begin(connection_id, integration, provider, values, force=force, stale=stale, row=row)
            if isinstance(outcome, Fresh):
                return outcome
            joined = outcome.result()
            if serves(joined, force, stale):
                break
            row = None
        return joined

    def begin(
        self,
        connection_id: str,
        integration: Integration,
        provider: Provider,
        values: dict[str, str],
        *,
        force: bool = False,
        stale: str | None = None,
        row: Any = None,
    ) -> Fresh | Flight:
        """As :meth:`fresh`, but a caller that finds a refresh of the connection in flight gets that refresh (a
        future) instead of waiting for it here; check its result with :func:`serves`. The first caller runs the
        refresh itself and gets its result."""
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
        with self._guard:
            flight = self._flights.get(connection_id)
            if flight is not None:
                return flight
            flight = self._flights[connection_id] = Flight()
        # Running from the start: a waiter that gives up (an event loop cancelling asyncio.wrap_future's future)
        # cannot cancel the refresh the others wait for.
        flight.set_running_or_notify_cancel()
        try:
            fresh = self._refresh(connection_id, integration, provider, values, force=force, stale=stale)
        except BaseException as exc:
            flight.set_exception(exc)
            raise
        else:
            flight.set_result(fresh)
            return fresh
        finally:
            with self._guard:
                del self._flights[connection_id]

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
                store.mark_needs_reauth(conn, connection_id, exc.code, at)
                audit.record(conn, "vault.connection.needs_reauth", "failure", reason=exc.code, **detail)
                dead = record_of(store.connection(conn, connection_id))
                failure = exc
            except oauth.ProviderError as exc:  # Transient or ProviderRefused: keep the connection, back off
                failures = row.failures + 1
                store.note_refresh_failure(
                    conn, connection_id, failures=failures, retry_at=at + backoff(failures), error=exc.code, at=at
                )
                audit.record(conn, "vault.connection.refresh", "failure", reason=exc.code, **detail)
                if isinstance(exc, oauth.ProviderRefused):
                    log.error("provider refused a refresh", extra={"error": exc.code, **detail})
                failure = exc
            else:
                store.save_refreshed(
                    conn,
                    self.keys,
                    connection_id,
                    tokens.credentials,
                    expires_at=at + tokens.expires_in if tokens.expires_in is not None else None,
                    meta={**json.loads(row.meta), **tokens.kept},
                    scopes=tokens.scopes,
                    at=at,
                )
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
