"""``frontdesk upstream …``: the providers people may sign in with (OpenID Connect or plain OAuth 2.0)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..admin.errors import AdminError, NotFound
from ..admin.principals import CLI
from ..admin.upstreams import create_upstream, delete_upstream, list_upstreams
from ..secret import Secret
from ..upstream.providers import TOKEN_AUTH_METHODS
from .context import CommandError, command, open_for, output, redirect_uri

__all__ = ["add_commands"]


def cmd_upstream_add(args: argparse.Namespace) -> None:
    fd = open_for(args)
    secret: Secret | None = None
    if args.client_secret_stdin:
        secret = Secret(sys.stdin.readline().rstrip("\r\n"))
        if not secret.value:
            raise CommandError("the client secret read from standard input is empty")
    try:
        provider = create_upstream(
            fd,
            CLI,
            args.name,
            client_id=args.client_id,
            client_secret=secret,
            discovery_url=args.discovery_url,
            authorization_endpoint=args.authorization_endpoint,
            token_endpoint=args.token_endpoint,
            userinfo_endpoint=args.userinfo_endpoint,
            display_name=args.display_name,
            scope=args.scope,
            token_auth_method=args.token_auth_method,
        )
    except AdminError as exc:
        raise CommandError(str(exc)) from None
    uri, note = redirect_uri(args, fd, provider.redirect_uri)
    shown = provider.details
    output(
        args,
        {**shown, "redirect_uri": uri, "redirect_uri_note": note},
        f"added {shown['display_name']} ({shown['kind']}); the sign-in page now offers "
        f'"Continue with {shown["display_name"]}"\nscopes asked for: {shown["scope"] or "none"}\n{note}',
    )


def cmd_upstream_list(args: argparse.Namespace) -> None:
    providers = [p.details for p in list_upstreams(open_for(args), CLI)]
    output(
        args,
        providers,
        "\n".join(
            f"{p['name']}\t{p['kind']}\t{p['display_name']}\t{p['issuer'] or p['authorization_endpoint']}"
            for p in providers
        )
        or "no upstream providers",
    )


def cmd_upstream_delete(args: argparse.Namespace) -> None:
    try:
        delete_upstream(open_for(args), CLI, args.name)
    except NotFound:
        raise CommandError(f"no upstream provider {args.name!r}") from None
    output(args, {"deleted": args.name}, f"deleted upstream provider {args.name}")


def add_commands(sub: Any) -> None:
    upstreams = sub.add_parser("upstream", help="providers people may sign in with")
    upstream = upstreams.add_subparsers(dest="action", required=True)
    uadd = command(upstream, "add", cmd_upstream_add, "offer sign-in with another provider")
    uadd.add_argument("name", help="short name, e.g. google (in the redirect URI)")
    where = uadd.add_mutually_exclusive_group(required=True)
    where.add_argument("--discovery-url", help="an OpenID Connect provider's issuer or discovery document URL")
    where.add_argument("--authorization-endpoint", help="plain OAuth 2.0 (with --token-endpoint, --userinfo-endpoint)")
    uadd.add_argument("--token-endpoint")
    uadd.add_argument("--userinfo-endpoint", help="plain OAuth 2.0: where the account's id and email are read")
    uadd.add_argument("--client-id", required=True)
    uadd.add_argument("--client-secret-stdin", action="store_true", help="read the client secret from standard input")
    uadd.add_argument("--display-name", help='as on the button: "Continue with NAME"')
    uadd.add_argument("--scope", help='default "openid email profile" (OpenID Connect)')
    uadd.add_argument("--token-auth-method", choices=TOKEN_AUTH_METHODS)
    command(upstream, "list", cmd_upstream_list, "list upstream providers")
    udel = command(upstream, "delete", cmd_upstream_delete, "stop offering a provider (accounts stay, unlinked)")
    udel.add_argument("name")
