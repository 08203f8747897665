"""The ``frontdesk`` command line: a stable, scriptable interface. ``--json`` prints machine-readable output;
errors go to stderr with a non-zero exit status."""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import logging
import os
import secrets
import signal
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from .config import ConfigError, ServerLimits, Settings, load_settings
from .core import Frontdesk, ScopeError, open_frontdesk
from .logs import configure_logging
from .secret import Secret
from .storage import audit
from .storage.clients import ASSERTION_AUDIENCES, AUTH_METHODS, ClientError, ClientRecord, UnknownScope
from .storage.people import UserError
from .storage.purge import purge_expired
from .upstream import add_provider, callback_url, list_providers, remove_provider
from .upstream.providers import TOKEN_AUTH_METHODS
from .vault import cli as vault_cli
from .web.demo import DemoClient

__all__ = ["main"]


class CommandError(Exception):
    """A failure the operator can fix; printed without a traceback."""


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print(text)


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("host", "port", "issuer", "workers", "log_level"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    server = {name: getattr(args, name, None) for name in ServerLimits.__dataclass_fields__}
    if any(value is not None for value in server.values()):
        overrides["server"] = server
    # --host or --port without an issuer anywhere: the issuer is where this process listens. An issuer the operator
    # set (flag, environment or config file) is never replaced by one made up from them.
    if ("host" in overrides or "port" in overrides) and not _issuer_set(args):
        host = overrides.get("host", "127.0.0.1")
        shown = f"[{host}]" if ":" in host else host
        overrides["issuer"] = f"http://{shown}:{overrides.get('port', 8000)}"
    return load_settings(getattr(args, "config", None), **overrides)


def _issuer_set(args: argparse.Namespace) -> bool:
    """Whether the operator chose the issuer (--issuer, FRONTDESK_ISSUER or the config file's ``issuer``), rather
    than leaving the default that ``serve`` replaces when given --host or --port."""
    if getattr(args, "issuer", None) or os.environ.get("FRONTDESK_ISSUER"):
        return True
    path: str | None = getattr(args, "config", None) or os.environ.get("FRONTDESK_CONFIG")
    # Read once already by load_settings, which refused it if it was not valid TOML.
    return bool(path) and "issuer" in tomllib.loads(Path(str(path)).read_text())


def redirect_uri(args: argparse.Namespace, fd: Frontdesk, uri: str) -> tuple[str | None, str]:
    """``uri`` (under this issuer) as the redirect URI to register at a provider, with the line that tells the
    operator; None when no issuer is set: ``serve`` then takes its issuer from its own --host and --port, which
    this command cannot know, so a URI printed now could be wrong."""
    if _issuer_set(args):
        return uri, f"register this redirect URI at the provider: {uri}"
    path = uri.removeprefix(fd.issuer)
    return None, (
        "no issuer is set, so the redirect URI is not known yet: `frontdesk serve` uses "
        f"{fd.issuer} only when it runs without --issuer, --host or --port. Set FRONTDESK_ISSUER (or issuer in the "
        f"config file) to the URL people reach frontdesk at, then register ISSUER{path} at the provider"
    )


def _open(args: argparse.Namespace) -> Frontdesk:
    settings = _settings(args)
    # Management commands speak through their output; logs only for warnings unless asked for.
    configure_logging(os.environ.get("FRONTDESK_LOG_LEVEL", "WARNING"))
    return open_frontdesk(settings)


# --- serve -----------------------------------------------------------------------------------------------------


def _demo(fd: Frontdesk) -> tuple[DemoClient, str, str]:
    """A demo person and a public PKCE client, recreated at every start so their credentials can be shown.
    Returns the client, the person's password and a ready-to-open authorization URL."""
    fd.users.delete("demo")
    password = secrets.token_urlsafe(12)
    fd.users.create("demo", password, email="demo@example.com", name="Demo Person")
    fd.clients.delete("demo-app")
    # RFC 8252 §7.3: a loopback redirect URI registered without a port matches any port, this server's included.
    client, _ = fd.clients.create(
        name="Demo app",
        client_id="demo-app",
        auth_method="none",
        redirect_uris=["http://127.0.0.1/demo/callback"],
        grant_types=["authorization_code", "refresh_token"],
        scope="openid profile email offline_access",
    )
    port = urlsplit(fd.issuer).port or 80
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    demo = DemoClient(client.client_id, f"http://127.0.0.1:{port}/demo/callback", verifier, fd.url("/token"))
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": demo.redirect_uri,
            "scope": "openid profile email offline_access",
            "state": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    return demo, password, fd.url(f"/authorize?{query}")


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from .server import http_protocol, within_descriptor_limit

    # SIGTERM is how service managers stop a server: a clean stop, exit status 0. uvicorn answers it with a graceful
    # shutdown, then raises it again under the handler it found; with the default one a single-worker server died
    # of the signal (status -15) where a multi-worker one (its supervisor keeps the signal) exited 0. This handler
    # ends the process with 0, there and during start-up alike.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    settings = _settings(args)
    configure_logging(settings.log_level)
    fd = open_frontdesk(settings)
    demo: DemoClient | None = None
    if args.demo:
        if settings.workers > 1:
            raise CommandError("--demo runs with one worker")
        demo, password, url = _demo(fd)
        print(
            "\nfrontdesk demo\n"
            f"  person:   demo / {password}\n"
            f"  client:   {demo.client_id} (public, PKCE)\n"
            f"  open:     {url}\n"
            "  sign in, allow, and the demo page shows the code and the curl command that exchanges it\n",
            flush=True,
        )
    print(f"frontdesk serving {settings.issuer} on {settings.host}:{settings.port}", file=sys.stderr, flush=True)
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "proxy_headers": False,
        "server_header": False,
        # uvicorn formats each access line before the logger drops it; below INFO there is no line to format.
        "access_log": logging.getLogger("uvicorn.access").isEnabledFor(logging.INFO),
        "http": http_protocol(within_descriptor_limit(settings.server)),
        # After SIGTERM, requests still running (or still receiving their body) get this long; then they are
        # cancelled and the process exits.
        "timeout_graceful_shutdown": settings.server.shutdown_timeout,
    }
    if settings.workers > 1:
        # Workers re-read settings from the environment; make the command line's choices visible to them.
        os.environ.update(
            {
                "FRONTDESK_ISSUER": settings.issuer,
                "FRONTDESK_HOME": str(settings.home),
                "FRONTDESK_LOG_LEVEL": settings.log_level,
            }
        )
        if settings.database_url:
            os.environ["FRONTDESK_DATABASE_URL"] = settings.database_url
        uvicorn.run("frontdesk.asgi:app", factory=True, workers=settings.workers, **common)
    else:
        from .asgi import served

        uvicorn.run(served(fd, demo), **common)


def cmd_migrate(args: argparse.Namespace) -> None:
    fd = _open(args)
    _print(
        args,
        {"database": fd.engine.url.render_as_string(hide_password=True), "status": "up to date"},
        "database schema is up to date",
    )


# --- clients ---------------------------------------------------------------------------------------------------


def _client_text(c: ClientRecord) -> str:
    return "\n".join(
        [
            f"client_id:    {c.client_id}",
            f"name:         {c.name}",
            f"auth method:  {c.auth_method}",
            f"grant types:  {' '.join(c.grant_types)}",
            f"scope:        {' '.join(c.scope)}",
            f"redirect URIs: {' '.join(c.redirect_uris) or '-'}",
        ]
    )


def cmd_client_create(args: argparse.Namespace) -> None:
    fd = _open(args)
    method = "none" if args.public else args.auth_method
    jwks = None
    if args.jwks:
        try:
            jwks = json.loads(Path(args.jwks).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CommandError(f"cannot read a JWK Set from {args.jwks}: {exc}") from None
    try:
        client, secret = fd.clients.create(
            name=args.name,
            client_id=args.client_id,
            secret=args.secret,
            auth_method=method,
            redirect_uris=args.redirect_uri or [],
            grant_types=args.grant_type,
            scope=args.scope,
            jwks=jwks,
            jwks_uri=args.jwks_uri,
            resources=args.resource,
            access_token_ttl=args.access_token_ttl,
            id_token_alg=args.id_token_alg,
            post_logout_redirect_uris=args.post_logout_redirect_uri or [],
            backchannel_logout_uri=args.backchannel_logout_uri,
            backchannel_logout_session_required=bool(args.backchannel_logout_session_required),
            assertion_audience=args.assertion_audience,
            # Refused here rather than at every token request, where a scope nobody defined makes each one fail.
            known_scopes=fd.scopes(fresh=True),
        )
    except UnknownScope as exc:
        first = exc.scopes[0]
        raise CommandError(
            f"{exc.error}: {exc}; define {'them' if len(exc.scopes) > 1 else 'it'} first, e.g. "
            f'frontdesk scope create {first} --description "what {first} lets an app do, in plain words"'
        ) from None
    except ClientError as exc:
        raise CommandError(f"{exc.error}: {exc}") from None
    data = client.metadata()
    if secret is not None:
        data["client_secret"] = secret
    text = _client_text(client)
    if secret is not None:
        text += f"\nclient_secret: {secret}\n(shown once: frontdesk keeps only a digest)"
    _print(args, data, text)


def cmd_client_list(args: argparse.Namespace) -> None:
    clients = _open(args).clients.list()
    _print(
        args,
        [c.metadata() for c in clients],
        "\n".join(f"{c.client_id}\t{c.auth_method}\t{c.name}" for c in clients) or "no clients",
    )


def cmd_client_show(args: argparse.Namespace) -> None:
    client = _open(args).clients.get(args.client_id, cached=False)
    if client is None:
        raise CommandError(f"no client {args.client_id!r}")
    _print(args, client.metadata(), _client_text(client))


def cmd_client_update(args: argparse.Namespace) -> None:
    """Change a client's sign-out metadata; what is not given stays as it was."""
    fd = _open(args)
    client = fd.clients.get(args.client_id, cached=False)
    if client is None:
        raise CommandError(f"no client {args.client_id!r}")
    post_logout = list(client.post_logout_redirect_uris)
    if args.clear_post_logout_redirect_uris:
        post_logout = []
    if args.post_logout_redirect_uri:
        post_logout = args.post_logout_redirect_uri
    backchannel = None if args.clear_backchannel_logout_uri else client.backchannel_logout_uri
    session_required = args.backchannel_logout_session_required
    try:
        updated = fd.clients.set_logout(
            client.client_id,
            post_logout_redirect_uris=post_logout,
            backchannel_logout_uri=args.backchannel_logout_uri or backchannel,
            backchannel_logout_session_required=(
                client.backchannel_logout_session_required if session_required is None else session_required
            ),
        )
    except ClientError as exc:
        raise CommandError(f"{exc.error}: {exc}") from None
    if updated is None:
        raise CommandError(f"no client {args.client_id!r}")
    _print(args, updated.metadata(), _client_text(updated))


def cmd_client_delete(args: argparse.Namespace) -> None:
    if not _open(args).clients.delete(args.client_id):
        raise CommandError(f"no client {args.client_id!r}")
    _print(args, {"deleted": args.client_id}, f"deleted client {args.client_id}")


# --- upstream providers ---------------------------------------------------------------------------------------


def cmd_upstream_add(args: argparse.Namespace) -> None:
    fd = _open(args)
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
    _print(
        args,
        {**provider.public(), "redirect_uri": uri, "redirect_uri_note": note},
        f"added {provider.display_name} ({provider.kind}); the sign-in page now offers "
        f'"Continue with {provider.display_name}"\nscopes asked for: {" ".join(provider.scope) or "none"}\n{note}',
    )


def cmd_upstream_list(args: argparse.Namespace) -> None:
    providers = list_providers(_open(args))
    _print(
        args,
        [p.public() for p in providers],
        "\n".join(f"{p.name}\t{p.kind}\t{p.display_name}\t{p.issuer or p.authorization_endpoint}" for p in providers)
        or "no upstream providers",
    )


def cmd_upstream_delete(args: argparse.Namespace) -> None:
    if not remove_provider(_open(args), args.name):
        raise CommandError(f"no upstream provider {args.name!r}")
    _print(args, {"deleted": args.name}, f"deleted upstream provider {args.name}")


# --- users, scopes, keys, audit ----------------------------------------------------------------------------------


def cmd_user_create(args: argparse.Namespace) -> None:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif args.password is not None:
        password = args.password
    else:
        raise CommandError("give --password-stdin or --password")
    try:
        user = _open(args).users.create(args.username, password, email=args.email, name=args.name)
    except UserError as exc:
        raise CommandError(str(exc)) from None
    _print(
        args,
        {"id": user.id, "username": user.username, "email": user.email, "name": user.name},
        f"created user {user.username} (sub {user.id})",
    )


def cmd_user_list(args: argparse.Namespace) -> None:
    users = _open(args).users.list()
    _print(
        args,
        [{"id": u.id, "username": u.username, "email": u.email, "name": u.name} for u in users],
        "\n".join(f"{u.username}\t{u.id}\t{u.email or ''}" for u in users) or "no users",
    )


def cmd_user_delete(args: argparse.Namespace) -> None:
    if not _open(args).users.delete(args.username):
        raise CommandError(f"no user {args.username!r}")
    _print(args, {"deleted": args.username}, f"deleted user {args.username}")


def cmd_scope_create(args: argparse.Namespace) -> None:
    try:
        _open(args).create_scope(args.name, args.description)
    except ScopeError as exc:
        raise CommandError(str(exc)) from None
    _print(args, {"name": args.name, "description": args.description}, f"created scope {args.name}")


def cmd_scope_list(args: argparse.Namespace) -> None:
    scopes = _open(args).scopes()
    _print(
        args,
        [{"name": k, "description": v} for k, v in sorted(scopes.items())],
        "\n".join(f"{k}\t{v}" for k, v in sorted(scopes.items())),
    )


def cmd_keys_list(args: argparse.Namespace) -> None:
    keys = _open(args).keys.list()
    rows = [
        {
            "kid": k.kid,
            "alg": k.alg,
            "state": k.state,
            "created_at": k.created_at,
            "publish_until": k.publish_until,
        }
        for k in keys
    ]
    _print(args, rows, "\n".join(f"{k.kid}\t{k.alg}\t{k.state}" for k in keys))


def cmd_keys_rotate(args: argparse.Namespace) -> None:
    fd = _open(args)
    fd.keys.rotate()
    keys = [k for k in fd.keys.list() if k.state != "retired" or (k.publish_until or 0) > time.time()]
    _print(
        args,
        [{"kid": k.kid, "alg": k.alg, "state": k.state} for k in keys],
        "rotated: next keys are now active; new next keys are published\n"
        + "\n".join(f"{k.kid}\t{k.alg}\t{k.state}" for k in keys),
    )


def cmd_purge(args: argparse.Namespace) -> None:
    counts = purge_expired(_open(args).engine, int(time.time()))
    _print(args, counts, "\n".join(f"{table}\t{n}" for table, n in counts.items()))


def cmd_audit_tail(args: argparse.Namespace) -> None:
    events = audit.tail(_open(args).engine, args.n)
    _print(
        args,
        [e.as_dict() for e in events],
        "\n".join(
            f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(e.at))} {e.event} {e.outcome} "
            f"client={e.client_id or '-'} user={e.user_id or '-'} ip={e.ip or '-'} {json.dumps(e.detail)}"
            for e in events
        )
        or "no events",
    )


# --- parser ----------------------------------------------------------------------------------------------------


def _logout_options(parser: argparse.ArgumentParser) -> None:
    """OpenID Connect RP-Initiated Logout 1.0 §3.1 and Back-Channel Logout 1.0 §2.2 client metadata."""
    parser.add_argument("--post-logout-redirect-uri", action="append", help="where /logout may send back (repeat)")
    parser.add_argument("--backchannel-logout-uri", help="where logout tokens are POSTed when a session ends")
    parser.add_argument(
        "--backchannel-logout-session-required",
        action=argparse.BooleanOptionalAction,
        help="the client needs sid in logout tokens (frontdesk always sends it)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frontdesk", description="OAuth 2.1 + OpenID Connect authorization server")
    parser.add_argument("--config", help="TOML configuration file (or FRONTDESK_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(
        parent: Any, name: str, fn: Callable[[argparse.Namespace], None], help: str, json_flag: bool = True
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=help, description=help)
        p.set_defaults(fn=fn)
        if json_flag:
            p.add_argument("--json", action="store_true", help="machine-readable output")
        return p

    serve = command(sub, "serve", cmd_serve, "apply migrations, create keys on first start, and serve", False)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--issuer", help="issuer URL (default http://HOST:PORT)")
    serve.add_argument("--workers", type=int)
    serve.add_argument("--log-level", dest="log_level")
    serve.add_argument("--demo", action="store_true", help="create a demo person and client and print them")
    serve.add_argument("--header-timeout", type=int, help="seconds a client has to send a request's headers")
    serve.add_argument("--body-timeout", type=int, help="seconds a client has to send a request's body")
    serve.add_argument("--max-connections", type=int, help="open connections per worker; more are refused")
    serve.add_argument("--shutdown-timeout", type=int, help="seconds requests get to finish after SIGTERM")

    command(sub, "migrate", cmd_migrate, "bring the database schema up to date")

    clients = sub.add_parser("client", help="manage clients").add_subparsers(dest="action", required=True)
    create = command(clients, "create", cmd_client_create, "register a client")
    create.add_argument("--name", required=True)
    create.add_argument("--client-id")
    secret = create.add_mutually_exclusive_group()
    secret.add_argument("--secret", help="use this secret instead of a generated one")
    secret.add_argument("--public", action="store_true", help="a public client (PKCE, no secret)")
    create.add_argument("--redirect-uri", action="append", help="repeat for several")
    create.add_argument(
        "--grant-type",
        action="append",
        help="authorization_code, refresh_token, client_credentials, "
        "urn:ietf:params:oauth:grant-type:device_code (repeat)",
    )
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
    command(clients, "list", cmd_client_list, "list clients")
    show = command(clients, "show", cmd_client_show, "show one client")
    show.add_argument("client_id")
    update = command(clients, "update", cmd_client_update, "change a client's sign-out metadata")
    update.add_argument("client_id")
    _logout_options(update)
    update.add_argument("--clear-post-logout-redirect-uris", action="store_true")
    update.add_argument("--clear-backchannel-logout-uri", action="store_true")
    delete = command(clients, "delete", cmd_client_delete, "delete a client")
    delete.add_argument("client_id")

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

    users = sub.add_parser("user", help="manage people").add_subparsers(dest="action", required=True)
    ucreate = command(users, "create", cmd_user_create, "create a person who can sign in")
    ucreate.add_argument("--username", required=True)
    ucreate.add_argument("--email")
    ucreate.add_argument("--name")
    pw = ucreate.add_mutually_exclusive_group()
    pw.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    pw.add_argument("--password", help="the password (visible to other local users: prefer --password-stdin)")
    command(users, "list", cmd_user_list, "list people")
    udelete = command(users, "delete", cmd_user_delete, "delete a person")
    udelete.add_argument("username")

    scopes = sub.add_parser("scope", help="manage scopes").add_subparsers(dest="action", required=True)
    screate = command(scopes, "create", cmd_scope_create, "define a scope")
    screate.add_argument("name")
    screate.add_argument("--description", required=True, help="plain words shown on the consent screen")
    command(scopes, "list", cmd_scope_list, "list scopes")

    keys = sub.add_parser("keys", help="signing keys").add_subparsers(dest="action", required=True)
    command(keys, "list", cmd_keys_list, "list signing keys")
    command(keys, "rotate", cmd_keys_rotate, "promote the next keys and publish new next keys")
    vault_cli.add_key_commands(keys, command, _open, _print)
    vault_cli.add_commands(sub, command, _open, _print, redirect_uri)

    command(sub, "purge", cmd_purge, "delete expired codes, tokens, sessions and other artefacts now")

    audits = sub.add_parser("audit", help="the audit log").add_subparsers(dest="action", required=True)
    tail = command(audits, "tail", cmd_audit_tail, "show the latest audit events")
    tail.add_argument("-n", type=int, default=50)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        args.fn(args)
    except (CommandError, ConfigError, ValueError) as exc:
        print(f"frontdesk: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
