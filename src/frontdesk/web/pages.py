"""Server-rendered pages: one Jinja2 environment with autoescaping, and the page response.

Pages carry no inline script or style. A page that needs the passkey script (``scripts=True``) gets a policy that
allows scripts from this origin only; every other page keeps the default of none at all (``SecurityHeaders``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

__all__ = ["ago", "page", "when"]

_env = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(default=True),
    auto_reload=False,
)

# No form-action: Chromium applies it to the redirects after a POST, and sign-in ends at the client's redirect URI.
_SCRIPT_CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def when(at: int | None) -> str:
    """A moment in plain words, in UTC (a page without script cannot know the reader's zone)."""
    if not at:
        return "never"
    moment = time.gmtime(at)
    return f"{moment.tm_mday} {time.strftime('%b %Y, %H:%M', moment)} UTC"


def iso(at: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def ago(at: int | None, now: int | None = None) -> str:
    """How long ago, roughly: "just now", "5 minutes ago", "3 days ago"."""
    if not at:
        return "never"
    seconds = max(0, (now if now is not None else int(time.time())) - at)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    return "just now"


_env.filters.update(when=when, iso=iso, ago=ago)


def page(template: str, status: int = 200, *, scripts: bool = False, **context: Any) -> HTMLResponse:
    html = _env.get_template(template).render(scripts=scripts, **context)
    headers = {"Cache-Control": "no-store"}
    if scripts:
        headers["Content-Security-Policy"] = _SCRIPT_CSP
    return HTMLResponse(html, status_code=status, headers=headers)
