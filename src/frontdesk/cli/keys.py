"""``frontdesk keys …``: the signing keys (and, from ``frontdesk.vault.cli``, the vault's keys)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..admin.catalog import list_keys, rotate_keys
from ..admin.principals import CLI
from ..vault import cli as vault_cli
from .context import command, open_for, output

__all__ = ["add_commands"]


def cmd_keys_list(args: argparse.Namespace) -> None:
    keys = list_keys(open_for(args), CLI)
    rows = [
        {
            "kid": k.kid,
            "alg": k.alg,
            "state": k.state,
            "created_at": k.created_at,
            "publish_until": k.publish_until,
        }
        for k in keys
    ]
    output(args, rows, "\n".join(f"{k.kid}\t{k.alg}\t{k.state}" for k in keys))


def cmd_keys_rotate(args: argparse.Namespace) -> None:
    keys = [k for k in rotate_keys(open_for(args), CLI) if k.state != "retired" or (k.publish_until or 0) > time.time()]
    output(
        args,
        [{"kid": k.kid, "alg": k.alg, "state": k.state} for k in keys],
        "rotated: next keys are now active; new next keys are published\n"
        + "\n".join(f"{k.kid}\t{k.alg}\t{k.state}" for k in keys),
    )


def add_commands(sub: Any) -> None:
    keys = sub.add_parser("keys", help="signing keys").add_subparsers(dest="action", required=True)
    command(keys, "list", cmd_keys_list, "list signing keys")
    command(keys, "rotate", cmd_keys_rotate, "promote the next keys and publish new next keys")
    vault_cli.add_key_commands(keys, command, open_for, output)
