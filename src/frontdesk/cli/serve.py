"""``frontdesk serve`` (with its ``--demo``) and ``frontdesk migrate``: bringing the database and the server up."""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import secrets
import signal
import sys
from typing import Any
from urllib.parse import urlencode, urlsplit

from .. import metrics
from ..asgi import open_frontdesk
from ..config import LOG_FORMATS, Settings
from ..core import Frontdesk
from ..log_text import folded_migrations, wants_text
from ..logs import configure_logging
from ..oauth.registration import register
from ..web.demo import DemoClient
from .context import CommandError, command, open_for, output, settings_of

__all__ = ["add_commands", "cmd_migrate", "cmd_serve"]


def _demo(fd: Frontdesk) -> tuple[DemoClient, str, str]:
    """A demo person and a public PKCE client, recreated at every start so their credentials can be shown.
    Returns the client, the person's password and a ready-to-open authorization URL."""
    fd.users.delete("demo")
    password = secrets.token_urlsafe(12)
    fd.users.create("demo", password, email="demo@example.com", name="Demo Person")
    fd.clients.delete("demo-app")
    # RFC 8252 §7.3: a loopback redirect URI registered without a port matches any port, this server's included.
    client, _ = register(
        fd,
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

    from ..server import http_protocol, within_descriptor_limit

    # SIGTERM is how service managers stop a server: a clean stop, exit status 0. uvicorn answers it with a graceful
    # shutdown, then raises it again under the handler it found; with the default one a single-worker server died
    # of the signal (status -15) where a multi-worker one (its supervisor keeps the signal) exited 0. This handler
    # ends the process with 0, there and during start-up alike.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    settings = settings_of(args)
    configure_logging(settings.log_level, settings.log_format)
    with folded_migrations():
        fd = open_frontdesk(settings)
    _serve_metrics(settings)
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
    if wants_text(settings.log_format, sys.stderr):  # in JSON, uvicorn's folded start-up line says the same
        print(f"frontdesk serving {settings.issuer} on {settings.host}:{settings.port}", file=sys.stderr, flush=True)
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "proxy_headers": False,
        "server_header": False,
        # The access line is frontdesk's own (asgi.py, logs.py): one rendered line carrying the audit event.
        "access_log": False,
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
                "FRONTDESK_LOG_FORMAT": settings.log_format,
            }
        )
        if args.config:  # [metrics] and the rest of the file, for the workers too
            os.environ["FRONTDESK_CONFIG"] = str(args.config)
        if settings.database_url:
            os.environ["FRONTDESK_DATABASE_URL"] = settings.database_url
        uvicorn.run("frontdesk.asgi:app", factory=True, workers=settings.workers, **common)
    else:
        from ..asgi import served

        uvicorn.run(served(fd, demo), **common)


def _serve_metrics(settings: Settings) -> None:
    """With ``[metrics]`` on: several workers count into files under the home (metrics.py), and ``listen`` gets a
    listener of its own in this process (the parent of the workers, or the one worker)."""
    if not settings.metrics.enabled:
        return
    if settings.workers > 1:
        metrics.prepare_workers(settings.home)
    if settings.metrics.listen:
        metrics.serve_listener(settings.metrics)


def cmd_migrate(args: argparse.Namespace) -> None:
    with folded_migrations():
        fd = open_for(args)
    output(
        args,
        {"database": fd.engine.url.render_as_string(hide_password=True), "status": "up to date"},
        "database schema is up to date",
    )


def add_commands(sub: Any) -> None:
    serve = command(sub, "serve", cmd_serve, "apply migrations, create keys on first start, and serve", False)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--issuer", help="issuer URL (default http://HOST:PORT)")
    serve.add_argument("--workers", type=int)
    serve.add_argument("--log-level", dest="log_level")
    serve.add_argument(
        "--log-format", choices=LOG_FORMATS, help="text for people or JSON lines (default: text on a terminal)"
    )
    serve.add_argument("--demo", action="store_true", help="create a demo person and client and print them")
    serve.add_argument("--header-timeout", type=int, help="seconds a client has to send a request's headers")
    serve.add_argument("--body-timeout", type=int, help="seconds a client has to send a request's body")
    serve.add_argument("--keepalive-timeout", type=int, help="seconds an idle connection stays open after a response")
    serve.add_argument("--max-connections", type=int, help="open connections per worker; more are refused")
    serve.add_argument("--shutdown-timeout", type=int, help="seconds requests get to finish after SIGTERM")

    command(sub, "migrate", cmd_migrate, "bring the database schema up to date")
