"""A connection's life after it is made: exported, kept alive, re-sealed under a new key, told dead, let go.

Every step that changes or reveals a connection is audited, and the platform hears of deaths and deletions by
webhook (vault/webhooks.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Engine

from ..storage import audit
from ..storage.db import now, transaction
from . import integration_store, oauth, store
from .catalog import CatalogError
from .integrations import Integrations
from .keys import VaultKeys
from .proxy import Proxy
from .refresh import BackingOff
from .store import ConnectionRecord, VaultError
from .webhooks import Webhooks

__all__ = ["Lifecycle", "dead"]

log = logging.getLogger("frontdesk.vault")


def dead(webhooks: Webhooks, record: ConnectionRecord, reason: str) -> None:
    """The refresher found the connection's grant gone (``needs_reauth``): the platform is told."""
    webhooks.send("connection.needs_reauth", {**record.public(), "reason": reason})


@dataclass(slots=True)
class Lifecycle:
    engine: Engine
    keys: VaultKeys
    integrations: Integrations
    calls: Proxy
    webhooks: Webhooks
    http: httpx.Client

    def delete(
        self, record: ConnectionRecord, *, person: str | None = None, ip: str | None = None, shown_as: str | None = None
    ) -> bool:
        """Revoke at the provider where it can, then delete here. Returns whether the provider confirmed.

        ``person`` is the frontdesk person disconnecting their own connection from their account page (with their
        ``ip``, and the provider's name it was ``shown_as``): the event is theirs, so their activity shows it."""
        with transaction(self.engine, readonly=True) as conn:
            row = store.connection(conn, record.id)
        if row is None:
            return False
        revoked = False
        try:
            integration, provider, values = self.integrations.resolve(record.integration, record.meta)
            revoked = oauth.revoke(self.http, provider, integration, values, store.credentials_of(self.keys, row))
        except (VaultError, CatalogError, oauth.ProviderError) as exc:
            log.warning("could not revoke at the provider", extra={"connection": record.id, "error": str(exc)})
        with transaction(self.engine) as conn:
            store.delete_connection(conn, record.id)
            by_person = {"user_id": person, "ip": ip, "by": "person", "provider": shown_as} if person else {}
            audit.record(
                conn, "vault.connection.deleted", "success", connection=record.id, integration=record.integration,
                user=record.user, revoked_at_provider=revoked, **by_person,
            )  # fmt: skip
        self.webhooks.send("connection.deleted", {**record.public(), "revoked_at_provider": revoked})
        return revoked

    def export(self, record: ConnectionRecord, api_key_id: str) -> dict[str, Any]:
        """Raw tokens for an admin key, refreshed first when due; every export is audited."""
        fresh = self.calls.fresh(record)
        with transaction(self.engine) as conn:
            audit.record(
                conn, "vault.connection.exported", "success" if fresh.credentials else "failure",
                connection=record.id, integration=record.integration, user=record.user, api_key=api_key_id,
            )  # fmt: skip
        if fresh.credentials is None:
            raise VaultError("the connection is not active")
        return {
            "access_token": fresh.credentials.access_token,
            "token_type": fresh.credentials.token_type,
            "expires_at": fresh.record.expires_at,
            "refresh_token": fresh.credentials.refresh_token,
        }

    def keepalive(self, limit: int = 100) -> int:
        """Refresh idle connections of providers that revoke unused refresh tokens, before they do."""
        at = now()
        due: list[ConnectionRecord] = []
        with transaction(self.engine, readonly=True) as conn:
            for name, provider_name in integration_store.integration_providers(conn):
                entry = self.integrations.catalog.providers.get(provider_name)
                if entry is None or entry.keepalive is None:
                    continue
                due += store.idle_connections(conn, name, entry.keepalive, at, limit - len(due))
                if len(due) >= limit:
                    break
        count = 0
        for record in due[:limit]:
            try:
                self.calls.fresh(record, force=True)
                count += 1
            except (BackingOff, oauth.ProviderError, VaultError, CatalogError) as exc:
                log.info("keep-alive refresh failed", extra={"connection": record.id, "error": str(exc)})
        return count

    def rotate_keys(self, batch: int = 100) -> int:
        """Re-seal every record not sealed under the active key, a batch per transaction, while serving."""
        done = 0
        while True:
            with transaction(self.engine) as conn:
                connections = store.reseal_connections(conn, self.keys, batch)
                secrets = integration_store.reseal_secrets(conn, self.keys, batch)
                if connections or secrets:
                    count = connections + secrets
                    audit.record(conn, "vault.keys.rotated", "success", resealed=count, key=self.keys.active_id)
            done += connections + secrets
            if not connections and not secrets:
                return done
