"""Shared fixtures: a frontdesk on a fresh database (SQLite, and PostgreSQL in the full matrix), an in-process HTTP
client on the production ASGI entry point, registered clients and a person, and a helper that signs in through the
real forms.

Two ways to run (CONTRIBUTING.md): a plain ``pytest`` is the quick loop, the in-process suite on SQLite, in parallel;
it leaves out (deselects) every test marked with one of ``FULL_MATRIX_ONLY``. ``pytest --full`` (what
``scripts/test`` and CI run; ``CI=true`` implies it) runs the whole matrix, and there a skipped test fails the run."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import ssl
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import Engine, MetaData, Table, create_engine, select, text

from frontdesk.asgi import open_frontdesk, served
from frontdesk.config import Lifetimes, PasswordHashing, RateLimits, Settings
from frontdesk.core import Frontdesk
from frontdesk.logs import LineHandler, LineWriter
from frontdesk.oauth.registration import register
from frontdesk.oauth.resources import create as create_resource
from frontdesk.storage import db
from inbox import Mailbox, mailbox_at

ISSUER = "https://as.example"
PG_ENV = "FRONTDESK_TEST_POSTGRES_URL"
# argon2id at its cheapest: the suite signs in thousands of times. tests/crypto/test_passwords.py keeps the defaults.
FAST_PASSWORDS = PasswordHashing(time_cost=1, memory_cost=8, parallelism=1)
# What the quick loop leaves to the full matrix: tests that need PostgreSQL, a browser or node, and those that run
# frontdesk out of process (its command line, its server; interop's third-party clients drive it so).
FULL_MATRIX_ONLY = ("postgres", "browser", "node", "interop", "subprocess")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full",
        action="store_true",
        help="the full matrix: PostgreSQL, browser and node tests too, and any skip fails the run (implied by CI=true)",
    )


def full_matrix(config: pytest.Config) -> bool:
    return bool(config.getoption("--full")) or os.environ.get("CI") == "true"


def pytest_configure(config: pytest.Config) -> None:
    if full_matrix(config) and not os.environ.get(PG_ENV):
        raise pytest.UsageError(
            f"the full matrix (--full, CI=true) needs {PG_ENV}: the suite must run on PostgreSQL too"
        )


def _needs_node(item: pytest.Item) -> bool:
    """openid-client (the ``node`` fixture of tests/interop), or node-oidc-provider (``running_op`` of tests/peers)
    in the test's module or in the module of one of its fixtures."""
    if "node" in item.fixturenames:
        return True
    defs = item._fixtureinfo.name2fixturedefs.values()
    modules = {getattr(item, "module", None)} | {sys.modules.get(d[-1].func.__module__) for d in defs}
    return any(getattr(module, "running_op", None) is not None for module in modules)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _needs_node(item):
            item.add_marker(pytest.mark.node)
        # Tests that share a module-scoped fixture (a served frontdesk, a peer) stay on one worker: set up once.
        if any(defs[-1].scope in ("module", "package") for defs in item._fixtureinfo.name2fixturedefs.values()):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
    if full_matrix(config):
        return
    kept, left = [], []
    for item in items:
        (left if any(item.get_closest_marker(m) for m in FULL_MATRIX_ONLY) else kept).append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept


def pytest_report_header(config: pytest.Config) -> str:
    if full_matrix(config):
        return "frontdesk: the full matrix (SQLite and PostgreSQL, browser, node); a skipped test fails the run"
    return (
        "frontdesk: the quick loop (SQLite, in-process); tests marked "
        + ", ".join(FULL_MATRIX_ONLY)
        + " are deselected: `pytest --full` or scripts/test runs them"
    )


# Every secret the suite handles — passwords, client secrets, codes, tokens — is remembered here; at the end of the
# run none may appear in the DEBUG log of the whole run (each xdist worker's run: a worker is a session of its own),
# and at the end of each test none in its database.
SEEN: set[str] = set()
SECRET_FIELDS = ("access_token", "refresh_token", "id_token", "device_code", "client_secret")


@pytest.fixture(scope="session", autouse=True)
def debug_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The whole suite logs at DEBUG into one JSON-lines file, which is then scanned for every secret seen."""
    path = tmp_path_factory.mktemp("logs") / "debug.log"
    sink = path.open("a", encoding="utf-8")
    handler = LineHandler(LineWriter(sink))  # the writer and rendering of frontdesk serve (logs.py)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)  # as frontdesk.logs.configure_logging does
    logging.getLogger("httpcore").setLevel(logging.INFO)  # likewise
    yield path
    root.removeHandler(handler)
    handler.close()
    sink.close()
    root.setLevel(level)
    logged = path.read_text()
    leaked = sorted(secret[:12] + "…" for secret in SEEN if secret in logged)
    assert not leaked, f"secrets appeared in the DEBUG log {path}: {leaked}"


@pytest.fixture(scope="session", autouse=True)
def _one_default_tls_context() -> Iterator[None]:
    """Each httpx client loads certifi's CA bundle into a new SSL context (about 40 ms), and each test's Frontdesk
    opens two clients, and its app a context for the vault's (web/app.py): the suite shares one default context
    instead, the very one httpx would make. Speed only."""
    made = httpx._transports.default.create_ssl_context
    shared: dict[tuple[bool, str | None, str | None], ssl.SSLContext] = {}

    def create_ssl_context(verify: Any = True, cert: Any = None, trust_env: bool = True) -> ssl.SSLContext:
        if verify is not True or cert is not None:
            return made(verify=verify, cert=cert, trust_env=trust_env)
        # With trust_env, httpx reads SSL_CERT_FILE and SSL_CERT_DIR: a test that sets them gets its own context.
        key = (trust_env, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        if key not in shared:
            shared[key] = made(verify=True, cert=None, trust_env=trust_env)
        return shared[key]

    patch = pytest.MonkeyPatch()
    patch.setattr(httpx._transports.default, "create_ssl_context", create_ssl_context)
    patch.setattr(httpx, "create_ssl_context", create_ssl_context)
    yield
    patch.undo()


@pytest.fixture
def secrets_seen() -> set[str]:
    return set()


def remember(seen: set[str], *values: str | None) -> None:
    for value in values:
        if value and len(value) >= 8:
            seen.add(value)
            SEEN.add(value)


_SCHEMA: dict[str, list[Table]] = {}


def _tables(engine: Engine) -> list[Table]:
    """Every table of a frontdesk database on this engine's dialect, reflected once: each test's database has the
    template's schema, and reflection costs about a second on PostgreSQL."""
    dialect = engine.dialect.name
    if dialect not in _SCHEMA:
        metadata = MetaData()
        metadata.reflect(engine)
        _SCHEMA[dialect] = list(metadata.sorted_tables)
    return _SCHEMA[dialect]


def _assert_no_secret_at_rest(fd: Frontdesk, seen: set[str]) -> None:
    """Only digests of what this test handled may be in its database: no secret in any row of any table."""
    if not seen:
        return
    with fd.engine.connect() as conn:
        dump = "\n".join(repr(tuple(row)) for table in _tables(fd.engine) for row in conn.execute(select(table)))
    leaked = sorted(secret[:12] + "…" for secret in seen if secret in dump)
    assert not leaked, f"secrets stored in the database: {leaked}"


def _backends() -> list[Any]:
    """Every test on a database runs on both; the PostgreSQL half is marked ``postgres`` (the full matrix's)."""
    return ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


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
        settings = Settings(
            home=home,
            database_url=url,
            issuer=ISSUER,
            master_key=MASTER_KEY,
            passwords=FAST_PASSWORDS,
            insecure_fast_password_hashing=True,
        )
        made = open_frontdesk(settings.validated())
        made.engine.dispose()  # SQLite folds its WAL back into the file; PostgreSQL needs no session on a template
        _TEMPLATES[backend] = url
    return _TEMPLATES[backend]


@pytest.fixture(scope="session", autouse=True)
def _drop_templates() -> Iterator[None]:
    yield
    for reused in _REUSED.values():
        reused.drop()
    if "postgresql" in _TEMPLATES:
        _drop_pg_database(os.environ[PG_ENV], _TEMPLATES["postgresql"])


@dataclass
class _Reused:
    """This worker's PostgreSQL database for ``fd``: copied from the template once, then put back into the
    template's state before each test (every row deleted, the template's rows and sequence values restored), which
    costs a few milliseconds where a CREATE DATABASE per test cost a third of a second."""

    url: str
    engine: Engine
    tables: list[Table] = field(default_factory=list)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    sequences: dict[str, tuple[int, bool]] = field(default_factory=dict)

    @classmethod
    def copy_of(cls, template: str) -> _Reused:
        url = _pg_database(os.environ[PG_ENV], template=template.rsplit("/", 1)[1])
        reused = cls(url, create_engine(db.normalise_url(url), pool_size=1, max_overflow=0))
        reused.tables = _tables(reused.engine)
        with reused.engine.connect() as conn:
            reused.rows = {t.name: [dict(r._mapping) for r in conn.execute(select(t))] for t in reused.tables}
            for (name,) in conn.execute(text("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")):
                last, called = conn.execute(text(f'SELECT last_value, is_called FROM "{name}"')).one()
                reused.sequences[name] = (int(last), bool(called))
        return reused

    def reset(self) -> None:
        with self.engine.begin() as conn:
            # Whatever an earlier test left connected (a second Frontdesk, an unclosed pool) goes, as DROP DATABASE
            # WITH (FORCE) made it go; nothing then holds a lock the deletes would wait on.
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            for table in reversed(self.tables):
                conn.execute(table.delete())
            for table in self.tables:
                if self.rows[table.name]:
                    conn.execute(table.insert(), self.rows[table.name])
            for name, (last, called) in self.sequences.items():
                conn.execute(
                    text("SELECT setval(:name, :last, :called)"), {"name": name, "last": last, "called": called}
                )

    def drop(self) -> None:
        self.engine.dispose()
        _drop_pg_database(os.environ[PG_ENV], self.url)


_REUSED: dict[str, _Reused] = {}


@pytest.fixture
def fd_database(backend: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database in the state of the run's template (migrated and keyed) for this test alone: a copy of the
    template's file on SQLite; on PostgreSQL this worker's reused database, reset to the template's rows."""
    template = _template(backend, tmp_path_factory)
    if backend == "sqlite":
        path = tmp_path / "frontdesk.db"
        shutil.copyfile(template.removeprefix("sqlite:///"), path)
        yield f"sqlite:///{path}"
        return
    if backend not in _REUSED:
        _REUSED[backend] = _Reused.copy_of(template)
    reused = _REUSED[backend]
    reused.reset()
    yield reused.url


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
        passwords=FAST_PASSWORDS,
        insecure_fast_password_hashing=True,
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

    # The app as `frontdesk serve` runs it (asgi.py), hot endpoints called straight and the rest through the stack.
    # Without its lifespan (ASGITransport runs none), the audit writer never starts and events are written at once.
    app = served(fd)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(
        transport=transport, base_url=ISSUER, follow_redirects=False, event_hooks={"response": [collect]}
    ) as client:
        yield client
    await app.app.state.vault_http.aclose()  # the lifespan would


@dataclass
class Clock:
    """frontdesk's wall clock (``storage.db.clock``) running ``offset`` seconds ahead of the real one."""

    offset: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        """Move time forward, as a sleep would, without the wait: lifetimes and expiries see the later time."""
        self.offset += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moved = Clock()
    monkeypatch.setattr(db, "clock", moved)
    return moved


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
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd on loopback) for one test; ``inbox.with_email`` points frontdesk at it."""
    with mailbox_at() as box:
        yield box


@pytest.fixture
def confidential(fd: Frontdesk, secrets_seen: set[str]) -> Registered:
    """Client C: confidential, client_secret_basic, all grants."""
    client, secret = register(
        fd,
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
    client, secret = register(
        fd,
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
    client, _ = register(
        fd,
        name="Desktop App",
        client_id="public-client",
        auth_method="none",
        redirect_uris=["https://app.example/cb", "http://127.0.0.1/cb", "http://[::1]/cb"],
        grant_types=["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
        scope="openid profile email offline_access calendar.read",
    )
    return Registered(client.client_id, None, "https://app.example/cb")


# Resource servers RS1 and RS2 (RFC 8707): tokens are minted only for registered resources (oauth/resources.py).
RS1, RS2 = "https://rs1.example", "https://rs2.example"


@pytest.fixture
def resource_servers(fd: Frontdesk) -> tuple[str, str]:
    """RS1 and RS2 registered as an operator registers them (``frontdesk resource create``), with no scopes."""
    create_resource(fd, RS1, "Resource server one")
    create_resource(fd, RS2, "Resource server two")
    return RS1, RS2


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
    """In the full matrix a skipped test is a failed run: nothing may quietly go unproven."""
    if not full_matrix(session.config):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        print(f"\nthe full matrix: {len(skipped)} skipped test(s) count as failures")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
