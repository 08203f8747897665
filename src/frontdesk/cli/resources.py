"""``frontdesk resource …``: the protected resources tokens may be minted for (RFC 8707), the scopes that belong to
each and their token lifetime. ``frontdesk.oauth.resources`` judges and records them."""

from __future__ import annotations

import argparse
from typing import Any

from ..admin.catalog import (
    ResourceView,
    create_resource,
    delete_resource,
    list_resources,
    resource,
    update_resource,
)
from ..admin.errors import AdminError, NotFound
from ..admin.principals import CLI
from .context import CommandError, command, open_for, output

__all__ = ["add_commands"]


def _data(r: ResourceView) -> dict[str, Any]:
    return {
        "uri": r.uri,
        "name": r.name,
        "scope": " ".join(r.scope),
        "access_token_ttl": r.access_token_ttl,
        "created_at": r.created_at,
        "require_dpop": r.require_dpop,
    }


def _text(r: ResourceView) -> str:
    ttl = f"{r.access_token_ttl} s" if r.access_token_ttl else "the client's, or the server's default"
    return "\n".join(
        [
            f"uri:               {r.uri}",
            f"name:              {r.name}",
            f"scope:             {' '.join(r.scope) or '-'}",
            f"access token life: {ttl}",
            f"DPoP:              {'required (RFC 9449)' if r.require_dpop else 'optional'}",
        ]
    )


def cmd_resource_create(args: argparse.Namespace) -> None:
    try:
        row, new_scopes = create_resource(
            open_for(args),
            CLI,
            uri=args.uri,
            name=args.name,
            scope=args.scope,
            access_token_ttl=args.access_token_ttl,
            require_dpop=args.require_dpop,
        )
    except AdminError as exc:
        raise CommandError(str(exc)) from None
    text = f"created resource {row.uri}\n{_text(row)}"
    if new_scopes:
        text += (
            f"\ncreated scope{'s' if len(new_scopes) > 1 else ''} {' '.join(new_scopes)}, described on the consent"
            " screen by name: to give a scope plain words, define it (frontdesk scope create NAME --description …)"
            " before the resource that names it"
        )
    output(args, {**_data(row), "created_scopes": list(new_scopes)}, text)


def cmd_resource_list(args: argparse.Namespace) -> None:
    rows = list_resources(open_for(args), CLI)
    output(
        args,
        [_data(r) for r in rows],
        "\n".join(f"{r.uri}\t{' '.join(r.scope) or '-'}\t{r.name}" for r in rows) or "no resources",
    )


def cmd_resource_show(args: argparse.Namespace) -> None:
    try:
        row = resource(open_for(args), CLI, args.uri)
    except NotFound:
        raise CommandError(f"no resource {args.uri!r}") from None
    output(args, _data(row), _text(row))


def cmd_resource_update(args: argparse.Namespace) -> None:
    if args.require_dpop is None:
        raise CommandError("nothing to change: give --require-dpop or --no-require-dpop")
    try:
        row = update_resource(open_for(args), CLI, args.uri, require_dpop=args.require_dpop)
    except NotFound:
        raise CommandError(f"no resource {args.uri!r}") from None
    output(args, _data(row), _text(row))


def cmd_resource_delete(args: argparse.Namespace) -> None:
    try:
        row = delete_resource(open_for(args), CLI, args.uri)
    except NotFound:
        raise CommandError(f"no resource {args.uri!r}") from None
    output(
        args,
        {"deleted": row.uri},
        f"deleted resource {row.uri}: no new token is issued for it, refreshes included; "
        "tokens issued already run out with their lifetime",
    )


_REQUIRE_DPOP = "mint only DPoP-bound tokens for it (RFC 9449): token requests for it without a proof are refused"


def _seconds(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or int(value) <= 0 or len(value) > 9:
        raise argparse.ArgumentTypeError("a positive number of seconds")
    return int(value)


def add_commands(sub: Any) -> None:
    resources = sub.add_parser("resource", help="manage protected resources (RFC 8707)").add_subparsers(
        dest="action", required=True
    )
    rcreate = command(resources, "create", cmd_resource_create, "register a resource tokens may be minted for")
    rcreate.add_argument("uri", help="its identifier, the audience of its tokens, e.g. https://mcp.example.com/mcp")
    rcreate.add_argument("--name", required=True, help="plain words for people")
    rcreate.add_argument(
        "--scope",
        default="",
        help="the scopes that belong to it, space-separated; those that do not exist yet are created",
    )
    rcreate.add_argument(
        "--access-token-ttl",
        type=_seconds,
        help="seconds its access tokens live (the shorter one wins when the client sets one too)",
    )
    rcreate.add_argument("--require-dpop", action="store_true", help=_REQUIRE_DPOP)
    rupdate = command(resources, "update", cmd_resource_update, "change whether a resource requires DPoP")
    rupdate.add_argument("uri")
    rupdate.add_argument("--require-dpop", action=argparse.BooleanOptionalAction, help=_REQUIRE_DPOP)
    command(resources, "list", cmd_resource_list, "list resources")
    rshow = command(resources, "show", cmd_resource_show, "show a resource")
    rshow.add_argument("uri")
    rdelete = command(resources, "delete", cmd_resource_delete, "remove a resource")
    rdelete.add_argument("uri")
