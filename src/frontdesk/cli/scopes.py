"""``frontdesk scope …``: the scopes clients may be registered for, with the plain words consent shows."""

from __future__ import annotations

import argparse
from typing import Any

from ..admin.catalog import create_scope, delete_scope, list_scopes, update_scope
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


def cmd_scope_update(args: argparse.Namespace) -> None:
    try:
        changed = update_scope(open_for(args), CLI, args.name, args.description)
    except AdminError as exc:
        raise CommandError(str(exc)) from None
    output(args, {"name": changed.name, "description": changed.description}, f"updated scope {args.name}")


def cmd_scope_delete(args: argparse.Namespace) -> None:
    try:
        delete_scope(open_for(args), CLI, args.name)
    except AdminError as exc:
        raise CommandError(str(exc)) from None
    output(args, {"name": args.name, "deleted": True}, f"deleted scope {args.name}")


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
    supdate = command(scopes, "update", cmd_scope_update, "change the plain words consent shows for a scope")
    supdate.add_argument("name")
    supdate.add_argument("--description", required=True, help="plain words shown on the consent screen")
    sdelete = command(scopes, "delete", cmd_scope_delete, "remove a scope no client or resource is registered for")
    sdelete.add_argument("name")
    command(scopes, "list", cmd_scope_list, "list scopes")
