"""``frontdesk alerts list|ack|resolve``: the alerts raised from the audit trail (admin/alerts.py), for an operator
at the server's own terminal (the ``cli`` principal)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..admin import alerts
from ..admin.alert_rules import BY_NAME
from ..admin.principals import CLI
from .context import command, open_for, output

__all__ = ["add_commands"]


def _when(at: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def _line(a: alerts.AlertRecord) -> str:
    seen = f"{a.count} times, last {_when(a.last_at)}" if a.count > 1 else "once"
    return f"{a.id}\t{a.severity}\t{a.status}\t{a.rule}\t{_when(a.first_at)} ({seen})\n\t{a.summary}"


def cmd_alerts_list(args: argparse.Namespace) -> None:
    fd = open_for(args)
    # An AdminError (a bad cursor, an alert already resolved) is printed by cli.main with its description.
    page = alerts.list_alerts(fd, CLI, status=args.status, rule=args.rule, cursor=args.cursor, limit=args.n)
    text = "\n".join(_line(a) for a in page.items) or "no alerts"
    if page.next_cursor:
        text += f"\nmore: frontdesk alerts list --cursor {page.next_cursor}"
    output(args, {"alerts": [a.as_dict() for a in page.items], "next_cursor": page.next_cursor}, text)


def cmd_alerts_ack(args: argparse.Namespace) -> None:
    fd = open_for(args)
    changed = alerts.acknowledge(fd, CLI, args.alert_id)
    output(args, changed.as_dict(), f"acknowledged: {_line(changed)}")


def cmd_alerts_resolve(args: argparse.Namespace) -> None:
    fd = open_for(args)
    changed = alerts.resolve(fd, CLI, args.alert_id)
    output(args, changed.as_dict(), f"resolved: {_line(changed)}")


def add_commands(sub: Any) -> None:
    group = sub.add_parser("alerts", help="alerts raised from the audit trail").add_subparsers(
        dest="action", required=True
    )
    listing = command(group, "list", cmd_alerts_list, "show alerts, newest first")
    listing.add_argument("--status", choices=alerts.STATUSES, help="only alerts in this state")
    listing.add_argument("--rule", choices=sorted(BY_NAME), help="only alerts of this rule")
    listing.add_argument("--cursor", help="continue a listing where the last one said")
    listing.add_argument("-n", type=int, default=50, help="at most this many (1 to 200)")
    ack = command(group, "ack", cmd_alerts_ack, "mark an open alert as being looked at")
    ack.add_argument("alert_id")
    resolve = command(group, "resolve", cmd_alerts_resolve, "close an alert: the next match raises a new one")
    resolve.add_argument("alert_id")
