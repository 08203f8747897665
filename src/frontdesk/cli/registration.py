"""``frontdesk registration token …``: initial access tokens (RFC 7591 §3), which let a developer register a client
at ``/register`` beyond what open registration allows (``client_credentials``, restricted scopes), or at all when
``[registration] mode = "token"``."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..oauth.initial_access_tokens import (
    InitialAccessTokenError,
    InitialAccessTokenRow,
    create_initial_access_token,
    list_initial_access_tokens,
    revoke_initial_access_token,
)
from .context import CommandError, command, open_for, output

__all__ = ["add_commands"]


def _as_dict(row: InitialAccessTokenRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "uses_left": row.uses_left,
        "revoked_at": row.revoked_at,
    }


def _state(row: InitialAccessTokenRow, at: float) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= at:
        return "expired"
    if row.uses_left == 0:
        return "used up"
    return "active"


def _line(row: InitialAccessTokenRow, at: float) -> str:
    uses = "unlimited" if row.uses_left is None else f"{row.uses_left} uses left"
    expires = (
        "never expires" if row.expires_at is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(row.expires_at))
    )
    return f"{row.id}\t{_state(row, at)}\t{uses}\t{expires}\t{row.name}"


def cmd_token_create(args: argparse.Namespace) -> None:
    try:
        token, row = create_initial_access_token(
            open_for(args), name=args.name, expires_in=args.expires_in, uses=args.uses
        )
    except InitialAccessTokenError as exc:
        raise CommandError(str(exc)) from None
    output(
        args,
        {**_as_dict(row), "token": token},
        f"initial access token {row.id} ({row.name})\n{token}\n"
        "(shown once: frontdesk keeps only a digest; send it as `Authorization: Bearer …` to /register)",
    )


def cmd_token_list(args: argparse.Namespace) -> None:
    rows = list_initial_access_tokens(open_for(args))
    at = time.time()
    output(
        args,
        [{**_as_dict(r), "state": _state(r, at)} for r in rows],
        "\n".join(_line(r, at) for r in rows) or "no initial access tokens",
    )


def cmd_token_revoke(args: argparse.Namespace) -> None:
    if not revoke_initial_access_token(open_for(args), args.id):
        raise CommandError(f"no unrevoked initial access token {args.id!r}")
    output(args, {"revoked": args.id}, f"revoked initial access token {args.id}")


def add_commands(sub: Any) -> None:
    registration = sub.add_parser("registration", help="dynamic client registration (RFC 7591)")
    groups = registration.add_subparsers(dest="group", required=True)
    tokens = groups.add_parser("token", help="initial access tokens").add_subparsers(dest="action", required=True)
    create = command(tokens, "create", cmd_token_create, "make an initial access token (printed once)")
    create.add_argument("--name", default="initial access token", help="what it is for, shown by `list`")
    create.add_argument("--expires-in", type=int, metavar="S", help="seconds until it expires (default: never)")
    create.add_argument("--uses", type=int, metavar="N", help="how many registrations it opens (default: any)")
    command(tokens, "list", cmd_token_list, "list initial access tokens (never their values)")
    revoke = command(tokens, "revoke", cmd_token_revoke, "revoke an initial access token")
    revoke.add_argument("id")
