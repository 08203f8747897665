"""Structured logs: one JSON object a line, with a redaction filter as the last line of defence.

Secrets are never passed to a logger in the first place; the filter masks anything shaped like one anyway
(frontdesk's prefixed tokens, JWTs, Basic credentials, user codes in URLs), even at DEBUG.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

__all__ = ["JsonFormatter", "configure_logging", "redact"]

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


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = json.loads(redact(json.dumps(value, default=str)))
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
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
    logging.Formatter.converter = time.gmtime
