"""The alert evaluator: reads the audit trail after ``alert_cursor``, a batch at a time, applies the rules
(alert_rules.py) and stores what they find, grouped (alerts.py); and, once an hour, the checks no event triggers.

Every server process runs one (``evaluate_forever``, started with the app's lifespan); the cursor moves by
compare-and-set in the transaction that stores the batch's alerts, so each event is evaluated by exactly one of them.
Nothing here runs on a request: the trail is read after the fact, from a worker thread. Of a batch, only the events
some rule names (``alert_rules.READ``) are read in full; the rest, most of the trail, are counted, to tell that no id
is missing (BENCHMARKS.md row 56).

Audit ids are handed out when an event is inserted and become visible when its transaction commits, which on
PostgreSQL need not be in id order: an event may appear after a later one has been read. So a batch stops before a
gap in the ids until the event after the gap is ``GAP_WAIT`` seconds old; a gap still there by then is a rolled-back
transaction's (a sequence never reuses an id), not one in flight.
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
from sqlalchemy import Connection

from ..config import Alerts
from ..core import Frontdesk
from ..storage import alert_cursor, audit
from ..storage import alerts as store
from ..storage.alert_cursor import AUDIT, PERIODIC, Passed
from ..storage.audit import AuditRecord
from ..storage.db import now, transaction
from .alert_rules import BY_NAME, READ, RULES, Always, Burst, Overdue, Rule, Streak, Surge, key_of, matches

__all__ = ["BATCH", "EVERY", "Finding", "evaluate", "evaluate_forever", "periodic", "raise_or_group", "ready"]

log = logging.getLogger("frontdesk.alerts")

BATCH = 2000  # events per transaction (those no rule reads are only counted: span_after)
EVERY = 1.0  # seconds between reads of the trail when it is quiet
GAP_WAIT = 10  # seconds an id gap may stay open before it is taken for a rolled-back transaction
PERIODIC_EVERY = 3600  # seconds between the periodic checks, across all processes
BUCKET = 600  # a surge tally's bucket: ten minutes
WEEK = 7 * 24 * 3600
HOUR = 3600
# The details of an event an alert keeps: who, what, where; never a secret (the trail holds none either).
_KEPT = ("grant_id", "connection", "integration", "reason", "method", "status")


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule that fired: the alert to raise, or to group into the open one of its rule and key."""

    rule: Rule
    key: str
    at: int
    numbers: dict[str, int] = field(default_factory=dict)  # what the summary quotes (count, window, calls, …)
    event: AuditRecord | None = None

    def detail(self) -> dict[str, Any]:
        detail: dict[str, Any] = dict(self.numbers)
        if self.event is not None:
            e = self.event
            detail.update(event=e.event, event_id=e.id, client_id=e.client_id, user_id=e.user_id, ip=e.ip)
            detail.update({k: e.detail[k] for k in _KEPT if k in e.detail})
        return detail

    def summary(self) -> str:
        values = {"key": self.key, "count": 0, "window": 0, "calls": 0, "usual": 0, "days": 0, **self.numbers}
        return self.rule.summary.format_map(values)


def ready(events: Sequence[Passed], after: int, at: int) -> list[Passed]:
    """The events to evaluate now: in id order, up to the first gap whose next event is younger than GAP_WAIT."""
    taken: list[Passed] = []
    last = after
    for event in events:
        if event.id != last + 1 and event.at > at - GAP_WAIT:
            break
        taken.append(event)
        last = event.id
    return taken


def evaluate(fd: Frontdesk) -> int:
    """Evaluate the next batch of the trail; returns how many events this process evaluated (0: none were ready,
    or another process took them)."""
    settings = fd.settings.alerts
    at = now()
    # What the trail alone answers is counted in a read: the write transaction below stays short.
    with transaction(fd.engine, readonly=True) as conn:
        seen, _ = alert_cursor.position(conn, AUDIT)
        count, last = alert_cursor.span_after(conn, seen, BATCH)
        if count < last - seen:  # an id is missing: perhaps an event still to commit (see the module's docstring)
            taken = ready(alert_cursor.marks_after(conn, seen, BATCH), seen, at)
            count, last = len(taken), taken[-1].id if taken else seen
        if count == 0:
            return 0
        events = alert_cursor.events_between(conn, seen, last, READ)
        findings = [found for event in events for found in _from_trail(conn, settings, event)]
    with transaction(fd.engine) as conn:
        if not alert_cursor.advance(conn, AUDIT, seen=seen, to=last, at=at):
            return 0  # another process has this batch: nothing was written
        findings += _from_tallies(conn, settings, events)
        for first, last_found, repeats in _coalesced(findings):
            raise_or_group(conn, settings, last_found, first_at=first.at, repeats=repeats)
    return count


def _coalesced(findings: Sequence[Finding]) -> list[tuple[Finding, Finding, int]]:
    """(first, last, how many) of each rule and key among a batch's findings: one alert written for each, not one
    write per matching event (a burst of failures is hundreds of findings of one key)."""
    seen: dict[tuple[str, str], tuple[Finding, Finding, int]] = {}
    for found in findings:
        key = (found.rule.name, found.key)
        first, _, n = seen.get(key, (found, found, 0))
        seen[key] = (first, found, n + 1)
    return list(seen.values())


def _from_trail(conn: Connection, settings: Alerts, event: AuditRecord) -> Iterator[Finding]:
    for rule in RULES:
        if not isinstance(rule.measure, Always | Burst) or not matches(rule.matches, event):
            continue
        key = key_of(rule, event)
        if key is None:
            continue
        if isinstance(rule.measure, Always):
            yield Finding(rule, key, event.at, event=event)
            continue
        count, window = rule.measure.limits(settings)
        assert rule.key in ("client_id", "user_id", "ip")
        counted = alert_cursor.count_matching(conn, rule.key, key, rule.matches, since=event.at - window, upto=event.id)
        if counted >= count:
            yield Finding(rule, key, event.at, {"count": counted, "window": window}, event)


def _from_tallies(conn: Connection, settings: Alerts, events: Sequence[AuditRecord]) -> list[Finding]:
    """The rules that count in tallies: each event of the batch is added in order; a surge is judged once per key
    and batch, at its latest event."""
    findings: list[Finding] = []
    surging: dict[tuple[str, str], AuditRecord] = {}
    calls: Counter[tuple[str, str, int]] = Counter()  # one write per key and bucket, not one per call
    for event in events:
        for rule in RULES:
            measure = rule.measure
            if isinstance(measure, Streak) and matches((measure.reset,), event):
                key = key_of(rule, event)
                if key is not None:
                    alert_cursor.drop_tally(conn, rule.name, key)
                continue
            if not isinstance(measure, Surge | Streak) or not matches(rule.matches, event):
                continue
            key = key_of(rule, event)
            if key is None:
                continue
            if isinstance(measure, Surge):
                calls[(rule.name, key, event.at - event.at % BUCKET)] += 1
                surging[(rule.name, key)] = event
                continue
            run = alert_cursor.add_tally(conn, rule.name, key, 0)
            if run >= settings.refresh_failures:
                findings.append(Finding(rule, key, event.at, {"count": run}, event))
    for (name, key, bucket), n in calls.items():
        alert_cursor.add_tally(conn, name, key, bucket, n)
    for (name, key), event in surging.items():
        found = _surge(conn, settings, BY_NAME[name], key, event)
        if found is not None:
            findings.append(found)
    return findings


def _surge(conn: Connection, settings: Alerts, rule: Rule, key: str, event: AuditRecord) -> Finding | None:
    """The last hour (the six buckets up to the event's) against the key's hourly average over the week before
    it, measured from its first bucket in that week; a key with no history before the hour has an average of 0."""
    current = event.at - event.at % BUCKET
    hour_from = current - (HOUR // BUCKET - 1) * BUCKET
    counts = alert_cursor.tallies(conn, rule.name, key, since=hour_from - WEEK)
    calls = sum(n for bucket, n in counts if bucket >= hour_from)
    before = [(bucket, n) for bucket, n in counts if bucket < hour_from]
    usual = sum(n for _, n in before) / max(1.0, (hour_from - before[0][0]) / HOUR) if before else 0.0
    if calls < settings.proxy_min_calls or calls < settings.proxy_rate_factor * usual:
        return None
    return Finding(rule, key, event.at, {"calls": calls, "usual": round(usual)}, event)


def raise_or_group(
    conn: Connection, settings: Alerts, found: Finding, *, first_at: int | None = None, repeats: int = 1
) -> str:
    """Store a finding (``repeats`` of its rule and key, the first at ``first_at``, ``found`` the latest): a new
    alert (audited as ``alert.raised``, its webhook due at once when one is configured) or, while one of its rule
    and key is not resolved, repeats counted into that one. Returns the alert's id."""
    rule = found.rule
    existing = store.open_alert(conn, rule.name, found.key)
    if existing is not None:
        store.group(conn, existing, found.at, found.detail(), repeats)
        return existing
    alert_id = secrets.token_hex(16)
    store.insert_alert(
        conn,
        store.NewAlert(
            id=alert_id,
            rule=rule.name,
            key=found.key,
            severity=rule.severity,
            summary=found.summary(),
            detail=found.detail(),
            first_at=found.at if first_at is None else first_at,
            last_at=found.at,
            count=repeats,
            notify=bool(settings.webhook_url),
        ),
    )
    subject = found.event
    audit.record(
        conn,
        "alert.raised",
        rule.severity,
        client_id=subject.client_id if subject else None,
        user_id=subject.user_id if subject else None,
        ip=subject.ip if subject else None,
        alert=alert_id,
        rule=rule.name,
        key=found.key,
    )
    return alert_id


def periodic(fd: Frontdesk) -> bool:
    """The checks no event triggers, at most once per PERIODIC_EVERY across all processes (compare-and-set on when
    they last ran): key rotation overdue, and dropping surge tallies older than the week they are compared over.
    Returns whether this process ran them."""
    settings = fd.settings.alerts
    at = now()
    with transaction(fd.engine, readonly=True) as conn:
        _, last = alert_cursor.position(conn, PERIODIC)
    if at - last < PERIODIC_EVERY:
        return False
    newest = max((key.created_at for key in fd.keys.list()), default=None)
    rotation = settings.key_rotation_days * 24 * 3600
    with transaction(fd.engine) as conn:
        if not alert_cursor.claim_periodic(conn, seen_at=last, at=at):
            return False
        for rule in RULES:
            if isinstance(rule.measure, Surge):
                alert_cursor.purge_tallies(conn, rule.name, at - WEEK - 2 * HOUR)
            elif isinstance(rule.measure, Overdue) and newest is not None and at - newest > rotation:
                numbers = {"days": settings.key_rotation_days, "newest_key_created_at": newest}
                raise_or_group(conn, settings, Finding(rule, "signing keys", at, numbers))
    return True


async def evaluate_forever(fd: Frontdesk) -> None:
    """Evaluate the trail for as long as the server runs: batches back to back while the trail is behind, then
    every EVERY seconds; the periodic checks among them. A failure is logged and the next round retries."""
    if not fd.settings.alerts.enabled:
        return
    while True:
        evaluated = 0
        try:
            evaluated = await anyio.to_thread.run_sync(evaluate, fd)
            await anyio.to_thread.run_sync(periodic, fd)
        except Exception:
            log.exception("alert evaluation failed; will retry")
        if evaluated < BATCH:
            await anyio.sleep(EVERY)
