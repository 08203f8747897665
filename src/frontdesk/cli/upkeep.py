"""``frontdesk purge`` and ``frontdesk audit tail|export``: the stored records, pruned, searched and exported."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ..admin.audit_search import AuditEntry, AuditQuery, export_audit, search_audit
from ..admin.paging import MAX_LIMIT
from ..admin.principals import CLI
from ..oauth.housekeeping import purge
from .context import command, open_for, output

__all__ = ["add_audit_commands", "add_purge_command"]


def cmd_purge(args: argparse.Namespace) -> None:
    """One bounded pass, as the server runs every ten minutes; rows deleted per table, and the unused clients that
    registered themselves (or came from a metadata document) as ``clients``."""
    purged = purge(open_for(args))
    counts = purged.deleted
    text = "\n".join(f"{table}\t{n}" for table, n in counts.items())
    if purged.behind:
        text += "\nmore is left than one pass deletes: run `frontdesk purge` again"
    output(args, counts, text)


def _query(args: argparse.Namespace) -> AuditQuery:
    return AuditQuery(
        event=getattr(args, "event", None),
        user_id=getattr(args, "user", None),
        client_id=getattr(args, "client", None),
        outcome=getattr(args, "outcome", None),
        since=getattr(args, "since", None),
        until=getattr(args, "until", None),
    )


def _line(e: AuditEntry) -> str:
    return (
        f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(e.at))} {e.event} {e.outcome} "
        f"client={e.client_id or '-'} user={e.user_id or '-'} ip={e.ip or '-'} {json.dumps(e.detail)}"
    )


def cmd_audit_tail(args: argparse.Namespace) -> None:
    """The latest ``-n`` events matching the filters, oldest of them first (``admin.audit_search``)."""
    fd = open_for(args)
    events: list[AuditEntry] = []
    cursor = None
    while len(events) < args.n:
        page = search_audit(fd, CLI, _query(args), cursor=cursor, limit=min(MAX_LIMIT, args.n - len(events)))
        events.extend(page.items)
        if (cursor := page.next_cursor) is None:
            break
    events.reverse()
    output(args, [e.as_dict() for e in events], "\n".join(_line(e) for e in events) or "no events")


def cmd_audit_export(args: argparse.Namespace) -> None:
    """Every matching event as JSON lines on standard output, oldest first; the export is audited."""
    for line in export_audit(open_for(args), CLI, _query(args)):
        sys.stdout.write(line)


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--event", help="an event name, or a prefix ending in * (admin.*)")
    parser.add_argument("--user", help="a person's id (sub)")
    parser.add_argument("--client", help="a client_id")
    parser.add_argument("--outcome", help="success, failure, …")
    parser.add_argument("--since", type=int, help="seconds since the epoch, included")
    parser.add_argument("--until", type=int, help="seconds since the epoch, excluded")


def add_purge_command(sub: Any) -> None:
    command(
        sub,
        "purge",
        cmd_purge,
        "delete expired codes, tokens, sessions and other artefacts now, and clients that registered themselves "
        "and went unused for registration.unused_client_days",
    )


def add_audit_commands(sub: Any) -> None:
    audits = sub.add_parser("audit", help="the audit log").add_subparsers(dest="action", required=True)
    tail = command(audits, "tail", cmd_audit_tail, "show the latest audit events (those matching the filters)")
    tail.add_argument("-n", type=int, default=50)
    _filters(tail)
    export = command(audits, "export", cmd_audit_export, "write the audit events as JSON lines", json_flag=False)
    _filters(export)
