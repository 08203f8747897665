"""What a code redemption or a refresh rotation writes, as few statements as each store allows.

Spending the code or refresh token (compare-and-set: ``UPDATE … WHERE consumed_at IS NULL``, so two requests in two
processes never both win, DESIGN §4), the refresh token it issues, the DPoP binding of a public client's grant
(RFC 9449 §5) land together or not at all, and so, in its way on each store, does the audit event:

- on PostgreSQL as **one statement** (data-modifying CTEs hanging off the spend: each writes a row only when the
  spend did), in autocommit, so one round trip where ``BEGIN``, four statements and ``COMMIT`` were six
  (BENCHMARKS.md row 44). A single statement is atomic, the audit event's row included: there it costs the
  client seven parameters, and was cheaper than the audit writer's batches (BENCHMARKS.md row 54). The read before
  it (``session``) is a statement of its own too: what it saw may be stale by the spend, and the compare-and-set
  is what decides, as it did inside one transaction at READ COMMITTED; a grant revoked in between makes every
  token issued from it dead at once.
- on SQLite, which has no data-modifying CTEs, as the same writes one by one in the caller's IMMEDIATE transaction
  (``session``), where statements are calls into the process, not round trips. Under ``frontdesk serve`` the audit
  event is queued for the audit writer's next batch once that transaction has committed (storage/audit.py
  ``record_after``), as a client_credentials token's is: written in the transaction, its row and the audit table's
  six B-trees were most of the 14 % that rows 54–55 of BENCHMARKS.md took off a code redemption's CPU. What a
  crash can lose of it is what the writer documents; its log line has left already.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Engine

from ..secret import digest, new_token
from .audit import Row as AuditRow
from .audit import record_after
from .db import Raw, fetch, raw_transaction, run
from .grants import REFRESH_COLUMNS, GrantRow, RefreshRow, consume_code, consume_refresh, refresh_row

__all__ = ["Redemption", "Rotation", "Spent", "new_refresh", "rotate_in_one", "session", "spend"]

Spent = Literal["code", "refresh"]


def session(engine: Engine) -> contextlib.AbstractContextManager[Raw]:
    """Where a redemption reads and writes, on one pooled connection. On SQLite one IMMEDIATE transaction
    (``raw_transaction``: the write lock first, so a try that finds it taken has cost nothing, oauth/writes.py).
    Elsewhere in autocommit, each statement its own transaction: the read, then ``spend``'s one statement, and no
    ``BEGIN`` or ``COMMIT`` round trip. One connection for both: ``db.fetch`` on the engine checks one out and
    back for each statement, ~50 µs of CPU a time more than a cursor on a held one (measured here)."""
    return raw_transaction(engine) if engine.dialect.name == "sqlite" else _autocommit(engine)


@contextlib.contextmanager
def _autocommit(engine: Engine) -> Iterator[Raw]:
    with raw_transaction(engine) as conn:
        conn.driver.autocommit = True  # before any statement: psycopg begins a transaction at the first one
        try:
            yield conn
        finally:
            # As the pool and every transaction expect it back. A connection that cannot take it is broken, and
            # ``raw_transaction`` drops it on the error that broke it: that error, not this one, goes out.
            with contextlib.suppress(engine.dialect.loaded_dbapi.Error):
                conn.driver.autocommit = False


@dataclass(frozen=True, slots=True)
class Redemption:
    """The writes that go with spending a code or refresh token."""

    grant: GrantRow
    client_id: str
    audit: AuditRow  # the event, as storage/audit.py builds it
    refresh: str | None = None  # a refresh token to issue on the grant (``new_refresh``)
    refresh_expires_at: int = 0
    bind_jkt: str | None = None  # RFC 9449 §5: bind the grant's refresh tokens to this key, if not bound yet


def new_refresh(grant: GrantRow, at: int, idle: int) -> tuple[str, int]:
    """A refresh token for the grant and when it expires: after inactivity, never after the grant (RFC 9700
    §4.14.2)."""
    return new_token("refresh_token"), min(grant.expires_at, at + idle)


_AUDIT_COLUMNS = "at, event, outcome, client_id, user_id, ip, detail"

# One statement: the spend, and the rows that go with it selected FROM it, so that a lost race writes nothing.
# PostgreSQL alone runs this text (``?`` become ``%s`` in ``db.fetch``). Two flags leave the refresh token and the
# binding out, so that one prepared statement serves every redemption rather than four texts.
_SPEND = (
    "WITH spent AS ("  # noqa: S608 -- the table is one of two constants
    "UPDATE {table} SET consumed_at = ? WHERE digest = ? AND consumed_at IS NULL RETURNING grant_id), "
    "issued AS (INSERT INTO refresh_tokens (digest, grant_id, client_id, created_at, expires_at, consumed_at) "
    "SELECT ?, grant_id, ?, ?, ?, NULL FROM spent WHERE ?), "
    "bound AS (UPDATE grants SET dpop_jkt = ? WHERE id = (SELECT grant_id FROM spent) AND dpop_jkt IS NULL AND ?), "
    f"audited AS (INSERT INTO audit_events ({_AUDIT_COLUMNS}) SELECT ?, ?, ?, ?, ?, ?, ? FROM spent) "
    "SELECT COUNT(*) FROM spent"
)
_SPEND_SQL: dict[Spent, str] = {
    "code": _SPEND.format(table="authorization_codes"),
    "refresh": _SPEND.format(table="refresh_tokens"),
}


def spend(db: Raw, spent: Spent, secret: str, at: int, writes: Redemption) -> bool:
    """Spend the code or refresh token ``secret`` and write ``writes`` with it, in ``session``; False, and nothing
    written, when another request spent it first (a replay)."""
    if db.dialect.name != "sqlite":
        return _spend_in_one(db, spent, secret, at, writes)
    consume = consume_code if spent == "code" else consume_refresh
    if not consume(db, secret, at):
        return False
    if writes.refresh is not None:
        run(
            db,
            "INSERT INTO refresh_tokens (digest, grant_id, client_id, created_at, expires_at, consumed_at) "
            "VALUES (?, ?, ?, ?, ?, NULL)",
            (digest(writes.refresh), writes.grant.id, writes.client_id, at, writes.refresh_expires_at),
        )
    if writes.bind_jkt is not None:
        run(db, "UPDATE grants SET dpop_jkt = ? WHERE id = ? AND dpop_jkt IS NULL", (writes.bind_jkt, writes.grant.id))
    record_after(db, writes.audit)
    return True


def _spend_in_one(db: Raw, spent: Spent, secret: str, at: int, writes: Redemption) -> bool:
    refresh = writes.refresh
    params = (
        at,
        digest(secret),
        digest(refresh) if refresh is not None else "",
        writes.client_id,
        at,
        writes.refresh_expires_at,
        refresh is not None,
        writes.bind_jkt,
        writes.bind_jkt is not None,
        *writes.audit,
    )
    rows = fetch(db, _SPEND_SQL[spent], params)
    return bool(rows[0][0])


@dataclass(frozen=True, slots=True)
class Rotation:
    """A refresh rotation spent in the statement that reads it (``rotate_in_one``): the checks the statement makes,
    and what it writes if they hold."""

    client_id: str
    jkt: str | None  # the proof key's thumbprint: a grant bound to a key is spent only with that key (RFC 9449 §5)
    resources: list[str]  # URIs a grant's resources may be among; a grant naming any other is not spent here
    refresh: str  # the new refresh token, written when the grant's half of ``wants_refresh`` holds (see below)
    refresh_expires_at: int  # at most: never after the grant
    bind_jkt: str | None  # RFC 9449 §5: a public client's new refresh token is bound to its proof key
    event: str
    ip: str | None


# A refresh rotation on PostgreSQL when the request narrows nothing: the read of ``refresh_for`` and the spend of
# ``_SPEND`` as one statement, one round trip where there were two (6.7 % less CPU a served refresh, 3.6 % more
# refreshes a second: BENCHMARKS.md row 63). Every check that needs the grant is made in ``ok``, so a
# token is spent only when the rotation cannot fail afterwards: the client's own, unexpired, its grant live, bound
# to no other key, every resource of the grant one the caller can mint for (``Rotation.resources``). Whatever
# ``ok`` refuses is spent by nobody, and the caller decides from the row, read in the same statement, as before.
# The refresh token is issued on OpenID Connect Core §11's terms (``oauth.redemption.wants_refresh``: the grant's
# half here; the client's always holds, as only a client allowed the refresh_token grant gets this far). The audit
# detail is what ``audit.event_row`` renders for ``{"grant_id": …}``.
_ROTATE = (
    "WITH ok AS (SELECT g.id, g.user_id, g.expires_at, "  # noqa: S608 -- constant fragments only
    "(position(' openid ' IN ' ' || g.scope || ' ') = 0 OR position(' offline_access ' IN ' ' || g.scope || ' ') > 0) "
    "AS offline FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id "
    "WHERE r.digest = ? AND r.client_id = ? AND r.expires_at > ? AND r.consumed_at IS NULL AND g.revoked_at IS NULL "
    "AND (g.dpop_jkt IS NULL OR g.dpop_jkt = ?) "
    "AND NOT EXISTS (SELECT 1 FROM json_array_elements_text(g.resource::json) AS u(uri) WHERE u.uri <> ALL(?))), "
    "spent AS (UPDATE refresh_tokens SET consumed_at = ? WHERE digest = ? AND consumed_at IS NULL "
    "AND EXISTS (SELECT 1 FROM ok) RETURNING grant_id), "
    "issued AS (INSERT INTO refresh_tokens (digest, grant_id, client_id, created_at, expires_at, consumed_at) "
    "SELECT ?, ok.id, ?, ?, LEAST(ok.expires_at, ?), NULL FROM spent JOIN ok ON ok.id = spent.grant_id "
    "WHERE ok.offline RETURNING grant_id), "
    "bound AS (UPDATE grants SET dpop_jkt = ? WHERE id = (SELECT grant_id FROM issued) AND dpop_jkt IS NULL AND ?), "
    f"audited AS (INSERT INTO audit_events ({_AUDIT_COLUMNS}) "
    """SELECT ?, ?, 'success', ?, ok.user_id, ?, '{"grant_id":' || to_json(ok.id)::text || '}' """
    "FROM spent JOIN ok ON ok.id = spent.grant_id) "
    f"SELECT {REFRESH_COLUMNS}, (SELECT COUNT(*) FROM spent) "
    "FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id WHERE r.digest = ?"
)


def rotate_in_one(db: Raw, secret: str, at: int, rotation: Rotation) -> tuple[RefreshRow | None, bool]:
    """On PostgreSQL, in ``session``: the refresh token ``secret`` as ``refresh_for`` reads it, and whether this
    statement spent it with ``rotation``'s writes (the new refresh token, the binding, the audit event)."""
    spent_digest = digest(secret)
    params = (
        spent_digest, rotation.client_id, at, rotation.jkt, rotation.resources,
        at, spent_digest,
        digest(rotation.refresh), rotation.client_id, at, rotation.refresh_expires_at,
        rotation.bind_jkt, rotation.bind_jkt is not None,
        at, rotation.event, rotation.client_id, rotation.ip,
        spent_digest,
    )  # fmt: skip
    rows = fetch(db, _ROTATE, params)
    if not rows:
        return None, False
    *row, spent = rows[0]
    return refresh_row(row), bool(spent)
