"""Shared fixtures: a frontdesk on a fresh database (SQLite, and PostgreSQL when FRONTDESK_TEST_POSTGRES_URL is set),
an in-process HTTP client, registered clients and a person, and a helper that signs in through the real forms."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import MetaData, create_engine, select, text

from frontdesk.config import Lifetimes, RateLimits, Settings
from frontdesk.core import Frontdesk, open_frontdesk
from frontdesk.logs import JsonFormatter
from frontdesk.web import create_app

ISSUER = "https://as.example"
PG_ENV = "FRONTDESK_TEST_POSTGRES_URL"

# Every secret the suite handles — passwords, client secrets, codes, tokens — is remembered here; at the end of the
# run none may appear in the DEBUG log of the whole run, and at the end of each test none in its database.
SEEN: set[str] = set()
SECRET_FIELDS = ("access_token", "refresh_token", "id_token", "device_code", "client_secret")


@pytest.fixture(scope="session", autouse=True)
def debug_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The whole suite logs at DEBUG into one JSON-lines file, which is then scanned for every secret seen."""
    path = tmp_path_factory.mktemp("logs") / "debug.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)  # as frontdesk.logs.configure_logging does
    logging.getLogger("httpcore").setLevel(logging.INFO)  # likewise
    yield path
    root.removeHandler(handler)
    handler.close()
    root.setLevel(level)
    logged = path.read_text()
    leaked = sorted(secret[:12] + "…" for secret in SEEN if secret in logged)
    assert not leaked, f"secrets appeared in the DEBUG log {path}: {leaked}"


@pytest.fixture
def secrets_seen() -> set[str]:
    return set()


def remember(seen: set[str], *values: str | None) -> None:
    for value in values:
        if value and len(value) >= 8:
            seen.add(value)
            SEEN.add(value)


def _assert_no_secret_at_rest(fd: Frontdesk, seen: set[str]) -> None:
    """Only digests of what this test handled may be in its database: no secret in any row of any table."""
    if not seen:
        return
    metadata = MetaData()
    metadata.reflect(fd.engine)
    with fd.engine.connect() as conn:
        dump = "\n".join(repr(tuple(row)) for table in metadata.sorted_tables for row in conn.execute(select(table)))
    leaked = sorted(secret[:12] + "…" for secret in seen if secret in dump)
    assert not leaked, f"secrets stored in the database: {leaked}"


def _backends() -> list[str]:
    backends = ["sqlite"]
    if os.environ.get(PG_ENV):
        backends.append("postgresql")
    elif os.environ.get("CI") == "true":
        raise RuntimeError(f"CI=true needs {PG_ENV}: the suite must run on PostgreSQL too")
    return backends


@pytest.fixture(scope="session")
def pg_admin_url() -> str | None:
    return os.environ.get(PG_ENV)


def _pg_database(admin_url: str, template: str | None = None) -> str:
    """A fresh database per test (empty, or a copy of a template), so tests never see each other's rows."""
    name = "fdtest_" + uuid.uuid4().hex[:12]
    admin = create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    admin.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name


def _drop_pg_database(admin_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=_backends())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database, for tests that let frontdesk (its CLI, its server) create everything itself."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'frontdesk.db'}"
        return
    admin_url = os.environ[PG_ENV]
    url = _pg_database(admin_url)
    yield url
    _drop_pg_database(admin_url, url)


# One master key for the session: the template databases' signing keys are sealed under it.
MASTER_KEY = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
_TEMPLATES: dict[str, str] = {}


def _template(backend: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database migrated and keyed once per run; each test gets a copy, which is much cheaper than migrating
    and generating RSA keys again (the schema and key code are tested on their own)."""
    if backend not in _TEMPLATES:
        if backend == "sqlite":
            home = tmp_path_factory.mktemp("template")
            url = f"sqlite:///{home / 'frontdesk.db'}"
        else:
            home = tmp_path_factory.mktemp("template")
            url = _pg_database(os.environ[PG_ENV])
        made = open_frontdesk(Settings(home=home, database_url=url, issuer=ISSUER, master_key=MASTER_KEY).validated())
        made.engine.dispose()  # SQLite folds its WAL back into the file; PostgreSQL needs no session on a template
        _TEMPLATES[backend] = url
    return _TEMPLATES[backend]


@pytest.fixture(scope="session", autouse=True)
def _drop_templates() -> Iterator[None]:
    yield
    if "postgresql" in _TEMPLATES:
        _drop_pg_database(os.environ[PG_ENV], _TEMPLATES["postgresql"])


@pytest.fixture
def fd_database(backend: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of the test's own, already migrated and keyed: a copy of the run's template."""
    template = _template(backend, tmp_path_factory)
    if backend == "sqlite":
        path = tmp_path / "frontdesk.db"
        shutil.copyfile(template.removeprefix("sqlite:///"), path)
        yield f"sqlite:///{path}"
        return
    admin_url = os.environ[PG_ENV]
    url = _pg_database(admin_url, template=template.rsplit("/", 1)[1])
    yield url
    _drop_pg_database(admin_url, url)


@pytest.fixture
def lifetimes() -> Lifetimes:
    return Lifetimes()


@pytest.fixture
def rate_limits() -> RateLimits:
    return RateLimits()


@pytest.fixture
def fd(
    fd_database: str, tmp_path: Path, lifetimes: Lifetimes, rate_limits: RateLimits, secrets_seen: set[str]
) -> Iterator[Frontdesk]:
    settings = Settings(
        home=tmp_path,
        database_url=fd_database,
        issuer=ISSUER,
        lifetimes=lifetimes,
        rate_limits=rate_limits,
        scopes={"calendar.read": "See your calendar events — not change or delete them"},
        master_key=MASTER_KEY,
    ).validated()
    frontdesk = open_frontdesk(settings, run_migrations=False, ensure_keys=False)
    yield frontdesk
    _assert_no_secret_at_rest(frontdesk, secrets_seen)
    frontdesk.close()


@pytest.fixture
async def http(fd: Frontdesk, secrets_seen: set[str]) -> Any:
    async def collect(response: httpx.Response) -> None:
        """Remember every credential a response hands out."""
        remember(secrets_seen, query(response.headers.get("location", "")).get("code"))
        if response.headers.get("content-type", "").startswith("application/json"):
            await response.aread()
            try:
                body = json.loads(response.content)
            except ValueError:
                return
            if isinstance(body, dict):
                remember(secrets_seen, *(str(body[f]) for f in SECRET_FIELDS if f in body))

    app = create_app(fd)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(
        transport=transport, base_url=ISSUER, follow_redirects=False, event_hooks={"response": [collect]}
    ) as client:
        yield client
    await app.state.vault_http.aclose()  # the lifespan would; ASGITransport runs none


@dataclass(frozen=True)
class Registered:
    client_id: str
    secret: str | None
    redirect_uri: str


@pytest.fixture
def person(fd: Frontdesk, secrets_seen: set[str]) -> tuple[str, str]:
    fd.users.create("alice", "correct horse battery", email="alice@example.com", name="Alice Example")
    remember(secrets_seen, "correct horse battery")
    return "alice", "correct horse battery"


@pytest.fixture
def confidential(fd: Frontdesk, secrets_seen: set[str]) -> Registered:
    """Client C: confidential, client_secret_basic, all grants."""
    client, secret = fd.clients.create(
        name="Calendar Helper",
        client_id="conf-client",
        redirect_uris=["https://app.example/cb"],
        grant_types=["authorization_code", "refresh_token", "client_credentials"],
        scope="openid profile email offline_access calendar.read",
    )
    remember(secrets_seen, secret)
    return Registered(client.client_id, secret, "https://app.example/cb")


@pytest.fixture
def second(fd: Frontdesk, secrets_seen: set[str]) -> Registered:
    """Client C2: another confidential client."""
    client, secret = fd.clients.create(
        name="Other App",
        client_id="other-client",
        redirect_uris=["https://other.example/cb"],
        grant_types=["authorization_code", "refresh_token", "client_credentials"],
        scope="openid profile offline_access calendar.read",
    )
    remember(secrets_seen, secret)
    return Registered(client.client_id, secret, "https://other.example/cb")


@pytest.fixture
def public(fd: Frontdesk) -> Registered:
    """Client P: public, PKCE, loopback and https redirect URIs."""
    client, _ = fd.clients.create(
        name="Desktop App",
        client_id="public-client",
        auth_method="none",
        redirect_uris=["https://app.example/cb", "http://127.0.0.1/cb", "http://[::1]/cb"],
        grant_types=["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
        scope="openid profile email offline_access calendar.read",
    )
    return Registered(client.client_id, None, "https://app.example/cb")


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def basic(client: Registered) -> tuple[str, str]:
    assert client.secret is not None
    return (client.client_id, client.secret)


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query, keep_blank_values=True).items()}


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


class Browser:
    """Drives the sign-in and consent forms exactly as a browser would (cookies kept by the client)."""

    def __init__(self, http: httpx.AsyncClient, username: str, password: str) -> None:
        self.http = http
        self.username = username
        self.password = password

    async def follow(self, response: httpx.Response) -> httpx.Response:
        while response.status_code in (302, 303) and response.headers["location"].startswith(("/", ISSUER)):
            response = await self.http.get(response.headers["location"])
        return response

    async def sign_in(self, page: httpx.Response) -> httpx.Response:
        action = re.search(r'<form method="post" action="([^"]+)"', page.text)
        assert action, page.text
        return await self.http.post(
            action.group(1), data={"csrf": csrf_of(page.text), "username": self.username, "password": self.password}
        )

    async def authorize(self, consent: str | None = "allow", **params: str) -> httpx.Response:
        """Run /authorize through sign-in and consent; returns the final redirect to the client."""
        response = await self.follow(await self.http.get("/authorize", params=params))
        if response.status_code == 200 and 'name="password"' in response.text:
            response = await self.follow(await self.sign_in(response))
        if response.status_code == 200 and 'value="allow"' in response.text and consent is not None:
            action = re.search(r'<form method="post" action="([^"]+)"', response.text)
            assert action
            response = await self.http.post(action.group(1), data={"csrf": csrf_of(response.text), "decision": consent})
        return response


@pytest.fixture
def browser(http: httpx.AsyncClient, person: tuple[str, str]) -> Browser:
    return Browser(http, *person)


async def code_for(
    browser: Browser, client: Registered, scope: str = "openid profile offline_access", **extra: str
) -> tuple[str, str]:
    """An authorization code and its PKCE verifier, through the real forms."""
    verifier, challenge = pkce()
    response = await browser.authorize(
        response_type="code",
        client_id=client.client_id,
        redirect_uri=client.redirect_uri,
        scope=scope,
        state="xyz",
        code_challenge=challenge,
        code_challenge_method="S256",
        **extra,
    )
    assert response.status_code == 303, response.text
    params = query(response.headers["location"])
    assert "code" in params, params
    return params["code"], verifier


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI=true a skipped test is a failed run: nothing may quietly go unproven."""
    if os.environ.get("CI") != "true":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        print(f"\nCI=true: {len(skipped)} skipped test(s) count as failures")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
