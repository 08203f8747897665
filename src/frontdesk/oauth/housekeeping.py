"""Housekeeping the server does on its own and ``frontdesk purge`` does at once: purging expired artefacts in bounded
passes (storage/purge.py), so that tables stay the size of what is live (DESIGN §3), and the clients that
registered themselves, or were named by a metadata document, and then went unused.

Open registration (RFC 7591) lets anyone add a client row; one nobody uses for ``registration.unused_client_days``
goes, with its grants, so that abandoned and abusive registrations do not pile up (RFC 7591 §5; issue 13). The
operator's own clients are never purged. Each batch is one transaction with a ``client.purged`` audit event per
client.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core import Frontdesk
from ..storage import audit
from ..storage.db import now, transaction
from ..storage.purge import delete_unused_clients, purge_expired, saturated

__all__ = ["CLIENT_BATCH", "CLIENT_BATCHES", "UNVETTED", "Purged", "purge", "purge_unused_clients"]

# Who registered the clients that are purged once unused: never "operator".
UNVETTED = ("self", "document")
# A pass deletes at most CLIENT_BATCH × CLIENT_BATCHES clients; each batch also deletes what they were issued.
CLIENT_BATCH = 100
CLIENT_BATCHES = 10
DAY = 86400


@dataclass(frozen=True, slots=True)
class Purged:
    deleted: dict[str, int]  # rows deleted per table ("clients": the unused clients removed)
    # The pass stopped at its bound with rows left: the caller runs the next pass soon, not at its usual interval.
    behind: bool


def purge_unused_clients(fd: Frontdesk, at: int, batch: int = CLIENT_BATCH, max_batches: int = CLIENT_BATCHES) -> int:
    """Delete the clients nobody vetted that were last used (or, never used, registered) more than
    ``registration.unused_client_days`` days before ``at``, at most ``batch × max_batches``; returns how many.
    ``unused_client_days = 0`` keeps them all."""
    days = fd.settings.registration.unused_client_days
    if days <= 0:
        return 0
    total = 0
    for _ in range(max_batches):
        with transaction(fd.engine) as conn:
            gone = delete_unused_clients(conn, registered_by=UNVETTED, unused_before=at - days * DAY, limit=batch)
            for client_id in gone:
                audit.record(conn, "client.purged", "success", client_id=client_id, unused_days=days)
        for client_id in gone:
            fd.clients.forget(client_id)
        total += len(gone)
        if len(gone) < batch:
            break
    return total


def purge(fd: Frontdesk) -> Purged:
    """One bounded pass over every table with expired rows, then over unused clients; audit events are never
    purged."""
    at = now()
    counts = purge_expired(fd.engine, at)
    clients = purge_unused_clients(fd, at, CLIENT_BATCH, CLIENT_BATCHES)
    behind = saturated(counts) or clients >= CLIENT_BATCH * CLIENT_BATCHES
    return Purged({**counts, "clients": clients}, behind)
