"""What every command shares: settings from the command line, the opened server, output (``--json`` or text) and
the error an operator can fix."""

from __future__ import annotations

import argparse
import json
import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..asgi import open_frontdesk
from ..config import ServerLimits, Settings, load_settings
from ..core import Frontdesk
from ..logs import configure_logging

__all__ = ["CommandError", "command", "issuer_set", "open_for", "output", "redirect_uri", "settings_of"]


class CommandError(Exception):
    """A failure the operator can fix; printed without a traceback."""


def output(args: argparse.Namespace, data: Any, text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print(text)


def command(
    parent: Any, name: str, fn: Callable[[argparse.Namespace], None], help: str, json_flag: bool = True
) -> argparse.ArgumentParser:
    """A subcommand of ``parent`` that runs ``fn``, with ``--json`` unless it prints no result."""
    p: argparse.ArgumentParser = parent.add_parser(name, help=help, description=help)
    p.set_defaults(fn=fn)
    if json_flag:
        p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def settings_of(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("host", "port", "issuer", "workers", "log_level", "log_format"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    server = {name: getattr(args, name, None) for name in ServerLimits.__dataclass_fields__}
    if any(value is not None for value in server.values()):
        overrides["server"] = server
    # --host or --port without an issuer anywhere: the issuer is where this process listens. An issuer the operator
    # set (flag, environment or config file) is never replaced by one made up from them.
    if ("host" in overrides or "port" in overrides) and not issuer_set(args):
        host = overrides.get("host", "127.0.0.1")
        shown = f"[{host}]" if ":" in host else host
        overrides["issuer"] = f"http://{shown}:{overrides.get('port', 8000)}"
    return load_settings(getattr(args, "config", None), **overrides)


def issuer_set(args: argparse.Namespace) -> bool:
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
    if issuer_set(args):
        return uri, f"register this redirect URI at the provider: {uri}"
    path = uri.removeprefix(fd.issuer)
    return None, (
        "no issuer is set, so the redirect URI is not known yet: `frontdesk serve` uses "
        f"{fd.issuer} only when it runs without --issuer, --host or --port. Set FRONTDESK_ISSUER (or issuer in the "
        f"config file) to the URL people reach frontdesk at, then register ISSUER{path} at the provider"
    )


def open_for(args: argparse.Namespace) -> Frontdesk:
    settings = settings_of(args)
    # Management commands speak through their output; logs only for warnings unless asked for.
    configure_logging(os.environ.get("FRONTDESK_LOG_LEVEL", "WARNING"))
    return open_frontdesk(settings)
