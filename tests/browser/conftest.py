"""Browser-test fixtures: frontdesk served as a separate process (``python -m frontdesk serve``) on a fresh home,
set up through its own CLI; a small local HTTP server standing in for the client's redirect URI and for a page
of another origin; and Debian's headless Chromium driven through Playwright's sync API."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from conftest import _backends
from inbox import Mailbox, mailbox_at
from servers import Server, loopback, serving

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STEP_TIMEOUT_MS = 10_000  # any single browser action or navigation

CALENDAR_READ = "See your calendar events — not change or delete them"
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module", params=_backends())
def frontdesk(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """frontdesk in its own process on a fresh database (SQLite, and PostgreSQL when configured)."""
    with serving(request.param, tmp_path_factory.mktemp("frontdesk")) as server:
        yield server


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd on loopback) for the module's served frontdesk."""
    with mailbox_at() as box:
        yield box


@pytest.fixture(scope="module", params=_backends())
def mailing_frontdesk(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, mailbox: Mailbox
) -> Iterator[Server]:
    """frontdesk in its own process, mailing through ``mailbox`` (set as an operator would: by environment, which
    keeps the SMTP URL out of the file)."""
    env = {"FRONTDESK_EMAIL_SMTP_URL": mailbox.url, "FRONTDESK_EMAIL_FROM_ADDRESS": "frontdesk@example.test"}
    with serving(request.param, tmp_path_factory.mktemp("frontdesk"), env=env) as server:
        yield server


@pytest.fixture(scope="module")
def calendar_scope(frontdesk: Server) -> str:
    frontdesk.cli("scope", "create", "calendar.read", "--description", CALENDAR_READ)
    return "calendar.read"


@pytest.fixture(scope="module")
def web_client(frontdesk: Server, calendar_scope: str) -> dict[str, Any]:
    """A public PKCE client whose loopback redirect URI accepts any port (RFC 8252 §7.3)."""
    return frontdesk.cli(
        "client",
        "create",
        "--name",
        "Calendar Helper",
        "--public",
        "--redirect-uri",
        "http://127.0.0.1/cb",
        "--grant-type",
        "authorization_code",
        "--scope",
        f"openid profile {calendar_scope}",
    )


@pytest.fixture(scope="module")
def device_client(frontdesk: Server, calendar_scope: str) -> dict[str, Any]:
    """A public client allowed the device authorization grant (RFC 8628)."""
    return frontdesk.cli(
        "client",
        "create",
        "--name",
        "Living Room TV",
        "--public",
        "--grant-type",
        DEVICE_CODE,
        "--scope",
        f"openid profile {calendar_scope}",
    )


@dataclass(frozen=True)
class Account:
    username: str
    password: str


@pytest.fixture
def account(frontdesk: Server) -> Account:
    """A fresh person for each test, so no consent or session carries over between tests."""
    username = "person-" + secrets.token_hex(4)
    password = secrets.token_urlsafe(16)
    frontdesk.cli("user", "create", "--username", username, "--name", "Pat Example", "--password-stdin", stdin=password)
    return Account(username, password)


@dataclass
class Site:
    """A local web site on another port: the client's redirect URI (``/cb``) and any page a test registers."""

    port: int
    pages: dict[str, str] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    state = Site(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits.append(self.path)
            path = self.path.split("?", 1)[0]
            if path == "/cb":
                body = "<!doctype html><title>Back at the app</title><h1>Back at the app</h1>"
            elif path in state.pages:
                body = state.pages[path]
            else:
                self.send_error(404)
                return
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with loopback(Handler) as port:
        state.port = port
        yield state


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install -y chromium); it is missing",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True, timeout=30_000
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    """A page in a fresh browser context: no cookies from other tests."""
    context = chromium.new_context(viewport={"width": 800, "height": 640}, locale="en-US")
    context.set_default_timeout(STEP_TIMEOUT_MS)
    context.set_default_navigation_timeout(STEP_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where pages are photographed for a person to look at (FRONTDESK_SCREENSHOTS, else a pytest tmp dir)."""
    chosen = os.environ.get("FRONTDESK_SCREENSHOTS")
    if chosen:
        path = Path(chosen)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("screenshots")
