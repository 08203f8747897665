"""``frontdesk purge`` and ``frontdesk audit tail``: the stored records, pruned and read."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from ..oauth.housekeeping import purge
from ..storage import audit
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


def cmd_audit_tail(args: argparse.Namespace) -> None:
    events = audit.tail(open_for(args).engine, args.n)
    output(
        args,
        [e.as_dict() for e in events],
        "\n".join(
            f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(e.at))} {e.event} {e.outcome} "
            f"client={e.client_id or '-'} user={e.user_id or '-'} ip={e.ip or '-'} {json.dumps(e.detail)}"
            for e in events
        )
        or "no events",
    )


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
    tail = command(audits, "tail", cmd_audit_tail, "show the latest audit events")
    tail.add_argument("-n", type=int, default=50)
