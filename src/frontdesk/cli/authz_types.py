"""``frontdesk authz-type …``: the ``authorization_details`` types clients may ask for (RFC 9396), each with its JSON
Schema and the plain words consent and approval pages show. ``frontdesk.oauth.authorization_detail_types`` judges
and records them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..oauth.authorization_detail_types import DetailType, DetailTypeError, create, delete, listed, shown
from .context import CommandError, command, open_for, output

__all__ = ["add_commands"]


def _data(t: DetailType) -> dict[str, Any]:
    return {"type": t.type, "describe": t.describe, "schema": t.schema, "created_at": t.created_at}


def _text(t: DetailType) -> str:
    return "\n".join(
        [
            f"type:     {t.type}",
            f"describe: {t.describe}",
            f"schema:   {json.dumps(t.schema, indent=2, sort_keys=True)}",
        ]
    )


def cmd_authz_type_create(args: argparse.Namespace) -> None:
    try:
        schema = Path(args.schema).read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise CommandError(f"cannot read the schema {args.schema}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        row = create(open_for(args), args.type, schema, args.describe)
    except DetailTypeError as exc:
        raise CommandError(str(exc)) from None
    output(args, _data(row), f"created authorization details type {row.type}\n{_text(row)}")


def cmd_authz_type_list(args: argparse.Namespace) -> None:
    rows = listed(open_for(args))
    output(
        args,
        [_data(t) for t in rows],
        "\n".join(f"{t.type}\t{t.describe}" for t in rows) or "no authorization details types",
    )


def cmd_authz_type_show(args: argparse.Namespace) -> None:
    row = shown(open_for(args), args.type)
    if row is None:
        raise CommandError(f"no authorization details type {args.type!r}")
    output(args, _data(row), _text(row))


def cmd_authz_type_delete(args: argparse.Namespace) -> None:
    row = delete(open_for(args), args.type)
    if row is None:
        raise CommandError(f"no authorization details type {args.type!r}")
    output(
        args,
        {"deleted": row.type},
        f"deleted authorization details type {row.type}: new requests of it are refused; "
        "grants that hold it keep it until they are revoked",
    )


def add_commands(sub: Any) -> None:
    types = sub.add_parser(
        "authz-type", help="manage authorization_details types (RFC 9396 rich authorization requests)"
    ).add_subparsers(dest="action", required=True)
    tcreate = command(types, "create", cmd_authz_type_create, "register a type clients may ask for")
    tcreate.add_argument("type", help="its name, e.g. payment_initiation or a URI")
    tcreate.add_argument(
        "--schema",
        required=True,
        help="a JSON Schema (Draft 2020-12) file for one object of the type, its type field included; fields it "
        "does not name are refused unless it sets additionalProperties",
    )
    tcreate.add_argument(
        "--describe",
        required=True,
        help='plain words for the consent page, with {field} or {path.to.field}: "Pay {amount} {currency} to '
        '{creditorName}"',
    )
    command(types, "list", cmd_authz_type_list, "list types")
    tshow = command(types, "show", cmd_authz_type_show, "show a type")
    tshow.add_argument("type")
    tdelete = command(types, "delete", cmd_authz_type_delete, "remove a type")
    tdelete.add_argument("type")
