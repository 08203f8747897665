"""Logs for people: a text line per record on a terminal (``log_format`` "auto", or "text"), and the start-up chatter
of uvicorn and alembic folded into one line each, in either format.

A text line reads ``11:02:03.456 INFO    frontdesk.audit: audit event=token.issued outcome=success client_id=app``:
time (UTC), level, logger, message, then the line's other fields as ``key=value``, those without a value left out.
It is made from the JSON line ``logs.py`` renders, redacted as ever, when the writer takes it (:class:`TextLines`):
every line, from the standard library or written straight (the access line, audit events), takes the same path
as in JSON, and the JSON path pays nothing for the text one.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import re
import time
from collections.abc import Iterator
from typing import Any, TextIO

import orjson

from .logs import LineWriter

__all__ = ["TextLines", "fold_uvicorn_startup", "folded_migrations", "line_writer", "text_line", "wants_text"]

_PLAIN = re.compile(r"[^\s\"=]+").fullmatch
_HEAD = ("ts", "level", "logger", "msg", "exc")


def _value(value: Any) -> str:
    # A string as it is unless it could be misread (spaces, quotes, "="): then, like anything else, as JSON.
    if isinstance(value, str) and _PLAIN(value):
        return value
    return orjson.dumps(value, default=str).decode()


def text_line(line: str) -> str:
    """The text form of one of ``logs.render``'s JSON lines (anything else as it is)."""
    try:
        out = orjson.loads(line)
    except ValueError:
        return line
    if not isinstance(out, dict):
        return line
    ts = out.get("ts")
    ms = round(ts * 1000) if isinstance(ts, int | float) else 0
    at = time.strftime("%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}"
    parts = [f"{at} {str(out.get('level', '')).upper():<7} {out.get('logger', '')}: {out.get('msg', '')}"]
    parts += [f"{key}={_value(value)}" for key, value in out.items() if key not in _HEAD and value is not None]
    exc = out.get("exc")
    return " ".join(parts) + (f"\n{exc}" if exc else "")


class TextLines(LineWriter):
    """A :class:`LineWriter` that writes each line in its text form."""

    def write(self, line: str, *, urgent: bool = False) -> None:
        super().write(text_line(line), urgent=urgent)


def wants_text(log_format: str, stream: TextIO) -> bool:
    """Text for "text", and for "auto" when the stream is a terminal; JSON otherwise."""
    if log_format == "auto":
        isatty = getattr(stream, "isatty", None)
        return bool(isatty and isatty())
    return log_format == "text"


def line_writer(stream: TextIO, log_format: str) -> LineWriter:
    return TextLines(stream) if wants_text(log_format, stream) else LineWriter(stream)


class UvicornStartup(logging.Filter):
    """uvicorn's start-up lines as one: "serving http://… (process N)" for a single process, "serving http://… with
    worker processes (parent process N)" for the parent of ``--workers``, "worker process N started" for each worker;
    and ``color_message`` (the same message with terminal colour codes) off every record of uvicorn's."""

    def __init__(self) -> None:
        super().__init__()
        self.process: int | None = None  # from "Started server process", held until the start is complete
        self.address = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.pop("color_message", None)
        msg = record.msg if isinstance(record.msg, str) else ""
        if msg == "Started server process [%d]" and isinstance(record.args, tuple) and record.args:
            self.process = int(str(record.args[0]))
            return False
        if msg == "Waiting for application startup.":
            return False
        if msg == "Application startup complete.":
            if multiprocessing.parent_process() is None:
                return False  # one process: "Uvicorn running on …" follows and says it all
            return _fold(record, "worker process %d started", self.process or 0)
        if msg.startswith("Uvicorn running on"):
            self.address = record.getMessage().removeprefix("Uvicorn running on ").split(" (Press CTRL+C")[0]
            if self.process is None:
                return False  # the parent of workers: "Started parent process [N]" follows
            return _fold(record, "serving %s (process %d)", self.address, self.process)
        if msg.startswith("Started parent process ["):
            parent = int(msg.removeprefix("Started parent process [").rstrip("]"))
            return _fold(record, "serving %s with worker processes (parent process %d)", self.address, parent)
        return True


def _fold(record: logging.LogRecord, msg: str, *args: Any) -> bool:
    record.msg, record.args = msg, args
    return True


def fold_uvicorn_startup() -> None:
    """Put :class:`UvicornStartup` on uvicorn's logger (once)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, UvicornStartup) for f in logger.filters):
        logger.addFilter(UvicornStartup())


_STEP = re.compile(r"Running (?:upgrade|downgrade) (\S*) -> (\S+),")


class _Migrations(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.impl = ""
        self.steps: list[tuple[str, str]] = []
        self.spoke = False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        self.spoke = True
        if record.msg == "Context impl %s." and isinstance(record.args, tuple) and record.args:
            self.impl = str(record.args[0])
        step = _STEP.match(record.getMessage())
        if step:
            self.steps.append((step[1], step[2]))
        return False


@contextlib.contextmanager
def folded_migrations() -> Iterator[None]:
    """While it runs, alembic's lines (its dialect, its DDL mode, one per migration) make one line at the end:
    "database schema upgraded from 0014 to 0016 (2 migrations)", or "database schema up to date"."""
    logger = logging.getLogger("alembic.runtime.migration")
    fold = _Migrations()
    logger.addFilter(fold)
    try:
        yield
    finally:
        logger.removeFilter(fold)
    if fold.steps:
        first, last = fold.steps[0][0] or "an empty database", fold.steps[-1][1]
        count = f"{len(fold.steps)} migration{'s' if len(fold.steps) > 1 else ''}"
        logger.info("database schema upgraded from %s to %s (%s)", first, last, count, extra={"dialect": fold.impl})
    elif fold.spoke:
        logger.info("database schema up to date", extra={"dialect": fold.impl})
