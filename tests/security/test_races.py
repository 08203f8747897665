"""Races across processes on PostgreSQL (issue 3 §2): two ``frontdesk serve`` processes on separate ports share one
fresh database, one master key and one issuer, so either may finish what the other began. Single use must hold
across them (one compare-and-set statement per code and refresh token), a lost race must revoke the family, and a
storm of real sign-ins and refreshes over both must leave exactly the rows it should."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import secrets
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import create_engine, text

from conftest import PG_ENV, _drop_pg_database, _pg_database, csrf_of, pkce
from frontdesk.secret import digest
from frontdesk.storage.db import now, open_engine, transaction
from frontdesk.storage.people import consented_scope, record_consent
from servers import START_ATTEMPTS, START_TIMEOUT, Server, _environment, _free_port, _stop

# Cross-process races on one shared PostgreSQL database.
pytestmark = pytest.mark.postgres

HTTP_TIMEOUT = httpx.Timeout(20.0)
KEEPALIVE = 1.0  # seconds a client keeps an idle connection; uvicorn closes them after 5
ROUNDS = 20  # codes (and refresh tokens) raced, one pair of requests each
FLOWS = 300  # sign-ins through the real forms in the storm
CONCURRENCY = 30  # flows in flight at once
REFRESHES = 2  # rotations per flow, concurrent with the other flows' sign-ins
STORM_BUDGET = 60.0  # seconds for the whole storm
MAX_HOPS = 12  # redirects and forms in one sign-in
SCOPE = "openid offline_access"
REDIRECT_URI = "https://app.example/cb"  # never fetched: the code is read from the Location header
PASSWORD = "correct horse battery staple"
# One client-side TLS context for every httpx client: building one per client costs more than the request.
_TLS = ssl.create_default_context()


@dataclass(frozen=True)
class Pair:
    """Two ``frontdesk serve`` processes sharing a database, a master key and an issuer."""

    issuer: str
    bases: tuple[str, str]
    database_url: str
    admin: Server  # runs the CLI against the shared database

    def token_url(self, i: int) -> str:
        return f"{self.bases[i % 2]}/token"


@dataclass(frozen=True)
class App:
    client_id: str
    secret: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.client_id, self.secret)


def _postgres_admin_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        # Never a skip: a race that goes untested on PostgreSQL is a race nobody has proven absent.
        ci = " (CI=true)" if os.environ.get("CI") == "true" else ""
        pytest.fail(f"{PG_ENV} is unset{ci}: the cross-process races need PostgreSQL, e.g. {PG_ENV}=postgresql://...")
    return url


def _ready(process: subprocess.Popen[bytes], base: str, issuer: str, log: Path, deadline: float) -> bool:
    """True once this process answers discovery with the shared issuer; False if it died (e.g. its port was taken)."""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            response = httpx.get(f"{base}/.well-known/openid-configuration", timeout=2.0)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        assert response.status_code == 200, f"discovery answered {response.status_code}: {response.text}"
        assert response.json()["issuer"] == issuer
        return True
    pytest.fail(f"frontdesk did not answer at {base} within {START_TIMEOUT:.0f} s; its log:\n{log.read_text()}")


def _error_lines(log: Path) -> list[str]:
    text_ = log.read_text(errors="replace") if log.exists() else ""
    return [line for line in text_.splitlines() if re.search(r'"level": ?"(error|critical)"|Traceback', line)]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Both processes, started together on a fresh database (so they also race through migrations and the first
    keys), each with its own home; stopped, checked for logged errors and the database dropped afterwards."""
    admin_url = _postgres_admin_url()
    database_url = _pg_database(admin_url)
    tmp = tmp_path_factory.mktemp("races")
    master_key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    logs = (tmp / "a.log", tmp / "b.log")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(START_ATTEMPTS):
            ports = (_free_port(), _free_port())
            if ports[0] == ports[1]:
                continue
            issuer = f"http://127.0.0.1:{ports[0]}"
            envs = []
            for name in ("a", "b"):
                home = tmp / f"home-{name}"
                home.mkdir(exist_ok=True)
                env = _environment(home, database_url)
                env.update({"FRONTDESK_MASTER_KEY": master_key, "FRONTDESK_ISSUER": issuer})
                envs.append(env)
            processes = []
            for port, env, log in zip(ports, envs, logs, strict=True):
                with log.open("ab") as sink:
                    processes.append(
                        subprocess.Popen(
                            [sys.executable, "-m", "frontdesk", "serve", "--host", "127.0.0.1", "--port", str(port)],
                            env=env,
                            stdin=subprocess.DEVNULL,
                            stdout=sink,
                            stderr=subprocess.STDOUT,
                        )
                    )
            deadline = time.monotonic() + START_TIMEOUT
            bases = (f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}")
            if all(_ready(p, base, issuer, log, deadline) for p, base, log in zip(processes, bases, logs, strict=True)):
                break
            for process in processes:  # one died, most likely on a port taken meanwhile: both start again
                _stop(process)
        else:
            pytest.fail(
                f"two frontdesk processes did not both start, {START_ATTEMPTS} times; their logs:\n"
                + "\n".join(log.read_text(errors="replace") for log in logs if log.exists())
            )
        yield Pair(issuer, bases, database_url, Server(issuer=issuer, env=envs[0], backend="postgresql", log=logs[0]))
        for name, process, log in zip("ab", processes, logs, strict=True):
            assert process.poll() is None, f"frontdesk {name} died during the tests; its log:\n{log.read_text()}"
        errors = [line for log in logs for line in _error_lines(log)]
        assert not errors, "frontdesk logged errors:\n" + "\n".join(errors[:20])
    finally:
        for process in processes:
            _stop(process)
        _drop_pg_database(admin_url, database_url)


@pytest.fixture(scope="module")
def person(pair: Pair) -> str:
    """A person created with ``frontdesk user create --password-stdin``; returns the username."""
    created = pair.admin.cli("user", "create", "--username", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    return str(created["username"])


@pytest.fixture(scope="module")
def storm_person(pair: Pair) -> str:
    """A second person from ``frontdesk user create``, whose password hash is then re-encoded with argon2id at a low
    cost: the server verifies with whatever parameters a hash carries, and hundreds of sign-ins at the default cost
    (about 0.2 s of CPU each) would spend the time budget on hashing rather than on the races under test."""
    created = pair.admin.cli("user", "create", "--username", "storm", "--password-stdin", stdin=PASSWORD + "\n")
    cheap = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    engine = create_engine(pair.database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as conn:
            updated = conn.execute(
                text("UPDATE users SET password_hash = :h WHERE username = :u"), {"h": cheap, "u": created["username"]}
            )
            assert updated.rowcount == 1
    finally:
        engine.dispose()
    return str(created["username"])


def _register(pair: Pair, name: str) -> App:
    created = pair.admin.cli(
        "client",
        "create",
        "--name",
        name,
        "--redirect-uri",
        REDIRECT_URI,
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
        "--scope",
        SCOPE,
    )
    return App(created["client_id"], created["client_secret"])


@pytest.fixture(scope="module")
def code_app(pair: Pair) -> App:
    return _register(pair, "Code racer")


@pytest.fixture(scope="module")
def refresh_app(pair: Pair) -> App:
    return _register(pair, "Refresh racer")


@pytest.fixture(scope="module")
def storm_app(pair: Pair) -> App:
    return _register(pair, "Storm")


def _client() -> httpx.AsyncClient:
    # An idle connection is dropped well before uvicorn's 5 s keep-alive timeout would close it under a request
    # just being sent: that is a client's race (RFC 9112 §9.3.1), not the server's.
    limits = httpx.Limits(keepalive_expiry=KEEPALIVE)
    return httpx.AsyncClient(timeout=HTTP_TIMEOUT, limits=limits, follow_redirects=False, verify=_TLS)


def _query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


class Violation(Exception):
    """A response that is neither a success nor an RFC 6749 error, or a broken connection."""


class Browser:
    """One person's browser: its own cookies, every request sent to the process after the previous one's."""

    def __init__(self, pair: Pair, http: httpx.AsyncClient, username: str, turn: int = 0) -> None:
        self.pair = pair
        self.http = http
        self.username = username
        self.turn = turn

    async def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        base = self.pair.bases[self.turn % 2]
        self.turn += 1
        try:
            response = await self.http.request(method, base + path, **kwargs)
        except httpx.TransportError as exc:
            raise Violation(f"{method} {path} on {base}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500:
            raise Violation(f"{method} {path} on {base}: {response.status_code} {response.text[:500]}")
        return response

    async def code(self, app: App, **extra: str) -> tuple[str, str]:
        """/authorize through sign-in and consent, as far as each is needed; the code and its PKCE verifier."""
        verifier, challenge = pkce()
        state = secrets.token_urlsafe(8)
        params = {
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": SCOPE,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **extra,
        }
        response = await self.send("GET", "/authorize", params=params)
        for _ in range(MAX_HOPS):
            location = response.headers.get("location", "")
            if response.status_code == 303 and location.startswith("/"):
                response = await self.send("GET", location)
            elif response.status_code == 200 and 'name="password"' in response.text:
                response = await self.send(
                    "POST",
                    _action(response.text),
                    data={"csrf": csrf_of(response.text), "username": self.username, "password": PASSWORD},
                )
            elif response.status_code == 200 and 'value="allow"' in response.text:
                response = await self.send(
                    "POST", _action(response.text), data={"csrf": csrf_of(response.text), "decision": "allow"}
                )
            else:
                break
        location = response.headers.get("location", "")
        assert response.status_code == 303, f"{response.status_code}: {response.text[:500]}"
        assert location.startswith(REDIRECT_URI + "?"), location
        answer = _query(location)
        assert answer.get("state") == state, answer
        assert answer.get("iss") == self.pair.issuer, answer
        assert "code" in answer, answer
        return answer["code"], verifier


def _action(html: str) -> str:
    match = re.search(r'<form method="post" action="([^"]+)"', html)
    assert match, html
    return match.group(1)


async def _signed_in(pair: Pair, http: httpx.AsyncClient, username: str, app: App) -> Browser:
    """A browser that has signed in and consented once, so that /authorize answers at once with a code."""
    browser = Browser(pair, http, username)
    await browser.code(app)
    for base in pair.bases:  # warm keep-alive connections to both, so a raced pair leaves together
        (await http.get(f"{base}/.well-known/openid-configuration")).raise_for_status()
    return browser


def _redeem(code: str, verifier: str) -> dict[str, str]:
    return {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier}


def _refresh(token: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": token}


async def _both(pair: Pair, http: httpx.AsyncClient, app: App, data: dict[str, str]) -> list[httpx.Response]:
    """The same token request sent to both processes at once."""
    return list(await asyncio.gather(*(http.post(pair.token_url(i), data=data, auth=app.auth) for i in (0, 1))))


def _one_winner(responses: list[httpx.Response]) -> dict[str, Any]:
    """Exactly one 200, the other 400 invalid_grant; the winner's token response."""
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 400], [f"{r.status_code} {r.text[:300]}" for r in responses]
    winner, loser = sorted(responses, key=lambda r: r.status_code)
    assert loser.json()["error"] == "invalid_grant", loser.text
    body: dict[str, Any] = winner.json()
    assert body.get("access_token"), body
    assert body.get("refresh_token"), body
    return body


async def test_a_code_redeemed_at_once_on_both_processes_is_redeemed_once_and_its_grant_revoked(
    pair: Pair, person: str, code_app: App
):
    """The same code sent to both processes at once is redeemed exactly once, and the replay revokes the winner's
    access and refresh tokens."""
    async with _client() as http:
        browser = await _signed_in(pair, http, person, code_app)
        for round_ in range(ROUNDS):
            code, verifier = await browser.code(code_app)
            won = _one_winner(await _both(pair, http, code_app, _redeem(code, verifier)))
            for base in pair.bases:
                introspected = await http.post(
                    f"{base}/introspect", data={"token": won["access_token"]}, auth=code_app.auth
                )
                assert introspected.status_code == 200, introspected.text
                assert introspected.json() == {"active": False}, (round_, base, introspected.json())
            refreshed = await http.post(pair.token_url(round_), data=_refresh(won["refresh_token"]), auth=code_app.auth)
            assert refreshed.status_code == 400, refreshed.text
            assert refreshed.json()["error"] == "invalid_grant", refreshed.text


async def test_a_refresh_token_presented_at_once_to_both_processes_rotates_once_and_its_family_is_revoked(
    pair: Pair, person: str, refresh_app: App
):
    """The same refresh token sent to both processes at once rotates exactly once, and the reuse revokes the family,
    so the winner's new refresh token is refused with invalid_grant."""
    async with _client() as http:
        browser = await _signed_in(pair, http, person, refresh_app)
        for round_ in range(ROUNDS):
            code, verifier = await browser.code(refresh_app)
            issued = await http.post(pair.token_url(round_), data=_redeem(code, verifier), auth=refresh_app.auth)
            assert issued.status_code == 200, issued.text
            won = _one_winner(await _both(pair, http, refresh_app, _refresh(issued.json()["refresh_token"])))
            again = await http.post(
                pair.token_url(round_ + 1), data=_refresh(won["refresh_token"]), auth=refresh_app.auth
            )
            assert again.status_code == 400, again.text
            assert again.json()["error"] == "invalid_grant", again.text


def test_a_first_consent_recorded_at_once_by_two_processes_succeeds_for_both_and_keeps_both_scopes(pair: Pair):
    """Two transactions on separate engines, as in two processes, that record one person's first consent to one
    client at once both commit, and the consent holds the scopes of both."""
    engines = [open_engine(pair.database_url) for _ in range(2)]
    user, client = "u-" + secrets.token_hex(8), "c-" + secrets.token_hex(8)
    inserted, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        with transaction(engines[0]) as conn:
            record_consent(conn, user, client, ("openid",), now())
            inserted.set()
            release.wait(timeout=20)  # commit only once the second is waiting on this row

    def second() -> None:
        assert inserted.wait(timeout=20)
        with transaction(engines[1]) as conn:
            record_consent(conn, user, client, ("offline_access",), now())

    def guarded(run: Callable[[], None]) -> Callable[[], None]:
        def wrapper() -> None:
            try:
                run()
            except BaseException as exc:
                errors.append(exc)
                inserted.set()

        return wrapper

    threads = [threading.Thread(target=guarded(run)) for run in (first, second)]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        with engines[0].connect() as watcher:
            while time.monotonic() < deadline and not errors:
                waiting = watcher.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                ).scalar_one()
                watcher.rollback()  # pg_stat_activity is a snapshot taken once per transaction
                if waiting:
                    break
                time.sleep(0.05)
            else:
                errors.append(AssertionError("the second transaction never waited on the first one's row"))
        release.set()
        for thread in threads:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in threads)
        assert not errors, errors
        with transaction(engines[0], readonly=True) as conn:
            assert sorted(consented_scope(conn, user, client)) == ["offline_access", "openid"]
    finally:
        release.set()
        for engine in engines:
            engine.dispose()


# --- the storm ----------------------------------------------------------------------------------------------------


@dataclass
class Storm:
    """What the storm did: the flows that completed and every refresh token they were issued (newest last)."""

    app: App
    completed: int = 0
    refresh_tokens: list[list[str]] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)  # 5xx, broken connections, malformed errors
    failures: list[str] = field(default_factory=list)  # flows that ended early, on a spec error or otherwise
    elapsed: float = 0.0
    timed_out: bool = False


async def _token(browser: Browser, app: App, data: dict[str, str]) -> dict[str, Any]:
    """The token endpoint's 200 body; an RFC 6749 §5.2 error raises AssertionError, anything else is a Violation."""
    response = await browser.send("POST", "/token", data=data, auth=app.auth)
    try:
        body = response.json()
    except ValueError:
        raise Violation(f"/token answered {response.status_code} without JSON: {response.text[:300]}") from None
    if response.status_code == 200:
        return dict(body)
    if not (400 <= response.status_code < 500 and isinstance(body, dict) and isinstance(body.get("error"), str)):
        raise Violation(f"/token answered {response.status_code} {body!r:.300}")
    raise AssertionError(f"/token answered {response.status_code} {body['error']}: {body.get('error_description')}")


async def _flow(pair: Pair, username: str, storm: Storm, index: int, gate: asyncio.Semaphore) -> None:
    """One person's sign-in in a fresh browser (authorize → login → consent → code), the code exchanged, and the
    refresh token rotated; the processes take turns request by request."""
    async with gate, _client() as http:
        browser = Browser(pair, http, username, turn=index)
        try:
            code, verifier = await browser.code(storm.app, prompt="consent")
            tokens = [(await _token(browser, storm.app, _redeem(code, verifier)))["refresh_token"]]
            for _ in range(REFRESHES):
                tokens.append((await _token(browser, storm.app, _refresh(tokens[-1])))["refresh_token"])
        except Violation as exc:
            storm.violations.append(f"flow {index}: {exc}")
            return
        except (AssertionError, KeyError) as exc:
            storm.failures.append(f"flow {index}: {type(exc).__name__}: {exc}")
            return
        storm.codes.append(code)
        storm.refresh_tokens.append(tokens)
        storm.completed += 1


async def _run_storm(pair: Pair, username: str, storm: Storm) -> None:
    gate = asyncio.Semaphore(CONCURRENCY)
    started = time.monotonic()
    tasks = [asyncio.ensure_future(_flow(pair, username, storm, i, gate)) for i in range(FLOWS)]
    try:
        async with asyncio.timeout(STORM_BUDGET):
            await asyncio.gather(*tasks)
    except TimeoutError:
        storm.timed_out = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    storm.elapsed = time.monotonic() - started


@pytest.fixture(scope="module")
def storm(pair: Pair, storm_person: str, storm_app: App) -> Storm:
    """The storm, run once for the tests that examine it."""
    result = Storm(storm_app)
    asyncio.run(_run_storm(pair, storm_person, result))
    return result


@pytest.fixture(scope="module")
def rows(pair: Pair, storm: Storm) -> dict[str, list[Any]]:
    """The storm client's grants, codes and refresh tokens, and every digest in the database, read after the storm."""
    engine = create_engine(pair.database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    client = {"c": storm.app.client_id}
    try:
        with engine.connect() as conn:
            return {
                "grants": list(conn.execute(text("SELECT id, revoked_at FROM grants WHERE client_id = :c"), client)),
                "codes": list(
                    conn.execute(
                        text("SELECT digest, consumed_at FROM authorization_codes WHERE client_id = :c"), client
                    )
                ),
                "refresh": list(
                    conn.execute(
                        text("SELECT digest, grant_id, consumed_at FROM refresh_tokens WHERE client_id = :c"), client
                    )
                ),
                "digests": list(
                    conn.execute(
                        text(
                            "SELECT digest FROM refresh_tokens UNION ALL SELECT digest FROM authorization_codes "
                            "UNION ALL SELECT digest FROM sessions UNION ALL SELECT digest FROM device_codes"
                        )
                    )
                ),
            }
    finally:
        engine.dispose()


def test_a_storm_of_sign_ins_and_refreshes_over_both_processes_gets_only_successes_or_spec_errors(storm: Storm):
    """Hundreds of concurrent sign-ins through the real forms and their refreshes, spread over both processes, get
    no 5xx and no broken connection, and finish within the time budget."""
    assert not storm.violations, f"{len(storm.violations)} violations:\n" + "\n".join(storm.violations[:20])
    assert not storm.timed_out, f"the storm took over {STORM_BUDGET:.0f} s; {storm.completed}/{FLOWS} flows done"


def test_every_flow_of_the_storm_completed_with_exactly_one_grant(storm: Storm, rows: dict[str, list[Any]]):
    """Every sign-in of the storm completed, and the database holds one grant and one consumed code per flow."""
    assert not storm.failures, f"{len(storm.failures)} flows failed:\n" + "\n".join(storm.failures[:20])
    assert storm.completed == FLOWS
    assert len(rows["grants"]) == storm.completed
    assert all(revoked is None for _, revoked in rows["grants"])
    assert sorted(d for d, _ in rows["codes"]) == sorted(digest(c) for c in storm.codes)
    assert all(consumed is not None for _, consumed in rows["codes"])


def test_after_the_storm_each_live_family_has_exactly_one_unconsumed_refresh_token(
    storm: Storm, rows: dict[str, list[Any]]
):
    """As many unconsumed refresh tokens as live families, one in each, and it is the newest one issued."""
    live = {grant_id for grant_id, revoked in rows["grants"] if revoked is None}
    unconsumed = [(d, grant_id) for d, grant_id, consumed in rows["refresh"] if consumed is None]
    assert len(unconsumed) == len(live) == storm.completed
    assert sorted(grant_id for _, grant_id in unconsumed) == sorted(live)
    assert {d for d, _ in unconsumed} == {digest(tokens[-1]) for tokens in storm.refresh_tokens}


def test_after_the_storm_every_issued_refresh_token_rests_once_as_its_digest(storm: Storm, rows: dict[str, list[Any]]):
    """No digest is duplicated anywhere, and every refresh token the storm was issued is in refresh_tokens."""
    every = [d for (d,) in rows["digests"]]
    assert len(every) == len(set(every)), "duplicated digests"
    issued = [digest(t) for tokens in storm.refresh_tokens for t in tokens]
    assert len(issued) == len(set(issued)) == storm.completed * (REFRESHES + 1)
    assert sorted(d for d, _, _ in rows["refresh"]) == sorted(issued)
