"""Logs for people and for machines (log_text.py): text lines on a terminal, JSON lines otherwise or when asked,
the same masking in both; uvicorn's and alembic's start-up chatter one line each; no ``color_message``."""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine

from frontdesk import log_text
from frontdesk.cli import _parser
from frontdesk.cli.context import settings_of
from frontdesk.log_text import TextLines, UvicornStartup, folded_migrations, line_writer, text_line, wants_text
from frontdesk.logs import JsonFormatter, LineHandler, LineWriter, render, write_line
from frontdesk.storage.db import MIGRATIONS, migrate
from frontdesk.storage.schema_revision import known_revisions, shipped_revisions


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("log_format", "stream", "text"),
    [
        ("auto", Terminal(), True),
        ("auto", io.StringIO(), False),
        ("json", Terminal(), False),
        ("text", io.StringIO(), True),
    ],
)
def test_text_on_a_terminal_json_otherwise_unless_asked(log_format, stream, text):
    assert wants_text(log_format, stream) is text
    assert type(line_writer(stream, log_format)) is (TextLines if text else LineWriter)


def test_a_text_line_names_time_level_logger_message_and_fields():
    out = {"ts": 1796554952.391, "level": "info", "logger": "frontdesk.audit", "msg": "audit"}
    out |= {"event": "token.issued", "client_id": "app", "user_id": None, "detail_scope": "a b", "n": [1, 2]}
    assert text_line(render(out)) == (
        '11:02:32.391 INFO    frontdesk.audit: audit event=token.issued client_id=app detail_scope="a b" n=[1,2]'
    )


def test_a_text_line_masks_what_the_json_line_masks():
    secret = "fd_rt_" + "A" * 40
    line = text_line(render({"ts": 1.0, "level": "info", "logger": "x", "msg": f"got {secret}", "token": secret}))
    assert secret not in line
    assert "fd_***" in line


def test_a_traceback_follows_its_text_line():
    line = text_line(render({"ts": 1.0, "level": "error", "logger": "x", "msg": "failed", "exc": "Traceback\n  boom"}))
    assert line.splitlines() == ["00:00:01.000 ERROR   x: failed", "Traceback", "  boom"]


@pytest.fixture
def root_writing_to() -> Iterator[object]:
    """The root logger as ``frontdesk serve`` leaves it, writing to the writer a test gives."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level

    def install(writer: LineWriter) -> LineHandler:
        handler = LineHandler(writer)
        root.handlers[:] = [handler]
        root.setLevel(logging.INFO)
        return handler

    yield install
    for handler in root.handlers:
        handler.close()
    root.handlers[:], level = saved
    root.setLevel(level)


def test_json_lines_are_what_they_were(root_writing_to):
    """``log_format = "json"``: a line written straight is logs.render's, byte for byte."""
    stream = io.StringIO()
    handler = root_writing_to(line_writer(stream, "json"))
    fields = {"event": "token.issued", "client_id": "app"}
    write_line("frontdesk.audit", logging.INFO, "audit", dict(fields))
    handler.flush()
    (line,) = stream.getvalue().splitlines()
    data = json.loads(line)
    assert line == render({"ts": data["ts"], "level": "info", "logger": "frontdesk.audit", "msg": "audit", **fields})


def test_the_access_line_and_records_come_out_as_text(root_writing_to):
    stream = Terminal()
    handler = root_writing_to(line_writer(stream, "auto"))
    write_line("uvicorn.access", logging.INFO, '1.2.3.4:5 - "POST /token HTTP/1.1" 200', {"event": "token.issued"})
    logging.getLogger("frontdesk.test").warning("disk %s", "full", extra={"path": "/var"})
    handler.flush()
    access, warning = stream.getvalue().splitlines()
    assert re.fullmatch(r'\d\d:\d\d:\d\d\.\d{3} INFO    uvicorn.access: 1.2.3.4:5 - "POST /token HTTP/1.1" 200 '
                        r"event=token.issued", access)  # fmt: skip
    assert warning.endswith("WARNING frontdesk.test: disk full path=/var")


def _records(*lines: tuple[str, tuple[object, ...]]) -> list[logging.LogRecord]:
    made = []
    for msg, args in lines:
        record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, msg, args, None)
        record.color_message = msg.replace("%d", "\x1b[36m%d\x1b[0m")
        made.append(record)
    return made


START = ("Started server process [%d]", (4242,))
WAITING = ("Waiting for application startup.", ())
COMPLETE = ("Application startup complete.", ())
RUNNING = ("Uvicorn running on %s://%s:%d (Press CTRL+C to quit)", ("http", "127.0.0.1", 8000))


def _folded(records: list[logging.LogRecord]) -> list[str]:
    fold = UvicornStartup()
    return [r.getMessage() for r in records if fold.filter(r)]


def test_one_process_starts_in_one_line():
    assert _folded(_records(START, WAITING, COMPLETE, RUNNING)) == ["serving http://127.0.0.1:8000 (process 4242)"]


def test_the_parent_of_workers_and_each_worker_start_in_one_line_each(monkeypatch):
    parent = _records(RUNNING, (f"Started parent process [{os.getpid()}]", ()))
    assert _folded(parent) == [f"serving http://127.0.0.1:8000 with worker processes (parent process {os.getpid()})"]
    monkeypatch.setattr(log_text.multiprocessing, "parent_process", lambda: object())
    assert _folded(_records(START, WAITING, COMPLETE)) == ["worker process 4242 started"]


def test_no_color_message_in_json():
    record = _records(("Shutting down", ()))[0]
    assert UvicornStartup().filter(record)
    data = json.loads(JsonFormatter().format(record))
    assert data["msg"] == "Shutting down"
    assert "color_message" not in data


def test_migrations_are_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    """A new database: one line for every migration; the next start: one line that says it is up to date."""
    engine = create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    caplog.set_level(logging.INFO, logger="alembic")
    try:
        with folded_migrations():
            migrate(engine)
        (head,) = shipped_revisions()
        assert [r.getMessage() for r in caplog.records if r.name.startswith("alembic")] == [
            f"database schema upgraded from an empty database to {head} ({len(known_revisions())} migrations)"
        ]
        caplog.clear()
        with folded_migrations():
            migrate(engine)
        assert [r.getMessage() for r in caplog.records if r.name.startswith("alembic")] == [
            "database schema up to date"
        ]
    finally:
        engine.dispose()


def test_an_upgrade_from_an_older_schema_is_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    engine = create_engine(f"sqlite:///{tmp_path / 'older.db'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.connect() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0014")
            conn.commit()
        caplog.set_level(logging.INFO, logger="alembic")
        caplog.clear()
        with folded_migrations():
            migrate(engine)
    finally:
        engine.dispose()
    (head,) = shipped_revisions()
    newer = len([r for r in known_revisions() if r > "0014"])
    assert [r.getMessage() for r in caplog.records if r.name.startswith("alembic")] == [
        f"database schema upgraded from 0014 to {head} ({newer} migrations)"
    ]


def test_serve_takes_log_format():
    args = _parser().parse_args(["serve", "--log-format", "json"])
    assert isinstance(args, argparse.Namespace)
    assert settings_of(args).log_format == "json"
    with pytest.raises(SystemExit):
        _parser().parse_args(["serve", "--log-format", "xml"])


@pytest.mark.subprocess
def test_serve_starts_in_a_few_json_lines(tmp_path: Path):
    """``frontdesk serve --log-format json`` on a new home: JSON lines only (but its one "serving" line for people),
    one for the migrations, one for uvicorn's start, none with ``color_message``."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
    env["FRONTDESK_HOME"] = str(tmp_path / "home")
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "frontdesk", "serve", "--port", str(port), "--log-format", "json"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=30)
    lines = log.read_text().splitlines()
    assert [line for line in lines if not line.startswith("{")] == []  # every line is JSON, the first one too
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert not [r for r in records if "color_message" in r]
    migrations = [r["msg"] for r in records if r["logger"].startswith("alembic")]
    assert len(migrations) == 1
    assert migrations[0].startswith("database schema upgraded from an empty database")
    starts = [r["msg"] for r in records if r["logger"] == "uvicorn.error" and "stopp" not in r["msg"].lower()]
    assert starts[0] == f"serving http://127.0.0.1:{port} (process {server.pid})"
    assert not [m for m in starts if m.startswith(("Started server", "Waiting for application startup"))]
