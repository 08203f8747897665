"""The line writer and the two lines a request can cost (logs.py): buffered, flushed on time, at shutdown and at
once for a warning; whole lines from any thread; every secret-shaped value masked; the audit event of a served
request on its access line, and in the database."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Iterator

import pytest

from conftest import basic
from frontdesk import logs
from frontdesk.config import load_settings
from frontdesk.logs import LineHandler, LineWriter, RequestLines, access_line, redact, render, write_line
from frontdesk.storage import audit


def _wait_for(condition: object, seconds: float = 10.0) -> bool:
    """Polls ``condition`` (a callable) until it holds; a deadline, never a timing assertion."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


class Served(io.StringIO):
    """What a LineHandler wrote, with the root logger as ``frontdesk serve`` leaves it (one LineHandler, INFO)
    while ``with`` runs: pytest puts its own handlers on the root around each test's call."""

    def __init__(self) -> None:
        super().__init__()
        self.handler = LineHandler(LineWriter(self, interval=3600))

    def __enter__(self) -> Served:
        root, access = logging.getLogger(), logging.getLogger("uvicorn.access")
        self._saved = root.handlers[:], root.level
        # As configure_logging leaves it, whatever a provider fake's uvicorn set up earlier in the run.
        self._access = access.handlers[:], access.level, access.propagate
        root.handlers[:] = [self.handler]
        root.setLevel(logging.INFO)
        access.handlers[:], access.propagate = [], True
        access.setLevel(logging.NOTSET)
        return self

    def __exit__(self, *exc: object) -> None:
        root, access = logging.getLogger(), logging.getLogger("uvicorn.access")
        self.handler.flush()
        root.handlers[:], level = self._saved
        root.setLevel(level)
        access.handlers[:], level, access.propagate = self._access
        access.setLevel(level)

    def lines(self) -> list[dict[str, object]]:
        """The server's lines (not the test client's own, httpx's, line a request)."""
        return [data for line in self.getvalue().splitlines() if (data := json.loads(line))["logger"] != "httpx"]


@pytest.fixture
def served_logging() -> Iterator[Served]:
    served = Served()
    yield served
    served.handler.close()


def test_lines_wait_in_memory_until_flushed():
    stream = io.StringIO()
    writer = LineWriter(stream, interval=3600)
    writer.write('{"a":1}')
    writer.write('{"a":2}')
    assert stream.getvalue() == ""
    writer.flush()
    assert stream.getvalue() == '{"a":1}\n{"a":2}\n'
    writer.close()


def test_the_writer_thread_flushes_within_its_interval():
    stream = io.StringIO()
    writer = LineWriter(stream, interval=0.02)
    writer.write("line")
    assert _wait_for(lambda: stream.getvalue() == "line\n")
    writer.close()


def test_an_urgent_line_goes_out_at_once_with_everything_before_it():
    stream = io.StringIO()
    writer = LineWriter(stream, interval=3600)
    writer.write("info")
    writer.write("warning", urgent=True)
    assert stream.getvalue() == "info\nwarning\n"
    writer.close()


def test_a_full_buffer_is_written_without_waiting():
    stream = io.StringIO()
    writer = LineWriter(stream, interval=3600, limit=100)
    for n in range(20):
        writer.write(f"line {n:02}")
    assert stream.getvalue().count("\n") >= 10
    writer.close()
    assert stream.getvalue().count("\n") == 20


def test_close_writes_what_is_left_and_stops_the_thread():
    stream = io.StringIO()
    writer = LineWriter(stream, interval=3600)
    writer.write("last")
    writer.close()
    assert stream.getvalue() == "last\n"
    assert not writer._thread.is_alive()


def test_lines_from_many_threads_stay_whole_and_in_each_threads_order():
    stream = io.StringIO()
    writer = LineWriter(stream, interval=0.001, limit=512)

    def write(t: int) -> None:
        for n in range(2000):
            writer.write(json.dumps({"t": t, "n": n}), urgent=n % 500 == 0)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    seen: dict[int, list[int]] = {}
    for line in stream.getvalue().splitlines():
        data = json.loads(line)
        seen.setdefault(data["t"], []).append(data["n"])
    assert seen == {t: list(range(2000)) for t in range(8)}


@pytest.mark.parametrize(
    ("msg", "fields"),
    [
        ("token fd_rt_abcDEF123", {}),
        ("plain", {"detail_token": "fd_ac_abcDEF123"}),
        ("plain", {"detail_jwt": "eyJhbGciOi.eyJzdWIi.abcDEF123"}),
        ("Authorization: Bearer\nabcDEF123", {}),
        ("Authorization: Basic\tabcDEF123", {}),
        ("plain", {"header": "bearer abcDEF123"}),
        ("plain", {"header": "Bearer\nabcDEF123", "n": 7}),
        ("/device?user_code=abcDEF123", {}),
        ("plain", {"nested": {"url": "https://x/cb?code=abcDEF123&state=s"}}),
        ("plain", {"list": ["client_secret=abcDEF123"]}),
        ('quote " and password=abcDEF123\\"x', {}),
    ],
)
def test_a_rendered_line_masks_every_secret_shape(msg, fields):
    """What the standard library formatter masked, the rendered line masks, and it stays one JSON object."""
    line = render({"ts": 1.0, "level": "info", "logger": "frontdesk", "msg": msg, **fields})
    assert "abcDEF123" not in line
    assert "\n" not in line
    assert json.loads(line)["level"] == "info"


def test_a_line_with_nothing_secret_shaped_is_rendered_as_is():
    out = {"ts": 1.0, "level": "info", "logger": "frontdesk.audit", "msg": "audit", "detail_grant_type": "basic"}
    assert json.loads(render(out)) == out
    assert redact("client_secret_basic") == "client_secret_basic"


def test_write_line_goes_straight_to_the_writer_when_serve_configured_logging(served_logging):
    seen: list[logging.LogRecord] = []
    logger = logging.getLogger("frontdesk.audit")
    logger.addFilter(lambda record: bool(seen.append(record)))  # a record would pass through here
    try:
        with served_logging:
            write_line("frontdesk.audit", logging.INFO, "audit", {"event": "token.issued", "secret": "fd_cs_abcDEF123"})
    finally:
        logger.filters.clear()
    (line,) = served_logging.getvalue().splitlines()
    data = json.loads(line)
    assert (data["logger"], data["level"], data["msg"]) == ("frontdesk.audit", "info", "audit")
    assert data["event"] == "token.issued"
    assert "abcDEF123" not in line
    assert not seen


def test_write_line_is_a_record_when_other_handlers_listen(caplog):
    with caplog.at_level(logging.INFO):
        write_line("frontdesk.audit", logging.INFO, "audit", {"event": "token.issued"})
    (record,) = [r for r in caplog.records if r.name == "frontdesk.audit"]
    assert record.event == "token.issued"  # type: ignore[attr-defined]


def test_a_warning_through_the_standard_library_is_written_at_once(served_logging):
    with served_logging:
        logging.getLogger("frontdesk.test").warning("disk full on %s", "/var")
        (line,) = served_logging.getvalue().splitlines()
    assert json.loads(line)["msg"] == "disk full on /var"


async def test_a_token_request_writes_one_access_line_carrying_its_audit_event(http, fd, confidential, served_logging):
    """At INFO a client_credentials token costs one line: the access line, with the audit event's fields; the
    event itself is in the database."""
    with served_logging:
        response = await http.post(
            "/token?x=private", auth=basic(confidential), data={"grant_type": "client_credentials"}
        )
    assert response.status_code == 200
    lines = served_logging.lines()
    assert len(lines) == 1, lines
    (line,) = lines
    assert line["logger"] == "uvicorn.access"
    assert line["msg"] == '203.0.113.7:50000 - "POST /token?[query] HTTP/1.1" 200'
    assert (line["event"], line["outcome"], line["client_id"]) == ("token.issued", "success", confidential.client_id)
    assert line["detail_grant_type"] == "client_credentials"
    assert response.json()["access_token"] not in served_logging.getvalue()
    events = [e for e in audit.tail(fd.engine) if e.event == "token.issued"]
    assert [e.client_id for e in events] == [confidential.client_id]


async def test_a_request_without_an_audit_event_writes_its_access_line_alone(http, served_logging):
    with served_logging:
        assert (await http.get("/jwks")).status_code == 200
    (line,) = served_logging.lines()
    assert line["msg"].endswith('"GET /jwks HTTP/1.1" 200')
    assert "event" not in line


async def test_access_lines_off_leave_the_audit_line(http, fd, confidential, served_logging, monkeypatch):
    monkeypatch.setattr(http._transport.app, "access_log", False)
    with served_logging:
        response = await http.post("/token", auth=basic(confidential), data={"grant_type": "client_credentials"})
    assert response.status_code == 200
    (line,) = served_logging.lines()
    assert (line["logger"], line["msg"], line["event"]) == ("frontdesk.audit", "audit", "token.issued")


def test_access_lines_are_on_by_default_and_a_setting():
    assert load_settings(environ={}).access_log is True
    assert load_settings(environ={"FRONTDESK_ACCESS_LOG": "false"}).access_log is False


def _access(scope_changes: dict[str, object], audit_fields: dict[str, object] | None = None) -> None:
    scope: dict[str, object] = {
        "method": "GET", "path": "/jwks", "root_path": "", "query_string": b"", "client": ("192.0.2.1", 4000),
    }  # fmt: skip
    scope.update(scope_changes)
    pending = RequestLines()
    pending.audit = audit_fields
    access_line(scope, 200, pending)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({}, '192.0.2.1:4000 - "GET /jwks HTTP/1.1" 200'),
        ({"client": None, "http_version": "1.0"}, '- - "GET /jwks HTTP/1.0" 200'),
        ({"path": "/a b/ü", "query_string": b"q=1"}, '192.0.2.1:4000 - "GET /a%20b/%C3%BC?[query] HTTP/1.1" 200'),
        ({"root_path": "/auth", "path": "/x/fd_rt_abcDEF123"}, '192.0.2.1:4000 - "GET /auth/x/fd_*** HTTP/1.1" 200'),
    ],
)
def test_the_access_line_shows_the_client_the_path_as_uvicorn_does_and_masks_it(served_logging, changes, message):
    """uvicorn's message, byte for byte: the path percent-encoded where it is not plain, the query never, and a
    secret-shaped path masked like any other field; the time in milliseconds."""
    with served_logging:
        _access(changes)
        _access(changes)  # the second time the path's rendering is remembered: the same line
    first, second = served_logging.lines()
    assert first["msg"] == second["msg"] == message
    assert (first["logger"], first["level"]) == ("uvicorn.access", "info")
    assert isinstance(first["ts"], float)
    assert abs(first["ts"] - time.time()) < 60
    assert round(first["ts"], 3) == first["ts"]


def test_a_path_holding_a_token_is_not_remembered(served_logging):
    with served_logging:
        _access({"path": "/interaction/fd_ix_abcDEF123/login"})
        _access({"path": "/jwks"})
    assert [line["msg"] for line in served_logging.lines()] == [
        '192.0.2.1:4000 - "GET /interaction/fd_***/login HTTP/1.1" 200',
        '192.0.2.1:4000 - "GET /jwks HTTP/1.1" 200',
    ]
    assert "/jwks" in logs._PATHS
    assert not any("fd_" in path for path in logs._PATHS)


def test_the_access_line_is_a_record_with_the_audit_fields_when_other_handlers_listen(caplog, monkeypatch):
    access = logging.getLogger("uvicorn.access")  # as configure_logging leaves it, whatever ran before in this worker
    monkeypatch.setattr(access, "handlers", [])
    monkeypatch.setattr(access, "propagate", True)
    monkeypatch.setattr(access, "disabled", False)
    with caplog.at_level(logging.INFO), caplog.at_level(logging.INFO, logger="uvicorn.access"):
        _access({}, {"event": "token.issued", "client_id": "c1"})
    (record,) = [r for r in caplog.records if r.name == "uvicorn.access"]
    assert record.getMessage() == '192.0.2.1:4000 - "GET /jwks HTTP/1.1" 200'
    assert (record.event, record.client_id) == ("token.issued", "c1")  # type: ignore[attr-defined]
