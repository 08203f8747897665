"""``frontdesk scope …``: the scopes clients may be registered for, with the plain words consent shows."""

from __future__ import annotations

import argparse
from typing import Any

from ..admin.catalog import create_scope, list_scopes
from ..admin.errors import AdminError
from ..admin.principals import CLI
from .context import CommandError, command, open_for, output

__all__ = ["add_commands"]


def cmd_scope_create(args: argparse.Namespace) -> None:
    try:
        create_scope(open_for(args), CLI, args.name, args.description)
    except AdminError as exc:
        raise CommandError(str(exc)) from None
    output(args, {"name": args.name, "description": args.description}, f"created scope {args.name}")


def cmd_scope_list(args: argparse.Namespace) -> None:
    scopes = list_scopes(open_for(args), CLI)
    output(
        args,
        [{"name": s.name, "description": s.description} for s in scopes],
        "\n".join(f"{s.name}\t{s.description}" for s in scopes),
    )


def add_commands(sub: Any) -> None:
    scopes = sub.add_parser("scope", help="manage scopes").add_subparsers(dest="action", required=True)
    screate = command(scopes, "create", cmd_scope_create, "define a scope")
    screate.add_argument("name")
    screate.add_argument("--description", required=True, help="plain words shown on the consent screen")
    command(scopes, "list", cmd_scope_list, "list scopes")
