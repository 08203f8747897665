"""Cookies and files (issue 11, item 10): under an https issuer every cookie is ``__Host-`` (Secure, Path=/, no
Domain); the embedded home is 0700 and the database, its -wal and -shm files and the key files in it are 0600."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from conftest import MASTER_KEY, Browser, Registered, code_for
from frontdesk.asgi import open_frontdesk
from frontdesk.config import Settings
from frontdesk.core import Frontdesk
from frontdesk.web import cookies
from test_authorize import params_for


def _set_cookies(response: Response | httpx.Response) -> list[str]:
    if isinstance(response, httpx.Response):
        return response.headers.get_list("set-cookie")
    return [value.decode() for name, value in response.raw_headers if name == b"set-cookie"]


def _host_only_problems(cookie: str) -> list[str]:
    """Why ``cookie`` (a Set-Cookie value) is not a valid ``__Host-`` cookie; empty when it is."""
    name = cookie.split("=", 1)[0]
    attributes = [a.strip().lower() for a in cookie.split(";")[1:]]
    problems = []
    if not name.startswith("__Host-"):
        problems.append(f"{name} has no __Host- prefix")
    if "secure" not in attributes:
        problems.append(f"{name} is not Secure")
    if "path=/" not in attributes:
        problems.append(f"{name} is not Path=/")
    if any(a.startswith("domain=") for a in attributes):
        problems.append(f"{name} names a Domain")
    return problems


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, so that a file made without an explicit mode would be 0644."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- cookies ------------------------------------------------------------------------------------------------------


async def test_sign_in_cookies_are_host_prefixed(http: httpx.AsyncClient, browser: Browser, confidential: Registered):
    """The interaction binding and the session cookie a sign-in sets are __Host- cookies: Secure, Path=/, no
    Domain, so no sibling host can plant one."""
    seen: list[str] = []

    async def keep(response: httpx.Response) -> None:
        seen.extend(_set_cookies(response))

    http.event_hooks["response"].append(keep)
    await code_for(browser, confidential)
    names = {c.split("=", 1)[0] for c in seen}
    assert "__Host-fd_session" in names, names
    assert any(name.startswith("__Host-fd_ix_") for name in names), names
    assert [p for cookie in seen for p in _host_only_problems(cookie)] == []


async def test_two_interactions_in_one_browser_both_complete(
    http: httpx.AsyncClient, browser: Browser, confidential: Registered
):
    """Each interaction has a binding cookie of its own: starting a second one leaves the first usable."""
    first = await http.get("/authorize", params=params_for(confidential))
    second = await http.get("/authorize", params=params_for(confidential))
    assert first.headers["location"] != second.headers["location"]
    for started in (first, second):
        page = await http.get(started.headers["location"])
        assert page.status_code == 200, page.text
        assert 'name="password"' in page.text


def test_every_cookie_frontdesk_sets_is_host_prefixed(fd: Frontdesk):
    """Session, interaction and upstream cookies, set and cleared, are all __Host- under an https issuer."""
    response = Response()
    cookies.set_session(response, fd, "session-value")
    cookies.clear_session(response, fd)
    cookies.set_interaction(response, fd, "ix-id_1", "binding")
    cookies.set_upstream(response, fd, "browser")
    cookies.clear_upstream(response, fd)
    set_cookies = _set_cookies(response)
    assert len(set_cookies) == 5
    assert [p for cookie in set_cookies for p in _host_only_problems(cookie)] == []


def test_the_binding_is_read_for_the_interaction_in_the_path(fd: Frontdesk):
    """A request under /interaction/{ix} reads that interaction's cookie, not another one's."""

    app = Starlette()
    app.state.fd = fd
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/interaction/B/login",
        "headers": [(b"cookie", b"__Host-fd_ix_A=for-a; __Host-fd_ix_B=for-b")],
        "path_params": {"ix": "B"},
        "app": app,
    }
    assert cookies.interaction_binding(Request(scope)) == "for-b"


# --- files --------------------------------------------------------------------------------------------------------


def test_a_new_home_is_0700_and_its_files_0600(tmp_path: Path, umask_022: None):
    """On first start the home is made 0700; the database, its -wal and -shm files, the migration lock and the
    generated master and vault keys are 0600, whatever the umask."""
    home = tmp_path / "home"
    fd = open_frontdesk(Settings(home=home, issuer="https://as.example").validated())
    try:
        fd.users.create("someone", "a long enough password")  # a write: the -wal and -shm files exist now
        assert _mode(home) == 0o700
        names = ["frontdesk.db", "frontdesk.db-wal", "frontdesk.db-shm", "frontdesk.db.migrate.lock"]
        for name in [*names, "master.key", "vault.keys"]:
            assert (home / name).exists(), name
            assert _mode(home / name) == 0o600, f"{name} is {_mode(home / name):04o}"
    finally:
        fd.close()


def test_an_older_home_is_tightened_and_its_directory_warned_about(
    tmp_path: Path, umask_022: None, caplog: pytest.LogCaptureFixture
):
    """A home made before (0755, its database and key 0644) has its files made 0600 at start; the directory, which
    may be shared with other things, is left as it is with a warning."""
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    with sqlite3.connect(home / "frontdesk.db") as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE early (x)")
        conn.execute("INSERT INTO early VALUES (1)")
    (home / "master.key").write_text(MASTER_KEY)
    assert _mode(home / "frontdesk.db") == 0o644
    assert _mode(home / "master.key") == 0o644
    with caplog.at_level(logging.WARNING):
        fd = open_frontdesk(Settings(home=home, issuer="https://as.example").validated())
    try:
        for name in ("frontdesk.db", "frontdesk.db-wal", "frontdesk.db-shm", "master.key", "vault.keys"):
            if (home / name).exists():
                assert _mode(home / name) == 0o600, f"{name} is {_mode(home / name):04o}"
        assert _mode(home / "master.key") == 0o600
        assert any("FRONTDESK_HOME" in r.getMessage() and "0755" in r.getMessage() for r in caplog.records)
    finally:
        fd.close()


def test_an_operator_key_file_readable_by_others_is_warned_about(
    tmp_path: Path, umask_022: None, caplog: pytest.LogCaptureFixture
):
    """A master key file the operator provides is not changed, but one that others may read is warned about."""
    key_file = tmp_path / "master-key"
    key_file.write_text(MASTER_KEY)
    settings = Settings(home=tmp_path / "home", issuer="https://as.example", master_key_file=str(key_file))
    with caplog.at_level(logging.WARNING):
        open_frontdesk(settings.validated()).close()
    assert _mode(key_file) == 0o644
    assert any(str(key_file) in r.getMessage() and "0644" in r.getMessage() for r in caplog.records)
