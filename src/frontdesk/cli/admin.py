"""``frontdesk admin …``: the admin API's tokens (``admin token create --role R --name N [--days D] | list | revoke
ID``) and the people who may use the console (``admin role grant USERNAME --role R | revoke USERNAME | list``).
The command line acts as an owner: whoever runs it holds the database and the keys already."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..admin.principals import CLI, ROLES
from ..admin.roles import grant_role, list_roles, revoke_role
from ..admin.tokens import TokenView, create_token, list_tokens, revoke_token
from .context import command, open_for, output

__all__ = ["add_commands"]


def _when(at: int | None, never: str) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at)) if at else never


def _token_line(t: TokenView) -> str:
    state = "revoked" if t.revoked_at else f"expires {_when(t.expires_at, 'never')}"
    return f"{t.id}\t{t.role}\t{t.name}\t{state}\tlast used {_when(t.last_used_at, 'never')}"


def cmd_token_create(args: argparse.Namespace) -> None:
    issued = create_token(open_for(args), CLI, role=args.role, name=args.name, days=args.days)
    output(
        args,
        {**issued.token.as_dict(), "token": issued.secret},
        f"admin token {issued.token.id} ({issued.token.role}, {issued.token.name}); "
        f"expires {_when(issued.token.expires_at, 'never')}\n{issued.secret}\n"
        "(shown once: frontdesk keeps only a digest; send it as Authorization: Bearer …)",
    )


def cmd_token_list(args: argparse.Namespace) -> None:
    tokens = list_tokens(open_for(args), CLI)
    output(args, [t.as_dict() for t in tokens], "\n".join(_token_line(t) for t in tokens) or "no admin tokens")


def cmd_token_revoke(args: argparse.Namespace) -> None:
    revoked = revoke_token(open_for(args), CLI, args.id)
    output(args, revoked.as_dict(), f"revoked admin token {revoked.id} ({revoked.name})")


def cmd_role_grant(args: argparse.Namespace) -> None:
    role = grant_role(open_for(args), CLI, args.username, args.role)
    output(args, role.as_dict(), f"{args.username} is now {role.role} in the admin console")


def cmd_role_revoke(args: argparse.Namespace) -> None:
    revoke_role(open_for(args), CLI, args.username)
    output(args, {"revoked": args.username}, f"{args.username} holds no admin role any more")


def cmd_role_list(args: argparse.Namespace) -> None:
    roles = list_roles(open_for(args), CLI)
    output(
        args,
        [r.as_dict() for r in roles],
        "\n".join(f"{r.username or r.user_id}\t{r.role}\tgranted by {r.granted_by}" for r in roles)
        or "nobody holds an admin role",
    )


def _days(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or len(value) > 4:
        raise argparse.ArgumentTypeError("a number of days (0: until revoked)")
    return int(value)


def add_commands(sub: Any) -> None:
    admin = sub.add_parser("admin", help="the admin API's tokens and the console's roles").add_subparsers(
        dest="admin_action", required=True
    )
    tokens = admin.add_parser("token", help="admin API tokens").add_subparsers(dest="action", required=True)
    create = command(tokens, "create", cmd_token_create, "issue an admin API token (shown once)")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--name", required=True, help="who or what uses it, e.g. ci-deploy")
    create.add_argument("--days", type=_days, help="days it lives (default [admin] token_days; 0: until revoked)")
    command(tokens, "list", cmd_token_list, "list admin tokens (never their values)")
    revoke = command(tokens, "revoke", cmd_token_revoke, "revoke an admin token")
    revoke.add_argument("id")
    roles = admin.add_parser("role", help="people who may use the admin console").add_subparsers(
        dest="action", required=True
    )
    grant = command(roles, "grant", cmd_role_grant, "give a person an admin role (replacing the one they held)")
    grant.add_argument("username")
    grant.add_argument("--role", required=True, choices=ROLES)
    rrevoke = command(roles, "revoke", cmd_role_revoke, "take a person's admin role away")
    rrevoke.add_argument("username")
    command(roles, "list", cmd_role_list, "list the people holding an admin role")
