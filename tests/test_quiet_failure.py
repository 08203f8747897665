"""Failing quietly (issue 11, item 12): an outage logs one line per kind of error per interval, with a count of the
repeats it kept back, not a traceback per retry; a home that cannot be used is one line on stderr and exit status 1.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from conftest import PG_ENV, remember
from frontdesk.log_filters import RepeatFilter
from frontdesk.logs import configure_logging
from frontdesk.storage import audit, wal
from frontdesk.storage.db import open_engine
from servers import _environment, _free_port, serving

CLI_TIMEOUT = 60.0
RETRY_SECONDS = 1.5  # the audit writer retries every 0.2 s: some 7 attempts
OUTAGE_SECONDS = 2.5
OUTAGE_ATTEMPTS = 3
AUDIT_RETRY = '"msg":"audit batch not written; will retry"'  # lines are compact JSON (logs.py)
# Every secret these tests handle joins the suite-wide scan of the run's DEBUG log (tests/conftest.py).
HANDLED: set[str] = set()
PR_CAPBSET_DROP = 24  # <linux/prctl.h>
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2  # <linux/capability.h>


@contextlib.contextmanager
def _configured_logging() -> Iterator[io.StringIO]:
    """``configure_logging`` as ``frontdesk serve`` runs it, writing into a buffer; the test's logging restored."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    named = {n: logging.getLogger(n) for n in ("uvicorn", "uvicorn.error", "uvicorn.access", "sqlalchemy", "httpcore")}
    saved_named = {n: (lg.handlers[:], lg.propagate, lg.level) for n, lg in named.items()}
    stream = io.StringIO()
    stderr, sys.stderr = sys.stderr, stream
    try:
        configure_logging("INFO")
    finally:
        sys.stderr = stderr
    try:
        yield stream
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        for name, (handlers, propagate, lvl) in saved_named.items():
            named[name].handlers[:] = handlers
            named[name].propagate = propagate
            named[name].setLevel(lvl)


def _lines(stream: io.StringIO, msg: str) -> list[dict[str, object]]:
    out = []
    for line in stream.getvalue().splitlines():
        data = json.loads(line)
        if data.get("msg") == msg:
            out.append(data)
    return out


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens there once the socket is closed


def test_repeats_within_the_interval_are_counted_not_written():
    """The first record of a kind passes; repeats within the interval are held back and counted on the next line
    of that kind; another kind passes at once; INFO is never held back."""
    clock = [0.0]
    repeat = RepeatFilter(interval=60.0, clock=lambda: clock[0])

    def record(msg: str, level: int = logging.ERROR) -> logging.LogRecord:
        return logging.LogRecord("frontdesk.audit", level, __file__, 1, msg, (), None)

    assert repeat.filter(record("audit batch not written; will retry"))
    for _ in range(5):
        clock[0] += 0.2
        assert not repeat.filter(record("audit batch not written; will retry"))
    assert repeat.filter(record("WAL checkpoint failed; will retry"))
    assert all(repeat.filter(record("audit", logging.INFO)) for _ in range(3))
    clock[0] = 61.0
    later = record("audit batch not written; will retry")
    assert repeat.filter(later)
    assert later.repeats_suppressed == 5  # type: ignore[attr-defined]


def test_the_audit_writer_logs_one_traceback_per_interval_during_an_outage():
    """With the database unreachable, the audit writer retries every 0.2 s but logs its traceback once."""
    engine = open_engine(f"postgresql://frontdesk@127.0.0.1:{_closed_port()}/gone")
    try:
        with _configured_logging() as stream:
            writer = audit.AuditWriter(engine)
            assert writer.add((0, "token.issued", "success", "c", None, None, "{}"))
            time.sleep(RETRY_SECONDS)
            writer._closed = True
            writer._wake.set()
            writer._thread.join(timeout=10)
        failures = _lines(stream, "audit batch not written; will retry")
        assert len(failures) == 1, f"{len(failures)} lines in {RETRY_SECONDS} s"
        assert "Traceback" in str(failures[0]["exc"])
    finally:
        engine.dispose()


def test_the_wal_checkpointer_logs_one_traceback_per_interval_when_it_fails(tmp_path: Path):
    """A checkpointer that cannot open its database fails every 0.25 s but says so once."""
    database = tmp_path / "gone" / "frontdesk.db"
    engine = open_engine(f"sqlite:///{database}")
    shutil.rmtree(database.parent)  # no directory: SQLite cannot open (or create) the file
    try:
        with _configured_logging() as stream:
            checkpointer = wal.Checkpointer(engine)
            time.sleep(RETRY_SECONDS)
            checkpointer.close()
        assert len(_lines(stream, "WAL checkpoint failed; will retry")) == 1
    finally:
        engine.dispose()


def _token_load(issuer: str, auth: tuple[str, str], stop: threading.Event) -> None:
    with httpx.Client(base_url=issuer, timeout=30.0) as http:
        while not stop.is_set():
            with contextlib.suppress(httpx.TransportError):
                http.post("/token", data={"grant_type": "client_credentials"}, auth=auth)
            time.sleep(0.005)


@contextlib.contextmanager
def _refusing_connections(admin_url: str, database: str) -> Iterator[None]:
    """The database refuses new connections and its open ones are ended, until the block is left."""
    admin = create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS false'))
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"), {"d": database}
            )
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS true'))
        admin.dispose()


@pytest.mark.postgres
def test_a_served_outage_logs_the_audit_retry_once_not_every_0_2_s(tmp_path: Path):
    """Tokens issued just before the database stops leave audit events queued; the writer retries them every 0.2 s
    through the outage, and the server's log says so once."""
    with serving("postgresql", tmp_path) as server:
        server.cli("scope", "create", "reports.read", "--description", "Read your reports")
        client = server.cli(
            "client", "create", "--name", "Job", "--grant-type", "client_credentials", "--scope", "reports.read"
        )
        remember(HANDLED, client["client_secret"])
        database = server.env["FRONTDESK_DATABASE_URL"].rsplit("/", 1)[1]
        stop = threading.Event()
        load = [
            threading.Thread(
                target=_token_load, args=(server.issuer, (client["client_id"], client["client_secret"]), stop)
            )
            for _ in range(4)
        ]
        for thread in load:
            thread.start()
        failures: list[str] = []
        try:
            # Whether a batch is queued at the moment of the cut is a matter of timing; under this load it nearly
            # always is. A cut that caught none is repeated, a few times at most.
            for _ in range(OUTAGE_ATTEMPTS):
                time.sleep(1.0)
                with _refusing_connections(os.environ[PG_ENV], database):
                    time.sleep(OUTAGE_SECONDS)
                failures = [line for line in server.log_text().splitlines() if AUDIT_RETRY in line]
                if failures:
                    break
        finally:
            stop.set()
            for thread in load:
                thread.join(timeout=60)
        assert failures, "no audit batch was pending at any cut: the outage was never observed"
        assert len(failures) == 1, f"{len(failures)} lines in {OUTAGE_SECONDS} s of outage"
        assert "Traceback" in failures[0]


# --- a home that cannot be used ----------------------------------------------------------------------------------


def _serve_in(home: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = _environment(home, None)
    command = [sys.executable, "-m", "frontdesk", "serve", "--host", "127.0.0.1", "--port", str(_free_port())]
    try:
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT, **kwargs)  # type: ignore[call-overload, no-any-return]
    except subprocess.TimeoutExpired:
        pytest.fail(f"frontdesk serve started with FRONTDESK_HOME {home}")


def _assert_one_clear_line(done: subprocess.CompletedProcess[str], home: Path) -> None:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("frontdesk: "), done.stderr
    assert str(home) in last


@pytest.mark.subprocess
def test_a_home_whose_parent_cannot_exist_is_one_line_and_exit_1(tmp_path: Path):
    """FRONTDESK_HOME under a regular file (a parent that cannot be made): one line naming it, status 1."""
    (tmp_path / "a-file").write_text("")
    home = tmp_path / "a-file" / "home"
    _assert_one_clear_line(_serve_in(home), home)


def _without_dac_override() -> None:
    """In the child, before exec: drop the capabilities that let root write where the file modes say no."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.mark.subprocess
def test_a_read_only_home_is_one_line_and_exit_1(tmp_path: Path):
    """FRONTDESK_HOME that the server may not write to: one line naming it, status 1."""
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o555)
    kwargs: dict[str, object] = {}
    if os.geteuid() == 0:  # root writes anywhere unless it gives up the capability to
        kwargs["preexec_fn"] = _without_dac_override
    try:
        done = _serve_in(home, **kwargs)
    except subprocess.SubprocessError as exc:  # the container forbids dropping capabilities
        pytest.skip(f"cannot run as a user without write access to {home}: {exc}")
    finally:
        home.chmod(0o755)
    _assert_one_clear_line(done, home)
