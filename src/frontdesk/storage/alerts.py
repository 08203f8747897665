"""Alerts raised from the audit trail (admin/alerts.py): stored, grouped by rule and key while not resolved, and the
state of their signed webhook. The evaluator's reading position and tallies are in ``alert_cursor``.

Nothing here decides what is an alert; the rules (admin/alert_rules.py) do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update

from ..wire import dumps
from .schema import Alert

__all__ = [
    "STATUSES",
    "AlertRecord",
    "NewAlert",
    "acknowledge",
    "alert",
    "alerts",
    "claim_delivery",
    "delivered",
    "due_for_delivery",
    "group",
    "insert_alert",
    "open_alert",
    "resolve",
]

STATUSES = ("open", "acknowledged", "resolved")


@dataclass(frozen=True, slots=True)
class AlertRecord:
    id: str
    rule: str
    key: str
    severity: str
    status: str
    summary: str
    detail: dict[str, Any]
    first_at: int
    last_at: int
    count: int
    notified_at: int | None
    notify_attempts: int
    notify_after: int | None
    acknowledged_at: int | None
    acknowledged_by: str | None
    resolved_at: int | None
    resolved_by: str | None

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class NewAlert:
    id: str
    rule: str
    key: str
    severity: str
    summary: str
    detail: dict[str, Any]
    first_at: int
    last_at: int
    count: int  # matches already counted into it (several in one batch of the trail)
    notify: bool  # whether a webhook is to be sent


def _record(row: Any) -> AlertRecord:
    return AlertRecord(
        row.id,
        row.rule,
        row.key,
        row.severity,
        row.status,
        row.summary,
        json.loads(row.detail),
        row.first_at,
        row.last_at,
        row.count,
        row.notified_at,
        row.notify_attempts,
        row.notify_after,
        row.acknowledged_at,
        row.acknowledged_by,
        row.resolved_at,
        row.resolved_by,
    )


def open_alert(conn: Connection, rule: str, key: str) -> str | None:
    """The id of the alert of ``rule`` and ``key`` that is not resolved (open or acknowledged), if any."""
    # Through ix_alerts_rule_key_status: one seek per match.
    return conn.execute(
        select(Alert.id).where(Alert.rule == rule, Alert.key == key, Alert.status != "resolved").limit(1)
    ).scalar()


def insert_alert(conn: Connection, new: NewAlert) -> None:
    conn.execute(
        insert(Alert).values(
            id=new.id,
            rule=new.rule,
            key=new.key,
            severity=new.severity,
            status="open",
            summary=new.summary,
            detail=dumps(new.detail, sort_keys=True).decode(),
            first_at=new.first_at,
            last_at=new.last_at,
            count=new.count,
            notify_attempts=0,
            notify_after=new.last_at if new.notify else None,
        )
    )


def group(conn: Connection, alert_id: str, at: int, detail: dict[str, Any], repeats: int = 1) -> None:
    """Repeats of an alert that is not resolved: counted, the latest detail kept; no new alert, no new webhook."""
    conn.execute(
        update(Alert)
        .where(Alert.id == alert_id)
        .values(count=Alert.count + repeats, last_at=at, detail=dumps(detail, sort_keys=True).decode())
    )


def alert(conn: Connection, alert_id: str) -> AlertRecord | None:
    row = conn.execute(select(Alert).where(Alert.id == alert_id)).one_or_none()
    return _record(row) if row is not None else None


def alerts(
    conn: Connection,
    *,
    status: str | None = None,
    rule: str | None = None,
    before: tuple[int, str] | None = None,
    limit: int = 50,
) -> list[AlertRecord]:
    """Alerts newest first (by when they were first raised, then id: a stable order for ``before``, the position
    after which a page continues)."""
    query = select(Alert)
    if status is not None:
        query = query.where(Alert.status == status)
    if rule is not None:
        query = query.where(Alert.rule == rule)
    if before is not None:
        first_at, alert_id = before
        query = query.where(or_(Alert.first_at < first_at, (Alert.first_at == first_at) & (Alert.id < alert_id)))
    rows = conn.execute(query.order_by(Alert.first_at.desc(), Alert.id.desc()).limit(limit))
    return [_record(r) for r in rows]


def acknowledge(conn: Connection, alert_id: str, by: str, at: int) -> bool:
    """Open → acknowledged; False when the alert is not open."""
    changed = conn.execute(
        update(Alert)
        .where(Alert.id == alert_id, Alert.status == "open")
        .values(status="acknowledged", acknowledged_by=by, acknowledged_at=at)
    )
    return changed.rowcount == 1


def resolve(conn: Connection, alert_id: str, by: str, at: int) -> bool:
    """Open or acknowledged → resolved; False when it was resolved already. A resolved alert sends nothing more."""
    changed = conn.execute(
        update(Alert)
        .where(Alert.id == alert_id, Alert.status != "resolved")
        .values(status="resolved", resolved_by=by, resolved_at=at, notify_after=None)
    )
    return changed.rowcount == 1


def due_for_delivery(conn: Connection, at: int, limit: int) -> list[AlertRecord]:
    """Alerts whose webhook is due, oldest due first (through ix_alerts_notify_after)."""
    rows = conn.execute(
        select(Alert).where(Alert.notify_after <= at).order_by(Alert.notify_after, Alert.id).limit(limit)
    )
    return [_record(r) for r in rows]


def claim_delivery(conn: Connection, alert_id: str, attempts: int, next_after: int | None) -> bool:
    """Take the next delivery attempt of an alert, compare-and-set on the attempts made so far, so that among
    several processes exactly one makes it; ``next_after`` is when the attempt after it is due if this one fails
    (None: this is the last)."""
    changed = conn.execute(
        update(Alert)
        .where(Alert.id == alert_id, Alert.notify_attempts == attempts, Alert.notified_at.is_(None))
        .values(notify_attempts=attempts + 1, notify_after=next_after)
    )
    return changed.rowcount == 1


def delivered(conn: Connection, alert_id: str, at: int) -> None:
    conn.execute(update(Alert).where(Alert.id == alert_id).values(notified_at=at, notify_after=None))
