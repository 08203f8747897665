"""Faults (issue 3 §3): the database stopping under load, a worker killed mid-flight, SQLite on a full disk.

Each scenario runs once per module in a fixture that records everything the clients saw; each test then judges one
behaviour of that record. Every scenario is bounded in time and talks only to 127.0.0.1 (or to the app in-process).
The PostgreSQL that is stopped is a private cluster started for this module — never the machine's shared one.
"""

from __future__ import annotations

import base64
import contextlib
import glob
import hashlib
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import OperationalError

from conftest import PG_ENV, SECRET_FIELDS, _drop_pg_database, _pg_database, csrf_of, pkce, query, remember
from frontdesk.asgi import open_frontdesk
from frontdesk.config import Settings
from frontdesk.core import Frontdesk
from frontdesk.oauth.registration import register
from frontdesk.web import create_app
from servers import STOP_TIMEOUT, Server, _environment, _free_port, _stop, _wait_until_ready

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
HTTP_TIMEOUT = 10.0
PG_CTL_TIMEOUT = 30
JOIN_TIMEOUT = 15.0
START_ATTEMPTS = 3
SCOPE = "calendar.read"
PASSWORD = "correct horse battery staple"
REDIRECT_URI = "https://app.example/cb"
TRACE_MARKERS = ("Traceback", 'File "', "sqlalchemy.", "psycopg.", "sqlite3.")
# Every secret these tests handle joins the suite-wide scan of the run's DEBUG log (tests/conftest.py).
HANDLED: set[str] = set()


# --- records and shared helpers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One request as the client saw it: ``status`` None means the connection failed."""

    step: str
    started: float
    ended: float
    status: int | None
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def __str__(self) -> str:
        return f"{self.step} → {self.status} {self.body[:300]!r}"


def _send(record: list[Seen], step: str, http: httpx.Client, method: str, url: str, **kwargs: Any) -> Seen:
    started = time.monotonic()
    try:
        response = http.request(method, url, **kwargs)
        seen = Seen(step, started, time.monotonic(), response.status_code, dict(response.headers), response.text)
        body = seen.json()
        if isinstance(body, dict):
            remember(HANDLED, *(str(body[name]) for name in SECRET_FIELDS if name in body))
    except httpx.TransportError as exc:
        seen = Seen(step, started, time.monotonic(), None, {}, f"{type(exc).__name__}: {exc}")
    record.append(seen)
    return seen


def _shows_a_trace(seen: Seen) -> bool:
    return any(marker in seen.body for marker in TRACE_MARKERS)


def _unavailable_problems(seen: Seen) -> list[str]:
    """Why a 503 is not the RFC 6749 §5.2 temporarily_unavailable answer with Retry-After (empty when it is)."""
    problems = []
    if not seen.headers.get("retry-after", "").isdigit():
        problems.append("no Retry-After in seconds")
    if not seen.headers.get("content-type", "").startswith("application/json"):
        problems.append(f"content-type {seen.headers.get('content-type')!r}")
    body = seen.json()
    if not isinstance(body, dict) or body.get("error") != "temporarily_unavailable":
        problems.append("body is not {'error': 'temporarily_unavailable', …}")
    if _shows_a_trace(seen):
        problems.append("the body shows internals")
    return problems


def _proper_failures(record: list[Seen], allowed: Callable[[Seen], bool]) -> list[str]:
    """Every response that is neither allowed nor a proper 503, with the reason."""
    bad = []
    for seen in record:
        if seen.status == 503:
            if problems := _unavailable_problems(seen):
                bad.append(f"{seen}: {', '.join(problems)}")
        elif _shows_a_trace(seen) or not allowed(seen):
            bad.append(str(seen))
    return bad


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _serve(env: dict[str, str], log: Path, *extra: str) -> tuple[subprocess.Popen[bytes], Server]:
    """``python -m frontdesk serve`` on a free loopback port (retried if the port was taken meanwhile)."""
    for _ in range(START_ATTEMPTS):
        port = _free_port()
        issuer = f"http://127.0.0.1:{port}"
        with log.open("ab") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "frontdesk", "serve", "--host", "127.0.0.1", "--port", str(port), *extra],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        if _wait_until_ready(process, issuer, log):
            return process, Server(issuer=issuer, env=env, backend="postgresql", log=log)
        process.wait(timeout=STOP_TIMEOUT)
    pytest.fail(f"frontdesk serve exited before answering, {START_ATTEMPTS} times; its log:\n{log.read_text()}")


class Browser:
    """The sign-in and consent forms driven as a browser would, over any httpx client (cookies kept by it)."""

    def __init__(self, http: httpx.Client, record: list[Seen], client_id: str) -> None:
        self.http = http
        self.record = record
        self.client_id = client_id

    def _get(self, step: str, url: str, **kwargs: Any) -> Seen:
        return _send(self.record, step, self.http, "GET", url, **kwargs)

    def _post(self, step: str, url: str, data: dict[str, str]) -> Seen:
        return _send(self.record, step, self.http, "POST", url, data=data)

    def _follow(self, seen: Seen) -> Seen:
        while seen.status in (302, 303) and seen.headers["location"].startswith("/"):
            seen = self._get("follow", seen.headers["location"])
        return seen

    def code(self) -> tuple[str, str] | None:
        """An authorization code and its verifier through the real pages, or None if a step failed."""
        verifier, challenge = pkce()
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": "openid offline_access",
            "state": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        seen = self._follow(self._get("authorize", "/authorize", params=params))
        if seen.status == 200 and 'name="password"' in seen.body:
            action = re.search(r'<form method="post" action="([^"]+)"', seen.body)
            assert action, seen.body
            form = {"csrf": csrf_of(seen.body), "username": "alice", "password": PASSWORD}
            seen = self._follow(self._post("sign-in", action.group(1), form))
        if seen.status == 200 and 'value="allow"' in seen.body:
            action = re.search(r'<form method="post" action="([^"]+)"', seen.body)
            assert action, seen.body
            seen = self._post("consent", action.group(1), {"csrf": csrf_of(seen.body), "decision": "allow"})
        if seen.status != 303 or not seen.headers["location"].startswith(REDIRECT_URI):
            return None
        code = query(seen.headers["location"]).get("code")
        remember(HANDLED, code)
        return (code, verifier) if code else None


# --- 1. the database stops under load ----------------------------------------------------------------------------


def _postgres_binary(name: str) -> str:
    def version(path: str) -> int:
        part = Path(path).parts[4]
        return int(part) if part.isdigit() else 0

    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=version)
    path = found[-1] if found else shutil.which(name)
    if path is None:
        pytest.fail(
            f"the database-outage test starts a private PostgreSQL cluster and needs `{name}` "
            "(Debian: apt-get install postgresql); it never stops the shared one",
            pytrace=False,
        )
    return path


def _cluster_owner() -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root: as root, the cluster belongs to the ``postgres`` OS user."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("running as root, the private PostgreSQL cluster needs a `postgres` OS user", pytrace=False)


def _as_cluster_owner(command: list[str]) -> list[str]:
    return command if _cluster_owner() is None else ["runuser", "-u", "postgres", "--", *command]


@dataclass(frozen=True)
class PrivatePostgres:
    """A throwaway PostgreSQL cluster on its own port and socket directory, trust auth, loopback only."""

    root: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        done = subprocess.run(
            _as_cluster_owner(list(command)), capture_output=True, text=True, timeout=PG_CTL_TIMEOUT, check=False
        )
        if done.returncode != 0:
            log = self.root / "postgres.log"
            server_log = log.read_text(errors="replace") if log.exists() else ""
            pytest.fail(f"`{' '.join(command)}` exited {done.returncode}:\n{done.stderr}{done.stdout}\n{server_log}")

    def initdb(self) -> None:
        self._run(
            _postgres_binary("initdb"),
            *("-D", str(self.root / "data"), "-A", "trust", "-U", "postgres", "-E", "UTF8"),
            *("--no-sync", "--no-instructions"),
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            _postgres_binary("pg_ctl"),
            *("-D", str(self.root / "data"), "-l", str(self.root / "postgres.log"), "-o", options),
            *("-w", "-t", str(PG_CTL_TIMEOUT), "start"),
        )

    def stop(self) -> None:
        """``pg_ctl stop -m immediate``: every backend is cut off at once, as in a crash."""
        self._run(
            _postgres_binary("pg_ctl"),
            *("-D", str(self.root / "data"), "-m", "immediate", "-w", "-t", str(PG_CTL_TIMEOUT), "stop"),
        )

    def running(self) -> bool:
        return (self.root / "data" / "postmaster.pid").exists()


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A private cluster in a fresh directory under the system temp dir (the postgres user must reach it)."""
    root = Path(tempfile.mkdtemp(prefix="frontdesk-pg-"))
    root.chmod(0o700)
    owner = _cluster_owner()
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    cluster = PrivatePostgres(root, _free_port())
    try:
        cluster.initdb()
        cluster.start()
        yield cluster
    finally:
        if cluster.running():
            with contextlib.suppress(BaseException):
                cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


WARM_SECONDS = 1.5
DOWN_SECONDS = 3.0
RECOVERY_LIMIT = 15.0
LOAD_THREADS = 4


@dataclass
class Outage:
    """What the clients saw around a database stop and start; times are ``time.monotonic()``."""

    record: list[Seen]
    stopped: float  # pg_ctl stop returned
    restarting: float  # pg_ctl start called
    restarted: float  # pg_ctl start returned
    recovered_after: float | None  # seconds from ``restarted`` to the first success begun after it
    after: list[Seen]  # a sequential round once recovered
    process: subprocess.Popen[bytes]
    pid: int
    server: Server


def _client_credentials_load(server: Server, client: dict[str, Any], stop: threading.Event, out: list[Seen]) -> None:
    """client_credentials, then introspection of the token just issued, until told to stop."""
    auth = (client["client_id"], client["client_secret"])
    with httpx.Client(base_url=server.issuer, timeout=HTTP_TIMEOUT) as http:
        while not stop.is_set():
            data = {"grant_type": "client_credentials", "scope": SCOPE}
            seen = _send(out, "token", http, "POST", "/token", data=data, auth=auth)
            if seen.status == 200:
                form = {"token": seen.json()["access_token"]}
                _send(out, "introspect", http, "POST", "/introspect", data=form, auth=auth)
            time.sleep(0.01)


@pytest.fixture(scope="module")
def outage(private_postgres: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outage]:
    """frontdesk serving from the private cluster under load while the cluster is stopped and started again."""
    tmp = tmp_path_factory.mktemp("outage")
    (tmp / "home").mkdir()
    env = _environment(tmp / "home", private_postgres.url)
    process, server = _serve(env, tmp / "frontdesk.log")
    try:
        server.cli("scope", "create", SCOPE, "--description", "See your calendar events")
        client = server.cli(
            "client", "create", "--name", "Reporting job", "--grant-type", "client_credentials", "--scope", SCOPE
        )
        remember(HANDLED, client["client_secret"])
        record: list[Seen] = []
        stop = threading.Event()
        threads = [
            threading.Thread(target=_client_credentials_load, args=(server, client, stop, record), daemon=True)
            for _ in range(LOAD_THREADS)
        ]
        for thread in threads:
            thread.start()
        try:
            time.sleep(WARM_SECONDS)
            private_postgres.stop()
            stopped = time.monotonic()
            time.sleep(DOWN_SECONDS)
            restarting = time.monotonic()
            private_postgres.start()
            restarted = time.monotonic()
            recovered_after = None
            while recovered_after is None and time.monotonic() < restarted + RECOVERY_LIMIT:
                time.sleep(0.1)
                ok = [s.ended for s in list(record) if s.status == 200 and s.started >= restarted]
                recovered_after = min(ok) - restarted if ok else None
            time.sleep(0.5)
        finally:
            stop.set()
            for thread in threads:
                thread.join(JOIN_TIMEOUT)
        after: list[Seen] = []
        if recovered_after is not None:
            with httpx.Client(base_url=server.issuer, timeout=HTTP_TIMEOUT) as http:
                auth = (client["client_id"], client["client_secret"])
                for _ in range(10):
                    data = {"grant_type": "client_credentials"}
                    seen = _send(after, "token", http, "POST", "/token", data=data, auth=auth)
                    if seen.status == 200:
                        form = {"token": seen.json()["access_token"]}
                        _send(after, "introspect", http, "POST", "/introspect", data=form, auth=auth)
        yield Outage(record, stopped, restarting, restarted, recovered_after, after, process, process.pid, server)
    finally:
        _stop(process)


@pytest.mark.postgres
def test_database_outage_answers_503_with_retry_after(outage: Outage):
    """While the database is down, every failed request is a 503 temporarily_unavailable JSON with Retry-After."""
    down = [s for s in outage.record if s.started >= outage.stopped and s.ended <= outage.restarting]
    assert any(s.status == 503 for s in down), (
        f"no 503 in {len(down)} requests made while the database was down: the outage was never observed\n"
        + "\n".join(map(str, down[:20]))
    )

    def allowed(seen: Seen) -> bool:
        # A success is fine (caches, or a request finished before the stop); an introspection must not lie.
        if seen.status != 200:
            return False
        return seen.step != "introspect" or seen.json() == {**(seen.json() or {}), "active": True}

    bad = _proper_failures(outage.record, allowed)
    assert not bad, (
        f"{len(bad)} of {len(outage.record)} responses were not 200 or a proper 503:\n"
        + "\n".join(bad[:20])
        + f"\nserver log:\n{outage.server.log_text()[-4000:]}"
    )


@pytest.mark.postgres
def test_service_recovers_when_database_returns(outage: Outage):
    """Once the database is back, requests succeed again within 15 s without restarting frontdesk."""
    assert outage.recovered_after is not None, (
        f"no success within {RECOVERY_LIMIT:.0f} s of the database's return; last answers:\n"
        + "\n".join(map(str, outage.record[-10:]))
    )
    assert outage.recovered_after <= RECOVERY_LIMIT
    assert [s.status for s in outage.after] == [200] * 20, "\n".join(map(str, outage.after))
    assert outage.process.poll() is None, "frontdesk serve exited"
    assert outage.process.pid == outage.pid


# --- 2. a worker is killed under load ----------------------------------------------------------------------------


def _proc_children(pid: int) -> set[int]:
    """Child pids of ``pid`` from /proc/*/stat (field 4 is the parent; the name in field 2 may hold spaces)."""
    children = set()
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            children.add(int(Path(stat).parent.name))
    return children


def _workers(pid: int) -> set[int]:
    """uvicorn's worker processes: the children of the server started by multiprocessing's spawn."""
    workers = set()
    for child in _proc_children(pid):
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.add(child)
    return workers


def _wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.fixture(scope="module")
def shared_pg_admin() -> str:
    """The shared PostgreSQL that tests/conftest.py creates fresh databases on; missing it is a failure."""
    admin_url = os.environ.get(PG_ENV, DEFAULT_PG_URL)
    engine = create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        pytest.fail(f"the worker-kill test needs PostgreSQL at {admin_url} ({PG_ENV}): {exc.orig}", pytrace=False)
    finally:
        engine.dispose()
    return admin_url


@dataclass
class Flows:
    """Everything the browsers and the client saw while code flows and refreshes ran, with one worker killed."""

    record: list[Seen]
    codes: list[tuple[str, str]]  # (code, verifier) received at the redirect URI
    refresh_tokens: list[str]  # every refresh token received in a 200
    redeemed: dict[str, int]  # code -> successful exchanges
    killed: int
    killed_at: float
    workers_after: set[int]
    flows_after_kill: int
    after: list[bool]  # a sequential round of complete flows once the scenario ended
    client: tuple[str, str] = ("", "")  # client_id, client_secret


class FlowDriver:
    """One browser and the confidential client: code, exchange, two refreshes, again and again."""

    def __init__(self, issuer: str, client: dict[str, Any], out: Flows, lock: threading.Lock) -> None:
        self.issuer = issuer
        self.client = client
        self.out = out
        self.lock = lock
        self.completed: list[float] = []  # when each full flow ended

    def _token(self, http: httpx.Client, step: str, data: dict[str, str]) -> Seen:
        auth = (self.client["client_id"], self.client["client_secret"])
        seen = _send(self.out.record, step, http, "POST", "/token", data=data, auth=auth)
        if seen.status == 200 and "refresh_token" in (seen.json() or {}):
            with self.lock:
                self.out.refresh_tokens.append(seen.json()["refresh_token"])
        return seen

    def flow(self, http: httpx.Client) -> bool:
        got = Browser(http, self.out.record, self.client["client_id"]).code()
        if got is None:
            return False
        code, verifier = got
        with self.lock:
            self.out.codes.append(got)
        data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
        seen = self._token(http, "exchange", {**data, "redirect_uri": REDIRECT_URI})
        if seen.status != 200:
            return False
        with self.lock:
            self.out.redeemed[code] = self.out.redeemed.get(code, 0) + 1
        refresh = seen.json().get("refresh_token")
        for _ in range(2):
            seen = self._token(http, "refresh", {"grant_type": "refresh_token", "refresh_token": refresh})
            if seen.status != 200:
                return False
            refresh = seen.json()["refresh_token"]
        self.completed.append(time.monotonic())
        return True

    def run(self, stop: threading.Event) -> None:
        with httpx.Client(base_url=self.issuer, timeout=HTTP_TIMEOUT) as http:
            while not stop.is_set():
                self.flow(http)


FLOW_THREADS = 3
KILL_AFTER_FLOWS = 6
RUN_AFTER_KILL = 4.0
FLOWS_LIMIT = 20.0


@pytest.fixture(scope="module")
def worker_kill(shared_pg_admin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flows, Server]]:
    """``frontdesk serve --workers 2`` on a fresh database; one worker gets SIGKILL while flows run."""
    tmp = tmp_path_factory.mktemp("workers")
    (tmp / "home").mkdir()
    database_url = _pg_database(shared_pg_admin)
    process: subprocess.Popen[bytes] | None = None
    try:
        env = _environment(tmp / "home", database_url)
        # The loop below sends a few hundred /authorize requests a minute from one address; the limit is not the
        # subject here, so it gets room (it stays on: every /authorize still writes its counter).
        config = tmp / "frontdesk.toml"
        config.write_text("[rate_limits]\nauthorize_per_ip = [1000000, 60]\n")
        env["FRONTDESK_CONFIG"] = str(config)
        process, server = _serve(env, tmp / "frontdesk.log", "--workers", "2")
        assert _wait_for(lambda: len(_workers(process.pid)) == 2, 20.0), (
            f"expected 2 uvicorn workers under pid {process.pid}, found {_workers(process.pid)}"
        )
        server.cli("user", "create", "--username", "alice", "--password-stdin", stdin=PASSWORD + "\n")
        grants = ("--grant-type", "authorization_code", "--grant-type", "refresh_token")
        client = server.cli(
            *("client", "create", "--name", "Calendar Helper", "--redirect-uri", REDIRECT_URI),
            *(*grants, "--scope", "openid offline_access"),
        )
        remember(HANDLED, PASSWORD, client["client_secret"])
        out = Flows([], [], [], {}, 0, 0.0, set(), 0, [], (client["client_id"], client["client_secret"]))
        lock = threading.Lock()
        drivers = [FlowDriver(server.issuer, client, out, lock) for _ in range(FLOW_THREADS)]
        stop = threading.Event()
        threads = [threading.Thread(target=d.run, args=(stop,), daemon=True) for d in drivers]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        try:
            _wait_for(lambda: sum(len(d.completed) for d in drivers) >= KILL_AFTER_FLOWS, FLOWS_LIMIT / 2)
            before = _workers(process.pid)
            assert before, "no worker to kill"
            out.killed = min(before)
            out.killed_at = time.monotonic()
            os.kill(out.killed, signal.SIGKILL)

            def enough_after() -> bool:
                done = sum(1 for d in drivers for t in d.completed if t > out.killed_at)
                return done >= 2 * KILL_AFTER_FLOWS and time.monotonic() - out.killed_at >= RUN_AFTER_KILL

            _wait_for(enough_after, max(RUN_AFTER_KILL, FLOWS_LIMIT - (time.monotonic() - started)))
        finally:
            stop.set()
            for thread in threads:
                thread.join(JOIN_TIMEOUT)
        out.flows_after_kill = sum(1 for d in drivers for t in d.completed if t > out.killed_at)
        out.workers_after = _workers(process.pid)
        final = FlowDriver(server.issuer, client, out, lock)
        with httpx.Client(base_url=server.issuer, timeout=HTTP_TIMEOUT) as http:
            out.after = [final.flow(http) for _ in range(5)]
        yield out, server
        assert process.poll() is None, f"frontdesk serve died during the test; its log:\n{server.log_text()}"
    finally:
        if process is not None:
            _stop(process)
        _drop_pg_database(shared_pg_admin, database_url)


@pytest.mark.postgres
def test_no_code_redeems_twice_across_a_worker_kill(worker_kill: tuple[Flows, Server]):
    """After a worker's SIGKILL, every code seen redeems at most once: a second redemption is always invalid_grant."""
    flows, server = worker_kill
    assert flows.codes, "no authorization code was issued"
    second: list[str] = []
    redeemed = dict(flows.redeemed)
    with httpx.Client(base_url=server.issuer, timeout=HTTP_TIMEOUT) as http:
        for code, verifier in flows.codes:
            data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
            for attempt in ("first", "second"):
                seen = _send(
                    [], attempt, http, "POST", "/token", data={**data, "redirect_uri": REDIRECT_URI}, auth=flows.client
                )
                if seen.status == 200:
                    redeemed[code] = redeemed.get(code, 0) + 1
                elif attempt == "second" and (
                    seen.status != 400 or (seen.json() or {}).get("error") != "invalid_grant"
                ):
                    second.append(str(seen))
    twice = {code: n for code, n in redeemed.items() if n > 1}
    assert not twice, f"{len(twice)} codes redeemed more than once"
    assert not second, "a second redemption was not invalid_grant:\n" + "\n".join(second[:10])


@pytest.mark.postgres
def test_every_received_refresh_token_is_stored(worker_kill: tuple[Flows, Server]):
    """Every refresh token a client received, across a worker's SIGKILL, has its SHA-256 digest row stored."""
    flows, server = worker_kill
    assert flows.refresh_tokens, "no refresh token was issued"
    url = server.env["FRONTDESK_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            stored = {row[0] for row in conn.execute(text("SELECT digest FROM refresh_tokens"))}
    finally:
        engine.dispose()
    missing = [t[:10] + "…" for t in flows.refresh_tokens if _digest(t) not in stored]
    assert not missing, f"{len(missing)} of {len(flows.refresh_tokens)} received refresh tokens are not stored"


@pytest.mark.postgres
def test_requests_keep_being_served_after_a_worker_kill(worker_kill: tuple[Flows, Server]):
    """A worker's SIGKILL drops at most its own connections: flows keep completing and nothing answers 5xx."""
    flows, server = worker_kill
    assert flows.killed not in flows.workers_after, f"worker {flows.killed} survived SIGKILL"
    assert flows.flows_after_kill > 0, "no flow completed after the kill:\n" + "\n".join(
        str(s) for s in flows.record if s.ended > flows.killed_at
    )
    assert flows.after == [True] * 5, "flows failed after the kill:\n" + "\n".join(map(str, flows.record[-10:]))

    def allowed(seen: Seen) -> bool:
        # A connection cut by the kill is expected; an answer must be what the flow step expects.
        return seen.status is None or seen.status in (200, 303)

    bad = _proper_failures(flows.record, allowed)
    assert not bad, "unexpected answers:\n" + "\n".join(bad[:20]) + f"\nserver log:\n{server.log_text()[-4000:]}"


# --- 3. SQLite on a full disk -----------------------------------------------------------------------------------


HEADROOM_PAGES = 12
MAX_ROUNDS = 300
FULL_LIMIT = 30.0
QUIET_ROUNDS = 3  # rounds in a row without any success: the disk is full for every write the flows make
CHAINS = 3  # refresh chains kept going at once


@dataclass
class FullDisk:
    record: list[Seen] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)  # every code received at the redirect URI
    refresh_tokens: list[str] = field(default_factory=list)  # every refresh token received
    exchanged: int = 0
    stuck: list[str] = field(default_factory=list)  # "code"/"refresh" still held when the disk was full
    after_space: list[Seen] = field(default_factory=list)  # retries of those once the disk has room again
    db: Path = Path()


def _cap_pages(fd: Frontdesk, limit: int) -> Callable[[Any, Any], None]:
    """Every new connection may grow the database file to ``limit`` pages and no further (SQLITE_FULL)."""

    def cap(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA max_page_count = {int(limit)}")
        cursor.close()

    event.listen(fd.engine, "connect", cap)
    fd.engine.dispose()
    return cap


@contextlib.contextmanager
def _serve_in_thread(fd: Frontdesk, port: int) -> Iterator[None]:
    """The app under uvicorn in a thread of this process, so the test can reach into its engine."""
    config = uvicorn.Config(create_app(fd), host="127.0.0.1", port=port, log_config=None, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert _wait_for(lambda: server.started, 10.0), "uvicorn did not start in-process"
        yield
    finally:
        server.should_exit = True
        thread.join(JOIN_TIMEOUT)


class DiskFiller:
    """Code flows, exchanges, refreshes and client_credentials, each code and refresh token used one round late so
    that some are still held when the disk fills up."""

    def __init__(self, http: httpx.Client, out: FullDisk, client_id: str, secret: str) -> None:
        self.http = http
        self.out = out
        self.auth = (client_id, secret)
        self.browser = Browser(http, out.record, client_id)
        self.codes: list[tuple[str, str]] = []  # waiting to be exchanged
        self.refresh: list[str] = []  # the newest token of each chain, waiting to be used

    def token(self, step: str, data: dict[str, str]) -> Seen:
        seen = _send(self.out.record, step, self.http, "POST", "/token", data=data, auth=self.auth)
        if seen.status == 200 and "refresh_token" in (seen.json() or {}):
            self.out.refresh_tokens.append(seen.json()["refresh_token"])
        return seen

    def exchange(self, code: str, verifier: str) -> Seen:
        return self.token("exchange", {"grant_type": "authorization_code", "code": code, "code_verifier": verifier})

    def use(self, refresh: str) -> Seen:
        return self.token("refresh", {"grant_type": "refresh_token", "refresh_token": refresh})

    def round(self) -> None:
        for refresh in list(self.refresh):
            seen = self.use(refresh)
            if seen.status != 503:
                self.refresh.remove(refresh)
            if seen.status == 200:
                self.refresh.append(seen.json()["refresh_token"])
        for code, verifier in list(self.codes):
            seen = self.exchange(code, verifier)
            if seen.status != 503:
                self.codes.remove((code, verifier))
            if seen.status == 200:
                self.out.exchanged += 1
                self.refresh.append(seen.json()["refresh_token"])
        del self.refresh[:-CHAINS]
        got = self.browser.code()
        if got is not None:
            self.out.codes.append(got[0])
            self.codes.append(got)
        _send(
            self.out.record,
            "client_credentials",
            self.http,
            "POST",
            "/token",
            data={"grant_type": "client_credentials", "scope": SCOPE},
            auth=self.auth,
        )

    def retry_stuck(self) -> None:
        """Once there is room again: what was refused for lack of space must work now, nothing half done."""
        for code, verifier in self.codes:
            self.out.stuck.append("code")
            self.out.after_space.append(self.exchange(code, verifier))
        for refresh in self.refresh:
            self.out.stuck.append("refresh")
            self.out.after_space.append(self.use(refresh))


@pytest.fixture(scope="module")
def full_disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FullDisk]:
    """frontdesk in-process on a SQLite file that may grow only a dozen pages, driven until writes fail, then given
    room again."""
    home = tmp_path_factory.mktemp("full-disk")
    db = home / "frontdesk.db"
    port = _free_port()
    settings = Settings(
        home=home,
        database_url=f"sqlite:///{db}",
        issuer=f"http://127.0.0.1:{port}",
        scopes={SCOPE: "See your calendar events"},
        master_key=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    ).validated()
    fd = open_frontdesk(settings)
    fd.users.create("alice", PASSWORD, email="alice@example.com")
    registered, secret = register(
        fd,
        name="Calendar Helper",
        client_id="full-disk-client",
        redirect_uris=[REDIRECT_URI],
        grant_types=["authorization_code", "refresh_token", "client_credentials"],
        scope=f"openid offline_access {SCOPE}",
    )
    assert secret is not None
    remember(HANDLED, PASSWORD, secret)
    with contextlib.closing(sqlite3.connect(db)) as raw:
        pages = int(raw.execute("PRAGMA page_count").fetchone()[0])
    cap = _cap_pages(fd, pages + HEADROOM_PAGES)
    out = FullDisk(db=db)
    try:
        with _serve_in_thread(fd, port), httpx.Client(base_url=settings.issuer, timeout=HTTP_TIMEOUT) as http:
            filler = DiskFiller(http, out, registered.client_id, secret)
            deadline = time.monotonic() + FULL_LIMIT
            quiet = 0
            for _ in range(MAX_ROUNDS):
                if quiet >= QUIET_ROUNDS or time.monotonic() > deadline:
                    break
                before = len(out.record)
                filler.round()
                quiet = 0 if any(s.status in (200, 303) for s in out.record[before:]) else quiet + 1
            event.remove(fd.engine, "connect", cap)
            fd.engine.dispose()
            filler.retry_stuck()
        yield out
    finally:
        fd.engine.dispose()


def test_full_disk_answers_503_not_500(full_disk: FullDisk):
    """When SQLite reports a full disk, requests get a 503 temporarily_unavailable JSON, never a 500 or a trace."""
    assert full_disk.exchanged, "no flow succeeded before the disk filled: the headroom is too small"
    assert any(s.status == 503 for s in full_disk.record), "the database never filled: the headroom is too large"

    def allowed(seen: Seen) -> bool:
        return seen.status is not None and seen.status < 500

    bad = _proper_failures(full_disk.record, allowed)
    assert not bad, f"{len(bad)} improper answers on a full disk:\n" + "\n".join(bad[:20])


def test_full_disk_refusals_leave_codes_and_tokens_usable(full_disk: FullDisk):
    """A code or refresh token refused for lack of space is still unused: it works once the disk has room."""
    assert full_disk.stuck, "the disk filled before any exchange or refresh was refused: nothing to retry"
    assert [s.status for s in full_disk.after_space] == [200] * len(full_disk.stuck), "\n".join(
        f"{kind}: {seen}" for kind, seen in zip(full_disk.stuck, full_disk.after_space, strict=True)
    )


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db)) as raw:
        return raw.execute(sql).fetchall()


def test_full_disk_leaves_no_half_written_rows(full_disk: FullDisk):
    """A write refused for lack of space leaves no half-written state: grants, codes, tokens and audit agree."""
    db = full_disk.db
    assert _rows(db, "PRAGMA integrity_check") == [("ok",)]
    orphans = {
        "grant without its code": "SELECT g.id FROM grants g WHERE NOT EXISTS "
        "(SELECT 1 FROM authorization_codes c WHERE c.grant_id = g.id)",
        "code without its grant": "SELECT c.digest FROM authorization_codes c WHERE NOT EXISTS "
        "(SELECT 1 FROM grants g WHERE g.id = c.grant_id)",
        "consumed code without tokens": "SELECT c.digest FROM authorization_codes c WHERE c.consumed_at IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = c.grant_id)",
        "refresh token without its grant": "SELECT r.digest FROM refresh_tokens r WHERE NOT EXISTS "
        "(SELECT 1 FROM grants g WHERE g.id = r.grant_id)",
        "used refresh token without a successor": "SELECT r.digest FROM refresh_tokens r WHERE r.consumed_at IS NOT "
        "NULL AND NOT EXISTS (SELECT 1 FROM refresh_tokens n WHERE n.grant_id = r.grant_id AND n.digest <> r.digest "
        "AND n.created_at >= r.consumed_at)",
    }
    found = {name: _rows(db, sql) for name, sql in orphans.items()}
    assert not any(found.values()), {name: rows for name, rows in found.items() if rows}
    # Each consumed code and each used refresh token has exactly the one audit event its transaction wrote.
    events: dict[tuple[str, str], int] = {}
    for event_name, detail in _rows(db, "SELECT event, detail FROM audit_events"):
        grant_id = json.loads(detail).get("grant_id")
        if grant_id and event_name in ("token.issued", "token.refreshed"):
            events[(event_name, grant_id)] = events.get((event_name, grant_id), 0) + 1
    consumed_codes = _rows(db, "SELECT grant_id FROM authorization_codes WHERE consumed_at IS NOT NULL")
    used_refresh = _rows(db, "SELECT grant_id, COUNT(*) FROM refresh_tokens WHERE consumed_at IS NOT NULL GROUP BY 1")
    assert {g: n for (e, g), n in events.items() if e == "token.issued"} == {g: 1 for (g,) in consumed_codes}
    assert {g: n for (e, g), n in events.items() if e == "token.refreshed"} == dict(used_refresh)


def test_full_disk_never_hands_out_unstored_secrets(full_disk: FullDisk):
    """Every code and refresh token a client received on the filling disk is stored (by its SHA-256 digest)."""
    codes = {d for (d,) in _rows(full_disk.db, "SELECT digest FROM authorization_codes")}
    refresh = {d for (d,) in _rows(full_disk.db, "SELECT digest FROM refresh_tokens")}
    assert full_disk.codes
    assert all(_digest(c) in codes for c in full_disk.codes)
    assert all(_digest(t) in refresh for t in full_disk.refresh_tokens)
