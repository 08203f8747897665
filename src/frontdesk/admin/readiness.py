"""Whether this process can serve: what ``/readyz`` reports to a load balancer or an orchestrator.

Three checks, each named in the answer with ``ok`` or what failed in a few words (the details go to the log, never
to the wire): the database answers within ``READY_TIMEOUT`` seconds; its schema is at the migrations this version
ships (no more, no less); and the key ring can sign with every algorithm tokens are issued with.

A database that does not answer at all (a host that drops packets) would hold a thread until the driver gives up:
the checks run on a thread of their own, one at a time, and a probe that finds the previous one still waiting
answers at once that the database is not answering, rather than queueing another thread behind it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import anyio
import anyio.to_thread

from ..core import Frontdesk
from ..storage.schema_revision import applied_revisions, known_revisions, shipped_revisions

__all__ = ["READY_TIMEOUT", "Readiness", "check", "probe"]

log = logging.getLogger("frontdesk.readiness")
READY_TIMEOUT = 2.0  # seconds
OK = "ok"


@dataclass(frozen=True, slots=True)
class Readiness:
    checks: dict[str, str]  # check -> "ok", or what failed in plain words

    @property
    def ready(self) -> bool:
        return all(result == OK for result in self.checks.values())

    def as_dict(self) -> dict[str, object]:
        return {"status": "ready" if self.ready else "not ready", "checks": self.checks}


def _migrations(applied: frozenset[str]) -> str:
    shipped = shipped_revisions()
    if applied == shipped:
        return OK
    at = ", ".join(sorted(applied)) or "no migration"
    wanted = ", ".join(sorted(shipped))
    if applied <= known_revisions():
        return f"behind: the database is at {at}, this version needs {wanted} (run frontdesk migrate)"
    return f"ahead: the database is at {at}, newer than this version's {wanted}"


def _signing_keys(fd: Frontdesk) -> str:
    missing = []
    for alg in sorted({fd.settings.access_token_alg, fd.settings.id_token_alg}):
        try:
            fd.keys.sign({"ready": True}, alg)
        except Exception:
            log.warning("readiness: cannot sign with %s", alg, exc_info=True)
            missing.append(alg)
    return OK if not missing else f"no active {' or '.join(missing)} signing key"


def check(fd: Frontdesk) -> Readiness:
    """The checks, blocking (they read the database)."""
    try:
        applied = applied_revisions(fd.engine)
    except Exception as exc:
        detail = getattr(exc, "detail", "") or type(exc).__name__
        log.warning("readiness: the database is unreachable", extra={"detail": detail})
        # The key ring's first read needs the database: without it the keys cannot be told apart from a hang.
        return Readiness({"database": "unreachable", "migrations": "not checked", "signing_keys": "not checked"})
    return Readiness({"database": OK, "migrations": _migrations(applied), "signing_keys": _signing_keys(fd)})


_checking = threading.Lock()  # held by the check that runs; a check still waiting for the database keeps it


def _check_alone(fd: Frontdesk) -> Readiness | None:
    if not _checking.acquire(blocking=False):
        return None
    try:
        return check(fd)
    finally:
        _checking.release()


def _no_answer(what: str) -> Readiness:
    log.warning("readiness: the database did not answer: %s", what)
    return Readiness({"database": f"no answer ({what})", "migrations": "not checked", "signing_keys": "not checked"})


async def probe(fd: Frontdesk, timeout: float = READY_TIMEOUT) -> Readiness:
    """:func:`check` on a thread, given at most ``timeout`` seconds; at once not ready while an earlier probe's
    check still waits for the database (one thread waits, however often the probe comes)."""
    with anyio.move_on_after(timeout):
        done = await anyio.to_thread.run_sync(_check_alone, fd, abandon_on_cancel=True)
        return done if done is not None else _no_answer("an earlier check is still waiting")
    return _no_answer(f"not within {timeout:g} s")
