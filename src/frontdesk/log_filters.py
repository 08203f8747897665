"""Filters on log records, whoever configured the handlers: one line per kind of failure per minute
(:class:`RepeatFilter`), and no request's query in any line (:class:`NoQueries`). ``logs.configure_logging`` puts
them in place."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["QUERY_LOGGERS", "NoQueries", "RepeatFilter", "hide_queries"]


class RepeatFilter(logging.Filter):
    """One line per kind of warning or error per ``interval`` seconds; the next line of that kind carries
    ``repeats_suppressed``, the count of those dropped in between.

    A background loop that fails while the database is away (the audit writer retries every 0.2 s, the WAL
    checkpointer every 0.25 s) or a request path that fails on every request would otherwise write a traceback a
    turn, per worker, for as long as the outage lasts. A kind is the logger, the level, the message template and
    the exception's class, so a different failure still gets its own line at once."""

    MAX_KINDS = 1000  # past this many kinds seen within one interval, the oldest are forgotten

    def __init__(self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._kinds: dict[tuple[str, int, str, str], list[float | int]] = {}  # kind -> [last line at, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        exc = record.exc_info[0].__qualname__ if record.exc_info and record.exc_info[0] else ""
        kind = (record.name, record.levelno, str(record.msg), exc)
        at = self._clock()
        with self._lock:
            seen = self._kinds.get(kind)
            if seen is not None and at - seen[0] < self.interval:
                seen[1] += 1
                return False
            if seen is None and len(self._kinds) >= self.MAX_KINDS:
                self._forget(at)
            self._kinds[kind] = [at, 0]
        if seen is not None and seen[1]:
            record.repeats_suppressed = seen[1]
        return True

    def _forget(self, at: float) -> None:
        for key in [k for k, (last, _) in self._kinds.items() if at - last >= self.interval]:
            del self._kinds[key]
        while len(self._kinds) >= self.MAX_KINDS:
            del self._kinds[next(iter(self._kinds))]


# A URL (or a path) followed by its query: what follows "?" is what a person typed, or an id of their records.
_QUERY = re.compile(r"((?:[A-Za-z][A-Za-z0-9+.\-]*://[^\s/?#'\"<>]*)?/[^\s?#'\"<>]*)\?[^\s#'\"<>]*")
# The loggers that write the URLs of requests: httpx's one line a request (INFO), httpcore's trace (DEBUG: the
# response headers too, Location among them), and uvicorn's access line for the requests frontdesk answers (the
# vault proxy's caller's query, an upstream's callback).
QUERY_LOGGERS = (
    "httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy", "httpcore.socks",
    "uvicorn.access",
)  # fmt: skip


def _no_query(value: Any) -> Any:
    if isinstance(value, int | float | bool) or value is None:
        return value
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return _QUERY.sub(r"\1?[query]", text) if "?" in text else value


class NoQueries(logging.Filter):
    """Takes the query off every URL in a record: a proxied call's query holds what the person typed (search
    terms, record ids), and none of it may reach a log at any level. A logger's filter sees the record before any
    handler does, whoever configured the handlers; it sees only the records of its own logger, hence one for each
    in ``QUERY_LOGGERS``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = _no_query(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_no_query(arg) for arg in record.args)
        return True


def hide_queries() -> None:
    """Put :class:`NoQueries` on the loggers that write request URLs (once each)."""
    for name in QUERY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, NoQueries) for f in logger.filters):
            logger.addFilter(NoQueries())
