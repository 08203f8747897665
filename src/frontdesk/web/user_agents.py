"""A user agent string in a few words a person recognises ("Firefox 128 on Windows"), for the list of browsers."""

from __future__ import annotations

import re

__all__ = ["summarize"]

# Order matters: Edge and Opera also say Chrome, Chrome also says Safari.
_BROWSERS = (
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("HeadlessChrome/", "Chrome (headless)"),
    ("CriOS/", "Chrome"),
    ("Chrome/", "Chrome"),
    ("Version/", "Safari"),
)
_SYSTEMS = (
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
)


def summarize(user_agent: str | None) -> str:
    if not user_agent or not user_agent.strip():
        return "Unknown browser"
    browser = None
    for marker, name in _BROWSERS:
        match = re.search(re.escape(marker) + r"(\d+)", user_agent)
        if match and (marker != "Version/" or "Safari/" in user_agent):
            browser = f"{name} {match.group(1)}"
            break
    if browser is None:
        # A program rather than a browser ("python-httpx/0.27", "curl/8.5"): its own name, without the version.
        browser = user_agent.split("/", 1)[0].split()[0][:40]
    system = next((name for marker, name in _SYSTEMS if marker in user_agent), None)
    return f"{browser} on {system}" if system else browser
