"""The audit log: append-only structured events; never a secret (DESIGN §7)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from .db import now, transaction
from .schema import AuditEvent

__all__ = ["AuditRecord", "record", "tail"]

log = logging.getLogger("frontdesk.audit")


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: int
    event: str
    outcome: str
    client_id: str | None
    user_id: str | None
    ip: str | None
    detail: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "event": self.event,
            "outcome": self.outcome,
            "client_id": self.client_id,
            "user_id": self.user_id,
            "ip": self.ip,
            "detail": self.detail,
        }


def record(
    conn: Connection,
    event: str,
    outcome: str,
    *,
    client_id: str | None = None,
    user_id: str | None = None,
    ip: str | None = None,
    **detail: Any,
) -> None:
    """Write an event in the caller's transaction, so it lands exactly when what it describes does."""
    conn.execute(
        insert(AuditEvent),
        {
            "at": now(),
            "event": event,
            "outcome": outcome,
            "client_id": client_id,
            "user_id": user_id,
            "ip": ip,
            "detail": json.dumps(detail, sort_keys=True),
        },
    )
    log.info(
        "audit",
        extra={
            "event": event,
            "outcome": outcome,
            "client_id": client_id,
            "user_id": user_id,
            "ip": ip,
            **{f"detail_{k}": v for k, v in detail.items()},
        },
    )


def tail(engine: Engine, limit: int = 50) -> list[AuditRecord]:
    with transaction(engine, readonly=True) as conn:
        rows = conn.execute(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)).all()
    return [
        AuditRecord(r.id, r.at, r.event, r.outcome, r.client_id, r.user_id, r.ip, json.loads(r.detail))
        for r in reversed(rows)
    ]
