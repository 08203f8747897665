"""The ASGI entry point for ``frontdesk serve --workers N``: each worker opens frontdesk from the environment.

Migrations and key creation already ran in the parent process, so workers start without racing on them.
"""

from __future__ import annotations

from starlette.applications import Starlette

from .config import load_settings
from .core import open_frontdesk
from .logs import configure_logging
from .web import create_app

__all__ = ["app"]


def app() -> Starlette:
    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(open_frontdesk(settings, run_migrations=False, ensure_keys=False))
