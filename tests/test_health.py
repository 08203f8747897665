"""``/healthz`` (the process answers) and ``/readyz`` (database, migrations, signing keys; 503 naming what failed,
never a stack trace), on both databases."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from frontdesk.admin import readiness
from frontdesk.core import Frontdesk
from frontdesk.storage import db
from frontdesk.storage.schema_revision import shipped_revisions


@pytest.fixture
def unreachable(fd: Frontdesk, backend: str) -> Iterator[None]:
    """The frontdesk's engine pointed at a database that is not there (restored for the fixture's own checks)."""
    if backend == "sqlite":
        gone = create_engine("sqlite:////nonexistent-frontdesk-dir/frontdesk.db")
    else:
        gone = create_engine(db.normalise_url("postgresql://postgres@127.0.0.1:1/test"))
    engine, fd.engine = fd.engine, gone
    yield
    fd.engine = engine
    gone.dispose()


def _set_revision(engine: Engine, revision: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})


async def test_healthz_answers_without_the_database(http, unreachable):
    response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["cache-control"] == "no-store"


async def test_readyz_is_ready_with_the_database_migrations_and_keys(http):
    response = await http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "signing_keys": "ok"},
    }


async def test_readyz_fails_when_the_database_is_unreachable(http, unreachable):
    response = await http.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"] == "unreachable"
    assert "Traceback" not in response.text
    assert "127.0.0.1:1" not in response.text


async def test_readyz_fails_when_migrations_are_behind(http, fd):
    (head,) = shipped_revisions()
    _set_revision(fd.engine, "0001")
    try:
        response = await http.get("/readyz")
    finally:
        _set_revision(fd.engine, head)
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["migrations"].startswith("behind: the database is at 0001, this version needs " + head)


async def test_readyz_fails_when_the_database_is_ahead_of_this_version(http, fd):
    (head,) = shipped_revisions()
    _set_revision(fd.engine, "9999")
    try:
        response = await http.get("/readyz")
    finally:
        _set_revision(fd.engine, head)
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"].startswith("ahead: the database is at 9999")


async def test_readyz_fails_without_signing_keys(http, fd):
    """A database without an active key for the configured algorithms: the key ring cannot sign."""
    with fd.engine.begin() as conn:
        conn.execute(text("DELETE FROM signing_keys"))
    response = await http.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["signing_keys"] == "no active ES256 or RS256 signing key"


async def test_a_database_that_does_not_answer_is_not_waited_for(fd, monkeypatch):
    """A check stuck on the database answers "not ready" within the timeout, and while it is stuck the next probe
    answers at once rather than stacking a second thread behind it."""
    release = threading.Event()

    def stuck(engine: Engine) -> frozenset[str]:
        release.wait(10)
        raise ConnectionError("gave up")

    monkeypatch.setattr(readiness, "applied_revisions", stuck)
    try:
        first = await readiness.probe(fd, timeout=0.2)
        second = await readiness.probe(fd, timeout=5)
    finally:
        release.set()
        assert readiness._checking.acquire(timeout=10)  # the stuck check has ended
        readiness._checking.release()
    assert first.checks["database"] == "no answer (not within 0.2 s)"
    assert second.checks["database"] == "no answer (an earlier check is still waiting)"
    assert not first.ready
    assert not second.ready
