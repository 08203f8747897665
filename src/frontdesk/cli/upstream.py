"""``frontdesk upstream …``: the providers people may sign in with (OpenID Connect or plain OAuth 2.0)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import httpx

from ..secret import Secret
from ..upstream import add_provider, callback_url, list_providers, remove_provider
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
    with httpx.Client(follow_redirects=False) as http:
        provider = add_provider(
            fd,
            http,
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
    uri, note = redirect_uri(args, fd, callback_url(fd, provider.name))
    output(
        args,
        {**provider.public(), "redirect_uri": uri, "redirect_uri_note": note},
        f"added {provider.display_name} ({provider.kind}); the sign-in page now offers "
        f'"Continue with {provider.display_name}"\nscopes asked for: {" ".join(provider.scope) or "none"}\n{note}',
    )


def cmd_upstream_list(args: argparse.Namespace) -> None:
    providers = list_providers(open_for(args))
    output(
        args,
        [p.public() for p in providers],
        "\n".join(f"{p.name}\t{p.kind}\t{p.display_name}\t{p.issuer or p.authorization_endpoint}" for p in providers)
        or "no upstream providers",
    )


def cmd_upstream_delete(args: argparse.Namespace) -> None:
    if not remove_provider(open_for(args), args.name):
        raise CommandError(f"no upstream provider {args.name!r}")
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
