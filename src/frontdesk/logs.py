"""Structured logs: one JSON object a line, with a redaction filter as the last line of defence.

Secrets are never passed to a logger in the first place; the filter masks anything shaped like one anyway
(frontdesk's prefixed tokens, JWTs, Basic credentials, user codes in URLs), even at DEBUG.

As ``frontdesk serve`` configures it (:func:`configure_logging`), every line goes through one :class:`LineWriter`:
lines are kept in memory and written together at least every ``FLUSH_INTERVAL`` seconds, at shutdown, and at once
for a line at WARNING or above. The two lines a request can cost — the access line and its audit event — skip the
standard library's record machinery (:func:`write_line`): each is one dict rendered once, redacted only when the
rendered line holds something shaped like a secret, and the audit event of a request rides on that request's access
line (:class:`RequestLines`) rather than on a line of its own. Every other logger goes through ``logging`` as ever.
See BENCHMARKS.md for what each of these saved.
"""

from __future__ import annotations

import atexit
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, TextIO
from urllib.parse import quote

import orjson

__all__ = [
    "FLUSH_INTERVAL",
    "JsonFormatter",
    "LineHandler",
    "LineWriter",
    "RequestLines",
    "access_line",
    "carry_audit",
    "configure_logging",
    "redact",
    "render",
    "write_line",
]

_PATTERNS = [
    (re.compile(r"fd_(?:ac|rt|cs|dc|ss|ix|ak|vc|vs)_[A-Za-z0-9_\-]+"), "fd_***"),
    (re.compile(r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"), "<jwt>"),
    (re.compile(r"(?i)(basic|bearer)\s+[A-Za-z0-9+/=._\-~]+"), r"\1 ***"),
    (
        re.compile(
            r"(?i)((?:user_code|code|code_verifier|client_secret|password|refresh_token|access_token|"
            r"client_assertion|device_code|token)=)[^&\s\"']+"
        ),
        r"\1***",
    ),
]
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


# Every pattern above needs one of these in the text it masks, and none of them holds a character JSON escapes: a
# rendered line without any of them has nothing to mask. After "basic"/"bearer" the patterns want whitespace, which
# a rendered line may hold escaped (a backslash), so either counts.
_SUSPECT = re.compile(
    r"(?i)fd_(?:ac|rt|cs|dc|ss|ix|ak|vc|vs)_|eyJ|(?:basic|bearer)[\s\\]|"
    r"(?:user_code|code|code_verifier|client_secret|password|refresh_token|access_token|client_assertion|"
    r"device_code|token)="
)
FLUSH_INTERVAL = 0.1  # seconds a line may wait in a LineWriter


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _encode(value: Any) -> str:
    try:
        return orjson.dumps(value, default=str).decode()
    except TypeError:  # what orjson refuses (an integer past 64 bits, a key that is not a string)
        return json.dumps(value, default=str, separators=(",", ":"))


def render(out: dict[str, Any]) -> str:
    """One log line (without its newline): ``out`` as compact JSON, every secret-shaped value masked: a string as
    text, any other value as its JSON (as the standard library formatter masked every extra field). The masks run
    only when the rendered line holds something one of them could match."""
    line = _encode(out)
    low = line.lower()
    # Substring tests first: the regular expression (case-folded alternatives) costs ~18 µs on a line.
    if not ("fd_" in low or "eyj" in low or "basic" in low or "bearer" in low or "=" in low):
        return line
    if _SUSPECT.search(line) is None:
        return line
    return _encode({key: _masked(value) for key, value in out.items()})


def _masked(value: Any) -> Any:
    if isinstance(value, str):  # as text: whitespace is whitespace here, not an escape
        return redact(value)
    text = redact(_encode(value))
    try:
        return orjson.loads(text)
    except ValueError:  # a mask cut through an escape: the masked text, as text
        return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return render(out)


class LineWriter:
    """Whole lines to a text stream, written in batches: at least every ``interval`` seconds (by a thread of its
    own), once ``limit`` characters wait, at once for an ``urgent`` line (and everything before it), and at
    ``close``. Safe from any thread; lines leave in the order they were given."""

    def __init__(self, stream: TextIO, interval: float = FLUSH_INTERVAL, limit: int = 64 * 1024) -> None:
        self.stream = stream
        self.interval = interval
        self.limit = limit
        self._held: list[str] = []
        self._size = 0
        self._lock = threading.Lock()  # guards _held
        self._writing = threading.Lock()  # one batch at a time, in order
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="frontdesk-log", daemon=True)
        self._thread.start()

    def write(self, line: str, *, urgent: bool = False) -> None:
        with self._lock:
            self._held.append(line + "\n")
            self._size += len(line) + 1
            full = self._size >= self.limit
        if urgent or full:
            self.flush()

    def flush(self) -> None:
        with self._writing:
            with self._lock:
                held, self._held, self._size = self._held, [], 0
            if held:
                self.stream.write("".join(held))
                self.stream.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception:  # the stream is gone (closed at exit): nothing left to write to
                return

    def close(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=1)
        self.flush()


class LineHandler(logging.Handler):
    """The standard library's way into a :class:`LineWriter`: a record at WARNING or above is written at once."""

    def __init__(self, writer: LineWriter) -> None:
        super().__init__()
        self.writer = writer
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.writer.write(self.format(record), urgent=record.levelno >= logging.WARNING)
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
        super().close()


def _writer() -> LineWriter | None:
    # The writer when logging is configured as frontdesk serve configures it (one LineHandler on the root); with
    # any other handler there (a test's, an embedding application's), lines go through the standard library.
    handlers = logging.root.handlers
    if len(handlers) == 1 and type(handlers[0]) is LineHandler:
        return handlers[0].writer
    return None


_LEVELS = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning", logging.ERROR: "error"}
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_.~/\-]*").fullmatch  # what quote() leaves as it is


def write_line(logger: str, level: int, msg: str, fields: dict[str, Any]) -> None:
    """A line of ``logger`` (the caller has checked that it is enabled for ``level``) with ``fields``, straight
    into the writer when there is one, else as a record through the standard library."""
    writer = _writer()
    if writer is None:
        logging.getLogger(logger).log(level, msg, extra=fields)
        return
    out = {"ts": round(time.time(), 3), "level": _LEVELS.get(level) or "", "logger": logger, "msg": msg}
    if not out["level"]:
        out["level"] = logging.getLevelName(level).lower()
    out.update(fields)
    writer.write(render(out), urgent=level >= logging.WARNING)


ACCESS = logging.getLogger("uvicorn.access")  # the access line keeps the logger name uvicorn gave it


class RequestLines:
    """While a request runs (``with``): the first audit event it records rides on its access line
    (:func:`access_line`). An event that was never carried (no response started) gets a line of its own on the way
    out. A plain class, not a generator context manager: it is entered once per request."""

    __slots__ = ("_token", "audit", "open", "status")

    def __init__(self) -> None:
        self.audit: dict[str, Any] | None = None
        self.open = True
        self.status = 0  # the response's, once it starts: the access line's

    def __enter__(self) -> RequestLines:
        self._token = _request.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _request.reset(self._token)
        self.open = False
        if self.audit is not None:
            fields, self.audit = self.audit, None
            write_line("frontdesk.audit", logging.INFO, "audit", fields)


_request: ContextVar[RequestLines | None] = ContextVar("frontdesk_request_lines", default=None)


def carry_audit(fields: dict[str, Any]) -> bool:
    """Hand an audit event's log fields to the running request's access line; False if there is none to take it
    (no request, access lines off, or one event already carried), and the caller writes its own line."""
    pending = _request.get()
    if pending is None or not pending.open or pending.audit is not None:
        return False
    pending.audit = fields
    return True


_PATHS: dict[str, str] = {}  # a request path as its access line shows it (plain, or percent-encoded)
_PATHS_KEPT = 512  # past this many distinct paths the memo starts again: paths are what clients send


def _shown_path(path: str) -> str:
    shown = _PATHS.get(path)
    if shown is None:
        shown = path if _PLAIN_PATH(path) is not None else quote(path)
        # A path holding a token (an interaction's, a connect link's: every frontdesk secret starts "fd_") or a JWT
        # is rendered every time, never kept in the process.
        if "fd_" not in path and "eyJ" not in path:
            if len(_PATHS) >= _PATHS_KEPT:
                _PATHS.clear()
            _PATHS[path] = shown
    return shown


def access_line(scope: Mapping[str, Any], status: int, pending: RequestLines) -> None:
    """uvicorn's access line for a request frontdesk answered (same logger, same message, the query taken off),
    with the fields of the audit event the request recorded, if any.

    What :func:`write_line` does, written out for the one line every request costs: the path as shown is
    remembered, the message is an f-string, the time is cut to milliseconds without ``round`` (which goes through
    the decimal conversion of the float twice)."""
    client = scope.get("client")
    path = _shown_path(scope.get("root_path", "") + scope["path"])
    if scope.get("query_string"):
        path += "?[query]"
    who = f"{client[0]}:{client[1]}" if client else "-"
    msg = f'{who} - "{scope["method"]} {path} HTTP/{scope.get("http_version", "1.1")}" {status}'  # uvicorn's format
    fields, pending.audit = pending.audit, None
    pending.open = False
    writer = _writer()
    if writer is None:
        ACCESS.info(msg, extra=fields)  # another handler listens (a test's, an embedding application's)
        return
    out = {"ts": int(time.time() * 1000) / 1000, "level": "info", "logger": "uvicorn.access", "msg": msg}
    if fields:
        out.update(fields)
    writer.write(render(out))


@atexit.register
def _flush_at_exit() -> None:
    for handler in logging.root.handlers:
        if isinstance(handler, LineHandler):
            handler.writer.close()


def configure_logging(level: str = "INFO", log_format: str = "auto") -> None:
    from .log_filters import RepeatFilter, hide_queries
    from .log_text import fold_uvicorn_startup, line_writer  # it builds on this module

    handler = LineHandler(line_writer(sys.stderr, log_format))  # JSON lines, or text on a terminal (log_text.py)
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    for old in root.handlers:
        if isinstance(old, LineHandler):
            old.close()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # SQLAlchemy logs every statement with its parameters once its logger is at INFO; even digests and password
    # hashes have no place in logs, so it speaks only of warnings, whatever the level asked for.
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    # httpcore's DEBUG trace prints every response header a provider sends, and some echo the credential back.
    logging.getLogger("httpcore").setLevel(logging.INFO)
    hide_queries()
    fold_uvicorn_startup()
    logging.Formatter.converter = time.gmtime
