"""The alert rules, declared once as data: which audit events each one reads, what groups its alerts (the key),
how it decides to fire (the measure, with its thresholds in ``[alerts]``), and what the alert says.

The evaluator (alert_evaluator.py) reads once each audit event a rule names (``READ``) and applies this table; the
console lists it. A rule whose measure is ``Overdue`` reads no event: it is checked periodically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..config import Alerts
from ..storage.alert_cursor import Match
from ..storage.audit import AuditRecord

__all__ = [
    "BY_NAME",
    "READ",
    "RULES",
    "Always",
    "Burst",
    "Key",
    "Measure",
    "Overdue",
    "Rule",
    "Severity",
    "Streak",
    "Surge",
    "key_of",
    "matches",
]

Severity = Literal["critical", "warning"]
# What an alert is about, read from the event: one of its columns, or the vault connection its detail names.
Key = Literal["client_id", "user_id", "ip", "connection", "signing_keys"]


@dataclass(frozen=True, slots=True)
class Always:
    """Every matching event raises the alert (or repeats the open one)."""


@dataclass(frozen=True, slots=True)
class Burst:
    """At least ``count`` matching events of the same key within ``window`` seconds, both from the (count, window)
    pair ``[alerts]`` holds under ``setting``; counted in the audit trail through its (key, at) index."""

    setting: str

    def limits(self, settings: Alerts) -> tuple[int, int]:
        count, window = getattr(settings, self.setting)
        return int(count), int(window)


@dataclass(frozen=True, slots=True)
class Surge:
    """Calls in the last hour at least ``proxy_rate_factor`` times the key's own hourly average over the week before,
    and at least ``proxy_min_calls``; counted in ten-minute tallies the evaluator keeps."""


@dataclass(frozen=True, slots=True)
class Streak:
    """``refresh_failures`` matching events of the same key in a row; an event matching ``reset`` ends the run."""

    reset: Match


@dataclass(frozen=True, slots=True)
class Overdue:
    """Checked periodically, not per event: the newest signing key is older than ``key_rotation_days``."""


Measure = Always | Burst | Surge | Streak | Overdue


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    severity: Severity
    matches: tuple[Match, ...]
    key: Key
    measure: Measure
    # Plain words for the console and the webhook; {key} is what the alert is about, {count} and {window} a
    # burst's threshold, {calls} and {usual} a surge's numbers, {days} the rotation period.
    summary: str


# A wrong password, a try the throttle refused without checking it, a wrong second-factor code (the password was
# right: the stronger signal), an unknown passkey.
_SIGNIN_FAILED: tuple[Match, ...] = (("signin", ("failure", "throttled")), ("second_factor", ("failure",)))

RULES: tuple[Rule, ...] = (
    # RFC 9700 §4.14.2, OAuth 2.1 §4.1.3: reuse of a rotated refresh token or a redeemed code means one of the two
    # users is not the client; grants.py revoked the grant and audited the theft. Always worth waking someone.
    Rule(
        "token.replayed",
        "critical",
        (("code.replayed", ("revoked",)), ("refresh.reused", ("revoked",))),
        "client_id",
        Always(),
        "A refresh token or authorization code of client {key} was used a second time: it may have been stolen. "
        "Everything issued from that grant has been revoked.",
    ),
    Rule(
        "signin.failures.person",
        "warning",
        _SIGNIN_FAILED,
        "user_id",
        Burst("failed_signins_per_person"),
        "Someone failed to sign in as person {key} {count} times within {window} seconds: a password may be under "
        "attack.",
    ),
    Rule(
        "signin.failures.address",
        "warning",
        _SIGNIN_FAILED,
        "ip",
        Burst("failed_signins_per_ip"),
        "The address {key} failed to sign in {count} times within {window} seconds: it may be guessing passwords.",
    ),
    Rule(
        "client_auth.failures",
        "warning",
        (("client.authentication", ("failure",)),),
        "client_id",
        Burst("failed_client_auth"),
        "Client {key} failed to authenticate {count} times within {window} seconds: its secret may be being "
        "guessed, or it was changed without the client knowing.",
    ),
    Rule(
        "vault.proxy.surge",
        "warning",
        (("vault.proxy", ("success", "failure")),),
        "connection",
        Surge(),
        "Vault connection {key} was used {calls} times in the last hour, far above its usual {usual} an hour: a "
        "caller may be misbehaving, or its access misused.",
    ),
    Rule(
        "vault.refresh.failing",
        "warning",
        (("vault.connection.refresh", ("failure",)), ("vault.connection.needs_reauth", ("failure",))),
        "connection",
        Streak(reset=("vault.connection.refreshed", ("success",))),
        "Vault connection {key} failed to refresh {count} times in a row: calls through it will fail until the "
        "provider answers again or the person reconnects.",
    ),
    Rule(
        "signing_keys.rotation_overdue",
        "warning",
        (),
        "signing_keys",
        Overdue(),
        "The signing keys were last rotated more than {days} days ago: rotate them on the console's Signing keys"
        " page or with `frontdesk keys rotate`.",
    ),
)

BY_NAME = {rule.name: rule for rule in RULES}
# Every event name a rule reads, to match or to reset: the evaluator decodes these and passes over the rest.
READ = frozenset(
    name
    for rule in RULES
    for name, _ in (*rule.matches, *((rule.measure.reset,) if isinstance(rule.measure, Streak) else ()))
)


def matches(pairs: tuple[Match, ...], event: AuditRecord) -> bool:
    """Whether the event is one of ``pairs`` (event name, outcomes)."""
    return any(event.event == name and event.outcome in outcomes for name, outcomes in pairs)


def key_of(rule: Rule, event: AuditRecord) -> str | None:
    """What an alert of ``rule`` about ``event`` is about; None when the event does not say (a failed sign-in for
    an account that does not exist names no person)."""
    value: Any
    if rule.key == "connection":
        value = event.detail.get("connection")
    elif rule.key == "signing_keys":
        return "signing keys"
    else:
        value = getattr(event, rule.key)
    return value[:255] if isinstance(value, str) and value else None
