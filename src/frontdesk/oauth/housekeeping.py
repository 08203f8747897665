"""Housekeeping the server does on its own: purging expired artefacts in bounded passes (storage/purge.py), so that
tables stay the size of what is live (DESIGN §3)."""

from __future__ import annotations

from dataclasses import dataclass

from ..core import Frontdesk
from ..storage.db import now
from ..storage.purge import purge_expired, saturated

__all__ = ["Purged", "purge"]


@dataclass(frozen=True, slots=True)
class Purged:
    deleted: dict[str, int]  # rows deleted per table
    # The pass stopped at its bound with rows left: the caller runs the next pass soon, not at its usual interval.
    behind: bool


def purge(fd: Frontdesk) -> Purged:
    """One bounded pass over every table with expired rows; audit events are never purged."""
    counts = purge_expired(fd.engine, now())
    return Purged(counts, saturated(counts))
