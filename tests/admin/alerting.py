"""Helpers for the alert tests: thresholds set on a running frontdesk, audit events written as their producers
write them, the evaluator run until the trail is read, and the alerts it stored."""

from __future__ import annotations

import dataclasses
from typing import Any

from frontdesk.admin import alerts
from frontdesk.admin.alert_evaluator import evaluate
from frontdesk.admin.principals import CLI
from frontdesk.config import Alerts
from frontdesk.core import Frontdesk
from frontdesk.storage import audit
from frontdesk.storage.alerts import AlertRecord
from frontdesk.storage.db import transaction


def configure(fd: Frontdesk, **fields: Any) -> Alerts:
    """``[alerts]`` with these settings, as if the file said so (checked as at start-up)."""
    settings = Alerts(**fields)
    settings.check()
    fd.settings = dataclasses.replace(fd.settings, alerts=settings)
    return settings


def write(fd: Frontdesk, event: str, outcome: str, **fields: Any) -> None:
    """One audit event at the clock's present, in a transaction of its own."""
    with transaction(fd.engine) as conn:
        audit.record(conn, event, outcome, **fields)


def evaluate_all(fd: Frontdesk) -> int:
    """Run the evaluator until it has read the whole trail; how many events it evaluated."""
    total = 0
    while (n := evaluate(fd)) > 0:
        total += n
    return total


def raised(fd: Frontdesk, rule: str | None = None, status: str | None = None) -> list[AlertRecord]:
    return list(alerts.list_alerts(fd, CLI, rule=rule, status=status, limit=200).items)


def events(fd: Frontdesk, name: str) -> list[audit.AuditRecord]:
    return [e for e in audit.tail(fd.engine, 1000) if e.event == name]
