"""``frontdesk user …``: the people who can sign in (``frontdesk.admin.people``, as the admin API manages them)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..admin import people
from ..admin.errors import AdminError, NotFound
from ..admin.principals import CLI
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
        user = people.create_person(
            open_for(args), CLI, username=args.username, password=password, email=args.email, name=args.name
        )
    except AdminError as exc:
        raise CommandError(str(exc)) from None
    output(
        args,
        {"id": user.id, "username": user.username, "email": user.email, "name": user.name},
        f"created user {user.username} (sub {user.id})",
    )


def cmd_user_list(args: argparse.Namespace) -> None:
    fd = open_for(args)
    users: list[people.PersonView] = []
    cursor = None
    while True:
        page = people.list_people(fd, CLI, search=args.search, cursor=cursor, limit=200)
        users.extend(page.items)
        if (cursor := page.next_cursor) is None:
            break
    output(
        args,
        [{"id": u.id, "username": u.username, "email": u.email, "name": u.name, "disabled": u.disabled} for u in users],
        "\n".join(f"{u.username}\t{u.id}\t{u.email or ''}{chr(9) + 'disabled' if u.disabled else ''}" for u in users)
        or "no users",
    )


def _by_username(args: argparse.Namespace) -> tuple[Any, people.PersonView]:
    fd = open_for(args)
    try:
        return fd, people.find_person(fd, CLI, args.username)
    except NotFound:
        raise CommandError(f"no user {args.username!r}") from None


def cmd_user_delete(args: argparse.Namespace) -> None:
    fd, person = _by_username(args)
    people.delete_person(fd, CLI, person.id)
    output(args, {"deleted": args.username}, f"deleted user {args.username}")


def cmd_user_disable(args: argparse.Namespace) -> None:
    fd, person = _by_username(args)
    people.disable_person(fd, CLI, person.id)
    output(
        args,
        {"disabled": args.username},
        f"disabled {args.username}: they cannot sign in; their sessions, grants and refresh tokens ended",
    )


def cmd_user_enable(args: argparse.Namespace) -> None:
    fd, person = _by_username(args)
    people.enable_person(fd, CLI, person.id)
    output(args, {"enabled": args.username}, f"enabled {args.username}: they can sign in again")


def cmd_user_reset_password(args: argparse.Namespace) -> None:
    fd, person = _by_username(args)
    people.send_password_reset(fd, CLI, person.id)
    output(args, {"sent": args.username}, f"sent {args.username} a link to choose a new password")


def cmd_user_remove_second_factor(args: argparse.Namespace) -> None:
    fd, person = _by_username(args)
    people.remove_second_factor(fd, CLI, person.id)
    output(args, {"removed": args.username}, f"removed the second factor of {args.username}")


def cmd_user_end_sessions(args: argparse.Namespace) -> None:
    fd, person = _by_username(args)
    ended = people.end_person_sessions(fd, CLI, person.id)
    output(args, {"sessions": ended}, f"signed {args.username} out of {ended} browser session(s)")


def add_commands(sub: Any) -> None:
    users = sub.add_parser("user", help="manage people").add_subparsers(dest="action", required=True)
    ucreate = command(users, "create", cmd_user_create, "create a person who can sign in")
    ucreate.add_argument("--username", required=True)
    ucreate.add_argument("--email")
    ucreate.add_argument("--name")
    pw = ucreate.add_mutually_exclusive_group()
    pw.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    pw.add_argument("--password", help="the password (visible to other local users: prefer --password-stdin)")
    ulist = command(users, "list", cmd_user_list, "list people")
    ulist.add_argument("--search", help="only those whose username or email contains this")
    for name, fn, words in (
        ("delete", cmd_user_delete, "delete a person"),
        ("disable", cmd_user_disable, "stop a person signing in and end their sessions, grants and tokens"),
        ("enable", cmd_user_enable, "let a disabled person sign in again"),
        ("reset-password", cmd_user_reset_password, "email a person a link to choose a new password"),
        ("remove-second-factor", cmd_user_remove_second_factor, "remove a person's authenticator app"),
        ("end-sessions", cmd_user_end_sessions, "sign a person out of every browser"),
    ):
        command(users, name, fn, words).add_argument("username")
