"""The vault's commands: ``frontdesk vault …``, ``frontdesk apikey …`` and ``frontdesk keys rotate-vault``.

Kept apart from the authorization server's commands; ``frontdesk.cli`` adds them to its parser.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import ConfigError
from ..core import Frontdesk
from . import api_key_store
from .keys import generate_key, key_file
from .service import vault_of

__all__ = ["add_commands", "add_key_commands"]

Printer = Callable[[argparse.Namespace, Any, str], None]
Opener = Callable[[argparse.Namespace], Frontdesk]
# (args, frontdesk, URL under the issuer) -> the redirect URI to register, or None when no issuer is set, and the
# line that tells the operator which (frontdesk.cli.context.redirect_uri).
RedirectUri = Callable[[argparse.Namespace, Frontdesk, str], tuple[str | None, str]]
# The operator's service for integrations (frontdesk.admin.vault, shared with the admin API and console), handed in
# by frontdesk.cli so that the vault imports nothing of it: list (each as a dict) and delete (name, with connections).
IntegrationLister = Callable[[Frontdesk], list[dict[str, Any]]]
IntegrationDeleter = Callable[[Frontdesk, str, bool], None]


def _params(pairs: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--param takes key=value, got {pair!r}")
        out[key] = value
    return out


def add_commands(
    sub: Any,
    command: Callable[..., argparse.ArgumentParser],
    opener: Opener,
    show: Printer,
    redirect: RedirectUri,
    integrations: tuple[IntegrationLister, IntegrationDeleter],
) -> None:
    list_integrations, delete_integration = integrations

    def providers(args: argparse.Namespace) -> None:
        vault = vault_of(opener(args))
        rows = [
            {
                "name": p.name,
                "display_name": p.display_name,
                "pkce": p.pkce,
                "variables": [v.name for v in p.variables],
                "discovery": p.discovery_url is not None,
                "docs_url": p.docs_url,
            }
            for p in vault.catalog
        ]
        show(args, rows, "\n".join(f"{r['name']:<20} {r['display_name']}" for r in rows))

    def integration_add(args: argparse.Namespace) -> None:
        fd = opener(args)
        vault = vault_of(fd)
        if args.client_secret_stdin:
            secret: str | None = sys.stdin.readline().strip()
            if not secret:
                raise ValueError("no client secret on standard input")
        else:
            secret = args.client_secret
        # --scope replaces the catalog's default scopes (a provider may refuse one); without it, the defaults.
        scopes = None if args.scope is None else args.scope.split()
        added = vault.add_integration(args.name, args.provider, args.client_id, secret, scopes, _params(args.param))
        asked = vault.scopes_of(added)
        left_out = [s for s in vault.catalog.get(added.provider).default_scopes if s not in asked]
        uri, note = redirect(args, fd, vault.callback_url)
        lines = [f"added integration {added.name} ({added.provider})", f"scopes asked for: {' '.join(asked) or 'none'}"]
        if left_out:
            lines.append(f"catalog default scopes not asked for: {' '.join(left_out)}")
        show(
            args,
            {**added.public(), "scopes": list(asked), "redirect_uri": uri, "redirect_uri_note": note},
            "\n".join([*lines, note]),
        )

    def integration_list(args: argparse.Namespace) -> None:
        rows = list_integrations(opener(args))
        show(
            args,
            rows,
            "\n".join(
                f"{r['name']:<20} {r['provider']:<16} {r['client_id']:<24} {' '.join(r['scopes'])}" for r in rows
            ),
        )

    def integration_delete(args: argparse.Namespace) -> None:
        delete_integration(opener(args), args.name, args.with_connections)  # audited, naming the command line
        show(args, {"deleted": args.name}, f"deleted integration {args.name}")

    def apikey_create(args: argparse.Namespace) -> None:
        vault = vault_of(opener(args))
        record, key = api_key_store.create_api_key(vault.engine, args.name, export=args.export)
        show(
            args,
            {"id": record.id, "name": record.name, "scope": list(record.scope), "api_key": key.value},
            f"API key {record.id} ({record.name}); shown once, keep it safe:\n{key.value}",
        )

    def apikey_list(args: argparse.Namespace) -> None:
        vault = vault_of(opener(args))
        keys = api_key_store.api_keys(vault.engine)
        rows = [
            {"id": k.id, "name": k.name, "scope": list(k.scope), "created_at": k.created_at,
             "last_used_at": k.last_used_at, "revoked": k.revoked_at is not None}
            for k in keys
        ]  # fmt: skip
        show(args, rows, "\n".join(f"{k.id}\t{k.name}\t{' '.join(k.scope)}" for k in keys))

    def apikey_revoke(args: argparse.Namespace) -> None:
        vault = vault_of(opener(args))
        if not api_key_store.revoke_api_key(vault.engine, args.id):
            raise ValueError(f"no active API key {args.id!r}")
        show(args, {"revoked": args.id}, f"revoked API key {args.id}")

    vault = sub.add_parser("vault", help="the token vault").add_subparsers(dest="action", required=True)
    command(vault, "providers", providers, "list the provider catalog")
    integrations = vault.add_parser("integration", help="the platform's apps at providers").add_subparsers(
        dest="integration_action", required=True
    )
    add = command(integrations, "add", integration_add, "register the platform's app at a provider")
    add.add_argument("name")
    add.add_argument("--provider", required=True)
    add.add_argument("--client-id", required=True)
    secret = add.add_mutually_exclusive_group()
    secret.add_argument("--client-secret-stdin", action="store_true", help="read the client secret from stdin")
    secret.add_argument("--client-secret", help="the client secret (visible to other local users: prefer stdin)")
    add.add_argument(
        "--scope",
        help="space-separated scopes asked for at every connection, in place of the catalog's defaults, e.g. \"openid "
        'offline_access" (without it, the defaults)',
    )
    add.add_argument("--param", action="append", help="a provider variable, e.g. tenant=contoso.onmicrosoft.com")
    command(integrations, "list", integration_list, "list integrations")
    delete = command(integrations, "delete", integration_delete, "delete an integration")
    delete.add_argument("name")
    delete.add_argument("--with-connections", action="store_true", help="also delete its connections")

    apikeys = sub.add_parser("apikey", help="API keys for the platform's backend").add_subparsers(
        dest="action", required=True
    )
    create = command(apikeys, "create", apikey_create, "issue an API key (shown once)")
    create.add_argument("--name", required=True)
    create.add_argument("--export", action="store_true", help="may also export raw tokens (audited)")
    command(apikeys, "list", apikey_list, "list API keys")
    revoke = command(apikeys, "revoke", apikey_revoke, "revoke an API key")
    revoke.add_argument("id")


def add_key_commands(keys: Any, command: Callable[..., argparse.ArgumentParser], opener: Opener, show: Printer) -> None:
    def rotate_vault(args: argparse.Namespace) -> None:
        fd = opener(args)
        if args.new_key:
            path = key_file(fd.settings)
            if path is None:
                raise ConfigError(
                    "the vault keys come from FRONTDESK_VAULT_KEYS: put the new key first there (keep the old one "
                    "after it), restart, then run this command without --new-key"
                )
            _prepend_key(path)
            fd = opener(args)
        vault = vault_of(fd)
        count = vault.rotate_keys(batch=args.batch)
        show(
            args,
            {"active_key": vault.keys.active_id, "resealed": count},
            f"active vault key {vault.keys.active_id}; re-sealed {count} record(s)",
        )

    rotate = command(keys, "rotate-vault", rotate_vault, "re-seal every vault record under the active vault key")
    rotate.add_argument("--new-key", action="store_true", help="first add a new vault key to the key file")
    rotate.add_argument("--batch", type=int, default=100, help="records re-sealed per transaction")


def _prepend_key(path: Path) -> None:
    """The new key goes first (it seals from now on); the old ones stay below it (they still open)."""
    old = path.read_text() if path.exists() else ""
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    # Created 0600, not chmod-ed after writing: the keys are never readable by others, not even for a moment.
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as fh:
        fh.write(generate_key() + "\n" + old)
    tmp.replace(path)
