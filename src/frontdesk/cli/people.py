"""``frontdesk user …``: the people who can sign in."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..storage.people import UserError
from .context import CommandError, command, open_for, output

__all__ = ["add_commands"]


def cmd_user_create(args: argparse.Namespace) -> None:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif args.password is not None:
        password = args.password
    else:
        raise CommandError("give --password-stdin or --password")
    try:
        user = open_for(args).users.create(args.username, password, email=args.email, name=args.name)
    except UserError as exc:
        raise CommandError(str(exc)) from None
    output(
        args,
        {"id": user.id, "username": user.username, "email": user.email, "name": user.name},
        f"created user {user.username} (sub {user.id})",
    )


def cmd_user_list(args: argparse.Namespace) -> None:
    users = open_for(args).users.list()
    output(
        args,
        [{"id": u.id, "username": u.username, "email": u.email, "name": u.name} for u in users],
        "\n".join(f"{u.username}\t{u.id}\t{u.email or ''}" for u in users) or "no users",
    )


def cmd_user_delete(args: argparse.Namespace) -> None:
    if not open_for(args).users.delete(args.username):
        raise CommandError(f"no user {args.username!r}")
    output(args, {"deleted": args.username}, f"deleted user {args.username}")


def add_commands(sub: Any) -> None:
    users = sub.add_parser("user", help="manage people").add_subparsers(dest="action", required=True)
    ucreate = command(users, "create", cmd_user_create, "create a person who can sign in")
    ucreate.add_argument("--username", required=True)
    ucreate.add_argument("--email")
    ucreate.add_argument("--name")
    pw = ucreate.add_mutually_exclusive_group()
    pw.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    pw.add_argument("--password", help="the password (visible to other local users: prefer --password-stdin)")
    command(users, "list", cmd_user_list, "list people")
    udelete = command(users, "delete", cmd_user_delete, "delete a person")
    udelete.add_argument("username")
