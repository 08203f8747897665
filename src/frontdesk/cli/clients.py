"""``frontdesk client …``: register, list, show, update and delete clients. Registration goes through
``frontdesk.oauth.registration``, which judges the metadata (RFC 7591 §2) exactly as ``/register`` will."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from ..admin.clients import (
    DEFAULT_OVERLAP,
    MAX_OVERLAP,
    all_clients,
    client,
    create_client,
    delete_client,
    rotate_secret,
    update_client,
)
from ..admin.errors import AdminError, NotFound, UnknownScopes
from ..admin.principals import CLI
from ..oauth.client_auth import AUTH_METHODS
from ..oauth.grants import GRANT_TYPES
from ..oauth.registration import ASSERTION_AUDIENCES, ClientRequest, render_metadata
from ..protocol.ciba import DELIVERY_MODES
from ..storage.clients import ClientRecord
from .context import CommandError, command, open_for, output

__all__ = ["add_commands"]


# Who registered a client that the operator did not (``ClientRecord.vetted``): ``client show``'s words, and the
# column ``client list`` adds for such clients only (the lines of the operator's own stay as they were).
_REGISTERED_BY = {"self": "the client itself (dynamic registration)", "document": "its client ID metadata document"}
_LIST_COLUMN = {"self": "registered itself", "document": "metadata document"}


def _client_text(c: ClientRecord) -> str:
    lines = [
        f"client_id:    {c.client_id}",
        f"name:         {c.name}",
        f"auth method:  {c.auth_method}",
        f"grant types:  {' '.join(c.grant_types)}",
        f"scope:        {' '.join(c.scope)}",
        f"redirect URIs: {' '.join(c.redirect_uris) or '-'}",
    ]
    if c.may_exchange_for:
        lines.append(f"may exchange for: {' '.join(c.may_exchange_for)}")
    if c.dpop_bound_access_tokens:
        lines.append("DPoP:         every token request needs a proof (dpop_bound_access_tokens)")
    if not c.vetted:
        used = time.strftime("%Y-%m-%d", time.gmtime(c.last_used_at)) if c.last_used_at else "never"
        lines += [f"registered by: {_REGISTERED_BY[c.registered_by]}", f"last used:    {used}"]
    return "\n".join(lines)


def _client_json(c: ClientRecord) -> dict[str, Any]:
    """RFC 7591 metadata; a client the operator did not register also says who did, and when it was last used."""
    data = _with_policy(render_metadata(c), c)
    if not c.vetted:
        data["registered_by"] = c.registered_by
        data["last_used_at"] = c.last_used_at
    return data


def _with_policy(data: dict[str, Any], c: ClientRecord) -> dict[str, Any]:
    """The operator's token exchange policy beside the metadata (frontdesk's own name: RFC 7591 has none)."""
    if c.may_exchange_for:
        data["may_exchange_for"] = list(c.may_exchange_for)
    return data


def _list_line(c: ClientRecord) -> str:
    line = f"{c.client_id}\t{c.auth_method}\t{c.name}"
    return line if c.vetted else f"{line}\t{_LIST_COLUMN[c.registered_by]}"


def _jwks_file(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CommandError(f"cannot read a JWK Set from {path}: {exc}") from None


def _requested(args: argparse.Namespace) -> ClientRequest:
    """The metadata ``client create`` asks for, from its flags."""
    return ClientRequest(
        name=args.name,
        client_id=args.client_id,
        secret=args.secret,
        auth_method="none" if args.public else args.auth_method,
        redirect_uris=args.redirect_uri or [],
        grant_types=args.grant_type,
        scope=args.scope,
        jwks=_jwks_file(args.jwks) if args.jwks else None,
        jwks_uri=args.jwks_uri,
        resources=args.resource,
        access_token_ttl=args.access_token_ttl,
        id_token_alg=args.id_token_alg,
        post_logout_redirect_uris=args.post_logout_redirect_uri or [],
        backchannel_logout_uri=args.backchannel_logout_uri,
        backchannel_logout_session_required=bool(args.backchannel_logout_session_required),
        assertion_audience=args.assertion_audience,
        may_exchange_for=args.may_exchange_for,
        backchannel_token_delivery_mode=args.backchannel_token_delivery_mode,
        backchannel_client_notification_endpoint=args.backchannel_client_notification_endpoint,
        dpop_bound_access_tokens=args.dpop_bound_access_tokens is True,
    )


def _failed(exc: AdminError) -> CommandError:
    if isinstance(exc, UnknownScopes):
        first = exc.scopes[0]
        return CommandError(
            f"{exc.error}: {exc}; define {'them' if len(exc.scopes) > 1 else 'it'} first, e.g. "
            f'frontdesk scope create {first} --description "what {first} lets an app do, in plain words"'
        )
    if isinstance(exc, NotFound):
        return CommandError(str(exc))
    return CommandError(f"{exc.error}: {exc}")


def _shown(args: argparse.Namespace, c: ClientRecord, secret: str | None) -> None:
    data = _with_policy(render_metadata(c), c)
    text = _client_text(c)
    if secret is not None:
        data["client_secret"] = secret
        text += f"\nclient_secret: {secret}\n(shown once: frontdesk keeps only a digest)"
    output(args, data, text)


def cmd_client_create(args: argparse.Namespace) -> None:
    fd = open_for(args)
    request = _requested(args)
    fields = {k: v for k, v in request.items() if k not in ("client_id", "secret")}
    try:
        # Scopes nobody defined are refused here rather than at every token request, where each one would fail.
        made = create_client(fd, CLI, fields, client_id=args.client_id, secret=args.secret)
    except AdminError as exc:
        raise _failed(exc) from None
    _shown(args, made.client.record, made.secret)


def cmd_client_list(args: argparse.Namespace) -> None:
    clients = [view.record for view in all_clients(open_for(args), CLI)]
    output(args, [_client_json(c) for c in clients], "\n".join(_list_line(c) for c in clients) or "no clients")


def cmd_client_show(args: argparse.Namespace) -> None:
    try:
        found = client(open_for(args), CLI, args.client_id).record
    except NotFound:
        raise CommandError(f"no client {args.client_id!r}") from None
    output(args, _client_json(found), _client_text(found))


def _changes(args: argparse.Namespace, current: ClientRecord) -> dict[str, Any]:
    """The fields ``client update`` was asked to change; what is not given stays as it was."""
    changes: dict[str, Any] = {}
    for flag, name in _REPLACED.items():
        value = getattr(args, flag)
        if value is not None:
            changes[name] = value
    if args.jwks:
        changes["jwks"] = _jwks_file(args.jwks)
    if args.clear_post_logout_redirect_uris:
        changes["post_logout_redirect_uris"] = []
    if args.post_logout_redirect_uri:
        changes["post_logout_redirect_uris"] = args.post_logout_redirect_uri
    if args.clear_backchannel_logout_uri:
        changes["backchannel_logout_uri"] = None
    if args.backchannel_logout_uri:
        changes["backchannel_logout_uri"] = args.backchannel_logout_uri
    if args.may_exchange_for or args.clear_may_exchange_for:
        changes["may_exchange_for"] = args.may_exchange_for or []
    mode, endpoint = args.backchannel_token_delivery_mode, args.backchannel_client_notification_endpoint
    if mode is not None or endpoint is not None:
        # CIBA Core 1.0 §4: ping's endpoint is kept when only the mode (ping again) is named, and dropped when the
        # mode becomes poll.
        mode = mode or current.backchannel_token_delivery_mode
        if endpoint is None and mode == "ping":
            endpoint = current.backchannel_client_notification_endpoint
        changes["backchannel_token_delivery_mode"] = mode
        changes["backchannel_client_notification_endpoint"] = endpoint
    return changes


# ``client update`` flags that replace a field with the value given.
_REPLACED = {
    "name": "name",
    "redirect_uri": "redirect_uris",
    "grant_type": "grant_types",
    "scope": "scope",
    "auth_method": "auth_method",
    "jwks_uri": "jwks_uri",
    "resource": "resources",
    "access_token_ttl": "access_token_ttl",
    "id_token_alg": "id_token_alg",
    "backchannel_logout_session_required": "backchannel_logout_session_required",
    "dpop_bound_access_tokens": "dpop_bound_access_tokens",
}


def cmd_client_update(args: argparse.Namespace) -> None:
    """Change any of a client's metadata (judged again as at registration); what is not given stays as it was."""
    fd = open_for(args)
    try:
        current = client(fd, CLI, args.client_id).record
        updated = update_client(fd, CLI, args.client_id, _changes(args, current))
    except NotFound:
        raise CommandError(f"no client {args.client_id!r}") from None
    except AdminError as exc:
        raise _failed(exc) from None
    _shown(args, updated.client.record, updated.secret)


def cmd_client_rotate_secret(args: argparse.Namespace) -> None:
    try:
        rotated = rotate_secret(open_for(args), CLI, args.client_id, overlap=args.overlap)
    except AdminError as exc:
        raise _failed(exc) from None
    until = rotated.previous_valid_until
    previous = (
        f"the previous secret works until {time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime(until))}"
        if until is not None
        else "the previous secret stopped working now"
    )
    output(
        args,
        {"client_id": args.client_id, "client_secret": rotated.secret, "previous_secret_valid_until": until},
        f"client_secret: {rotated.secret}\n(shown once: frontdesk keeps only a digest)\n{previous}",
    )


def cmd_client_delete(args: argparse.Namespace) -> None:
    try:
        delete_client(open_for(args), CLI, args.client_id)
    except NotFound:
        raise CommandError(f"no client {args.client_id!r}") from None
    output(args, {"deleted": args.client_id}, f"deleted client {args.client_id}")


def _logout_options(parser: argparse.ArgumentParser) -> None:
    """OpenID Connect RP-Initiated Logout 1.0 §3.1 and Back-Channel Logout 1.0 §2.2 client metadata."""
    parser.add_argument("--post-logout-redirect-uri", action="append", help="where /logout may send back (repeat)")
    parser.add_argument("--backchannel-logout-uri", help="where logout tokens are POSTed when a session ends")
    parser.add_argument(
        "--backchannel-logout-session-required",
        action=argparse.BooleanOptionalAction,
        help="the client needs sid in logout tokens (frontdesk always sends it)",
    )


def _exchange_option(parser: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup) -> None:
    """RFC 8693 token exchange policy (oauth/exchange_policy.py)."""
    parser.add_argument(
        "--may-exchange-for",
        action="append",
        metavar="URI",
        help="a registered resource this client may exchange a person's token for (repeat; replaces the list)",
    )


def _dpop_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dpop-bound-access-tokens",
        action=argparse.BooleanOptionalAction,
        help="refuse this client's token requests without a DPoP proof (RFC 9449 §5.2)",
    )


def _ciba_options(parser: argparse.ArgumentParser) -> None:
    """OpenID Connect CIBA Core 1.0 §4 client metadata (with --grant-type urn:openid:params:grant-type:ciba)."""
    parser.add_argument(
        "--backchannel-token-delivery-mode",
        choices=DELIVERY_MODES,
        help="CIBA: how the client learns a request was answered: it polls the token endpoint, or it is pinged",
    )
    parser.add_argument(
        "--backchannel-client-notification-endpoint", help="CIBA ping mode: the https URL notifications go to"
    )


def add_commands(sub: Any) -> None:
    clients = sub.add_parser("client", help="manage clients").add_subparsers(dest="action", required=True)
    create = command(clients, "create", cmd_client_create, "register a client")
    create.add_argument("--name", required=True)
    create.add_argument("--client-id")
    secret = create.add_mutually_exclusive_group()
    secret.add_argument("--secret", help="use this secret instead of a generated one")
    secret.add_argument("--public", action="store_true", help="a public client (PKCE, no secret)")
    create.add_argument("--redirect-uri", action="append", help="repeat for several")
    create.add_argument("--grant-type", action="append", help=f"{', '.join(GRANT_TYPES)} (repeat)")
    create.add_argument("--scope", help='space-separated scopes, e.g. "openid profile"')
    create.add_argument("--auth-method", choices=AUTH_METHODS, default="client_secret_basic")
    create.add_argument("--jwks", help="file holding the client's public JWK Set (private_key_jwt)")
    create.add_argument("--jwks-uri", help="https URL of the client's JWK Set (private_key_jwt)")
    create.add_argument(
        "--assertion-audience",
        choices=ASSERTION_AUDIENCES,
        default="issuer",
        help="private_key_jwt: the aud its assertions may carry, always one string; issuer (default) is the issuer "
        "identifier only; token-endpoint also accepts this server's token endpoint URL, for client libraries that "
        "send it (a relaxation: draft-ietf-oauth-rfc7523bis)",
    )
    create.add_argument("--resource", action="append", help="resource URI this client serves (introspection)")
    create.add_argument("--access-token-ttl", type=int, help="access token lifetime in seconds")
    create.add_argument("--id-token-alg", choices=("RS256", "ES256", "EdDSA"))
    _logout_options(create)
    _exchange_option(create)
    _ciba_options(create)
    _dpop_option(create)
    command(clients, "list", cmd_client_list, "list clients")
    show = command(clients, "show", cmd_client_show, "show one client")
    show.add_argument("client_id")
    update = command(clients, "update", cmd_client_update, "change a client's metadata (what is not given stays)")
    update.add_argument("client_id")
    update.add_argument("--name")
    update.add_argument("--redirect-uri", action="append", help="replaces the redirect URIs (repeat for several)")
    update.add_argument("--grant-type", action="append", help="replaces the grant types (repeat)")
    update.add_argument("--scope", help="replaces the scopes, space-separated")
    update.add_argument(
        "--auth-method", choices=AUTH_METHODS, help="a secret method gets a new secret (shown once) if it had none"
    )
    update.add_argument("--jwks", help="file holding the client's public JWK Set (private_key_jwt)")
    update.add_argument("--jwks-uri", help="https URL of the client's JWK Set (private_key_jwt)")
    update.add_argument("--resource", action="append", help="replaces the resource URIs it serves (repeat)")
    update.add_argument("--access-token-ttl", type=int, help="access token lifetime in seconds")
    update.add_argument("--id-token-alg", choices=("RS256", "ES256", "EdDSA"))
    _logout_options(update)
    _ciba_options(update)
    _dpop_option(update)
    exchange = update.add_mutually_exclusive_group()
    _exchange_option(exchange)
    exchange.add_argument("--clear-may-exchange-for", action="store_true", help="allow no token exchange")
    update.add_argument("--clear-post-logout-redirect-uris", action="store_true")
    update.add_argument("--clear-backchannel-logout-uri", action="store_true")
    rotate = command(clients, "rotate-secret", cmd_client_rotate_secret, "give a client a new secret (shown once)")
    rotate.add_argument("client_id")
    rotate.add_argument(
        "--overlap",
        type=int,
        default=DEFAULT_OVERLAP,
        metavar="SECONDS",
        help=f"how long the previous secret keeps working (default {DEFAULT_OVERLAP}, one day; 0: it stops now; at "
        f"most {MAX_OVERLAP})",
    )
    delete = command(clients, "delete", cmd_client_delete, "delete a client")
    delete.add_argument("client_id")
