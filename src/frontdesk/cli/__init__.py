"""The ``frontdesk`` command line: a stable, scriptable interface. ``--json`` prints machine-readable output;
errors go to stderr with a non-zero exit status.

Each group of commands lives in its own module with the parser lines that declare it; this module puts the parser
together, in the order ``frontdesk --help`` lists the commands, and runs the one asked for."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..admin import vault as vault_admin
from ..admin.errors import AdminError
from ..admin.principals import CLI
from ..config import ConfigError
from ..core import Frontdesk
from ..vault import cli as vault_cli
from . import (
    admin,
    alerts,
    authz_types,
    clients,
    keys,
    people,
    registration,
    resources,
    scopes,
    serve,
    upkeep,
    upstream,
)
from .context import CommandError, command, open_for, output, redirect_uri

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frontdesk", description="OAuth 2.1 + OpenID Connect authorization server")
    parser.add_argument("--config", help="TOML configuration file (or FRONTDESK_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)
    serve.add_commands(sub)
    clients.add_commands(sub)
    registration.add_commands(sub)
    upstream.add_commands(sub)
    people.add_commands(sub)
    scopes.add_commands(sub)
    resources.add_commands(sub)
    authz_types.add_commands(sub)
    keys.add_commands(sub)
    vault_cli.add_commands(sub, command, open_for, output, redirect_uri, (_integrations, _delete_integration))
    upkeep.add_purge_command(sub)
    upkeep.add_audit_commands(sub)
    alerts.add_commands(sub)
    admin.add_commands(sub)
    return parser


def _integrations(fd: Frontdesk) -> list[dict[str, object]]:
    return [i.as_dict() for i in vault_admin.list_integrations(fd, CLI)]


def _delete_integration(fd: Frontdesk, name: str, with_connections: bool) -> None:
    vault_admin.delete_integration(fd, CLI, name, with_connections=with_connections)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        args.fn(args)
    except (AdminError, CommandError, ConfigError, ValueError) as exc:
        print(f"frontdesk: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
