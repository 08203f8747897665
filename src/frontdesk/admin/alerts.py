"""Alerts from the audit trail, as the operator sees them (the admin API, the console and ``frontdesk alerts``):
list, read, acknowledge ("someone is looking at it"), resolve ("dealt with"). Each change is audited and names who
made it (``admin.alert.acknowledged``, ``admin.alert.resolved``; principals.py).

An alert is raised by the evaluator (alert_evaluator.py) from the rules (alert_rules.py), and while it is not
resolved every repeat of its rule and key is counted into it rather than raised again. ``watch`` runs the evaluator
and the webhook deliveries (alert_webhook.py) for as long as a server process runs.
"""

from __future__ import annotations

import anyio
from sqlalchemy import Connection

from ..core import Frontdesk
from ..storage import alerts as store
from ..storage.alerts import STATUSES, AlertRecord
from ..storage.db import now, transaction
from .alert_evaluator import evaluate_forever
from .alert_rules import BY_NAME
from .alert_webhook import deliver_forever
from .errors import Conflict, Invalid, NotFound
from .paging import Page, check_limit, decode_cursor, page_of
from .principals import Principal, record, require

__all__ = ["STATUSES", "AlertRecord", "acknowledge", "alert", "list_alerts", "resolve", "watch"]


def _position(cursor: str | None) -> tuple[int, str] | None:
    key = decode_cursor(cursor)
    if key is None:
        return None
    first_at, _, alert_id = key.partition(".")
    if not first_at.isdigit() or not alert_id.isalnum() or len(alert_id) > 32:
        raise Invalid("cursor is not one this server handed out")
    return int(first_at), alert_id


def list_alerts(
    fd: Frontdesk,
    by: Principal,
    *,
    status: str | None = None,
    rule: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[AlertRecord]:
    """Alerts, newest first (by when they were raised), optionally only those of one status or rule."""
    require(by, "alerts.read")
    check_limit(limit)
    if status is not None and status not in STATUSES:
        raise Invalid(f"status must be one of {', '.join(STATUSES)}")
    if rule is not None and rule not in BY_NAME:
        raise Invalid(f"there is no alert rule {rule[:64]!r}")
    with transaction(fd.engine, readonly=True) as conn:
        rows = store.alerts(conn, status=status, rule=rule, before=_position(cursor), limit=limit + 1)
    return page_of(rows, limit, lambda a: f"{a.first_at}.{a.id}")


def _found(conn: Connection, alert_id: str) -> AlertRecord:
    found = store.alert(conn, alert_id)
    if found is None:
        raise NotFound("there is no such alert")
    return found


def alert(fd: Frontdesk, by: Principal, alert_id: str) -> AlertRecord:
    require(by, "alerts.read")
    with transaction(fd.engine, readonly=True) as conn:
        return _found(conn, alert_id)


def acknowledge(fd: Frontdesk, by: Principal, alert_id: str) -> AlertRecord:
    """Mark an open alert as being looked at; its repeats are still counted into it, and it stays until resolved."""
    require(by, "alerts.write")
    with transaction(fd.engine) as conn:
        found = _found(conn, alert_id)
        if not store.acknowledge(conn, alert_id, by.actor[:100], now()):
            raise Conflict(f"the alert is {found.status}, not open")
        record(conn, by, "alert.acknowledged", alert=alert_id, rule=found.rule)
        return _found(conn, alert_id)


def resolve(fd: Frontdesk, by: Principal, alert_id: str) -> AlertRecord:
    """Close an alert; its webhook, if not delivered yet, is no longer sent. The next match of its rule and key
    raises a new alert."""
    require(by, "alerts.write")
    with transaction(fd.engine) as conn:
        found = _found(conn, alert_id)
        if not store.resolve(conn, alert_id, by.actor[:100], now()):
            raise Conflict("the alert is resolved already")
        record(conn, by, "alert.resolved", alert=alert_id, rule=found.rule)
        return _found(conn, alert_id)


async def watch(fd: Frontdesk) -> None:
    """The evaluator and the webhook deliveries, for as long as the server process runs (web/app.py's lifespan)."""
    if not fd.settings.alerts.enabled:
        return
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(evaluate_forever, fd)
        tasks.start_soon(deliver_forever, fd)
