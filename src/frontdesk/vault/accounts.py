"""A frontdesk person's own connections: which vault connections are theirs, and the account page's view of them.

A connection is made for the platform's user id (``vault_connections.user``), which frontdesk does not know as a
person. It is a person's when the connect link that last connected it was bound to them (``subject``: they signed in
here to use it, README "What a forwarded link can do"), or, when that link was bound to nobody, when the platform's
user id *is* their frontdesk id (the rule: ``connect.owner``). A connection a platform made for its own user ids
through unbound links belongs to no person: nothing here can tell whose it is, so no person's token reaches it and
no account page shows it. The callback records the person on the connection itself (``vault_connections.person``):
the connect sessions are purged once expired, and the person's own tokens must not lose the connection with them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from ..storage.db import transaction
from . import store
from .callers import Caller
from .catalog import CatalogError
from .connect import plain_words
from .integrations import Integrations
from .lifecycle import Lifecycle
from .store import ConnectionRecord, Status, VaultError

__all__ = ["ConnectedAccount", "ConnectedAccounts", "owned"]


def owned(engine: Engine, person: str) -> list[ConnectionRecord]:
    """Every connection that is ``person``'s, oldest first: as its ``person`` says (one indexed query), which
    holds after its connect sessions are purged."""
    with transaction(engine, readonly=True) as conn:
        return store.person_candidates(conn, person)


@dataclass(frozen=True, slots=True)
class ConnectedAccount:
    """A connection as its person sees it: the provider, what it reaches in plain words, and its last use."""

    id: str
    integration: str
    provider: str  # "Google Calendar"
    reaches: tuple[str, ...]  # what its scopes reach, in the catalog's plain words: ("your Google Calendar", …)
    status: Status
    created_at: int
    last_used_at: int | None
    last_used_by: Caller | None


@dataclass(slots=True)
class ConnectedAccounts:
    engine: Engine
    integrations: Integrations
    lifecycle: Lifecycle

    def of(self, person: str) -> list[ConnectedAccount]:
        """The person's connections, for their account page."""
        return [self._shown(record) for record in owned(self.engine, person)]

    def disconnect(self, person: str, connection_id: str, ip: str | None) -> tuple[ConnectedAccount, bool] | None:
        """Disconnect one of the person's own connections: revoked at the provider where it can be, deleted here,
        audited with the person (the vault's own delete, ``Lifecycle.delete``). Returns the connection as it was
        and whether the provider confirmed; None when it is not theirs (or no longer exists)."""
        record = next((r for r in owned(self.engine, person) if r.id == connection_id), None)
        if record is None:
            return None
        shown = self._shown(record)
        revoked = self.lifecycle.delete(record, person=person, ip=ip, shown_as=shown.provider)
        return shown, revoked

    def _shown(self, record: ConnectionRecord) -> ConnectedAccount:
        try:
            entry = self.integrations.catalog.get(self.integrations.integration(record.integration).provider)
            words = [entry.scope_words[s] for s in record.scopes if s in entry.scope_words]
            provider, reaches = entry.display_name, tuple(dict.fromkeys(words)) or (plain_words(entry, ()),)
        except (VaultError, CatalogError):  # its integration or provider file is gone: named as the operator did
            provider, reaches = record.integration, (f"your {record.integration} account",)
        return ConnectedAccount(
            record.id, record.integration, provider, reaches, record.status, record.created_at, record.last_used_at,
            Caller.parse(record.last_used_by),
        )  # fmt: skip
