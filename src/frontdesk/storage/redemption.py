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
  token issued from it dead at once. A code, or a refresh that narrows nothing, is read by the spend's own
  statement instead (``redeem_in_one``, ``rotate_in_one``; BENCHMARKS.md row 63), which spends only when every
  check that needs the row holds.
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
from typing import Any, Literal

from sqlalchemy import Engine

from ..secret import digest, new_token
from .audit import Row as AuditRow
from .audit import record_after
from .db import Raw, fetch, raw_transaction, run
from .grants import (
    CODE_COLUMNS,
    REFRESH_COLUMNS,
    CodeRow,
    GrantRow,
    RefreshRow,
    code_row,
    consume_code,
    consume_refresh,
    refresh_row,
)

__all__ = ["InOne", "Redemption", "Spent", "new_refresh", "redeem_in_one", "rotate_in_one", "session", "spend"]

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
class InOne:
    """A code redemption or refresh rotation spent by the statement that reads it (``redeem_in_one``,
    ``rotate_in_one``): what the statement checks, and what it writes when the checks hold."""

    client_id: str
    jkt: str | None  # the proof key's thumbprint: a code or grant bound to a key is spent only with it (RFC 9449)
    resources: list[str]  # URIs a grant's resources may be among; a grant naming any other is not spent here
    refresh: str  # the refresh token to issue, when ``wants_refresh`` holds (below)
    refresh_expires_at: int  # at most: never after the grant
    client_wants_refresh: bool  # the client's half of ``wants_refresh``; the grant's is the statement's
    bind_jkt: str | None  # RFC 9449 §5: a public client's new refresh token is bound to its proof key
    event: str
    ip: str | None
    redirect_uri: str | None = None  # a code's: if the request sends one, the authorization request's (RFC 6749)
    challenge: str = ""  # a code's: the S256 challenge of the request's verifier (RFC 7636 §4.6)


# A code redemption, or a refresh rotation that narrows nothing, on PostgreSQL: the read of ``code_for`` or
# ``refresh_for`` and the spend of ``_SPEND`` as one statement, one round trip where there were two (a refresh: 6.7 %
# less CPU, 3.6 % more a second; BENCHMARKS.md row 63). Every check that needs the row is made in ``ok``, so the code
# or token is spent only when nothing can refuse the request afterwards: the client's own, unexpired, its grant live,
# bound to no other key, every resource of the grant one the caller can mint for (``InOne.resources``); a code's
# redirect URI and PKCE challenge too. Whatever ``ok`` refuses is spent by nobody, and the caller decides from the
# row, read in the same statement, as before. The refresh token is issued on OpenID Connect Core §11's terms
# (``oauth.redemption.wants_refresh``). The audit detail is what ``audit.event_row`` renders for the same dict.
_IN_ONE = (
    "WITH ok AS (SELECT g.id, g.user_id, g.expires_at, "  # noqa: S608 -- constant fragments only
    "(position(' openid ' IN ' ' || g.scope || ' ') = 0 OR position(' offline_access ' IN ' ' || g.scope || ' ') > 0) "
    "AS offline FROM {table} {t} JOIN grants g ON g.id = {t}.grant_id "
    "WHERE {t}.digest = ? AND {t}.client_id = ? AND {t}.expires_at > ? AND {t}.consumed_at IS NULL "
    "AND g.revoked_at IS NULL AND ({key} IS NULL OR {key} = ?) {code_checks}"
    "AND NOT EXISTS (SELECT 1 FROM json_array_elements_text(g.resource::json) AS u(uri) WHERE u.uri <> ALL(?))), "
    "spent AS (UPDATE {table} SET consumed_at = ? WHERE digest = ? AND consumed_at IS NULL "
    "AND EXISTS (SELECT 1 FROM ok) RETURNING grant_id), "
    "issued AS (INSERT INTO refresh_tokens (digest, grant_id, client_id, created_at, expires_at, consumed_at) "
    "SELECT ?, ok.id, ?, ?, LEAST(ok.expires_at, ?), NULL FROM spent JOIN ok ON ok.id = spent.grant_id "
    "WHERE ? AND ok.offline RETURNING grant_id), "
    "bound AS (UPDATE grants SET dpop_jkt = ? WHERE id = (SELECT grant_id FROM issued) AND dpop_jkt IS NULL AND ?), "
    f"audited AS (INSERT INTO audit_events ({_AUDIT_COLUMNS}) "
    """SELECT ?, ?, 'success', ?, ok.user_id, ?, '{{"grant_id":' || to_json(ok.id)::text || '{detail_rest}' """
    "FROM spent JOIN ok ON ok.id = spent.grant_id) "
    "SELECT {columns}, (SELECT COUNT(*) FROM spent) FROM {table} {t} JOIN grants g ON g.id = {t}.grant_id "
    "WHERE {t}.digest = ?"
)
_IN_ONE_SQL: dict[Spent, str] = {
    # RFC 9449 §10: a code is bound to the key named at /authorize; RFC 6749 §4.1.3 and RFC 7636 §4.6 its checks.
    "code": _IN_ONE.format(
        table="authorization_codes", t="c", key="c.dpop_jkt", columns=CODE_COLUMNS,
        code_checks="AND (? OR c.redirect_uri = ?) AND c.code_challenge = ? ",
        detail_rest=',"grant_type":"authorization_code"}',
    ),
    # RFC 9449 §5: a refresh token is bound to the key its grant was bound to.
    "refresh": _IN_ONE.format(
        table="refresh_tokens", t="r", key="g.dpop_jkt", columns=REFRESH_COLUMNS, code_checks="", detail_rest="}",
    ),
}  # fmt: skip


def _in_one(db: Raw, spent: Spent, secret: str, at: int, one: InOne) -> tuple[list[Any] | None, bool]:
    spent_digest = digest(secret)
    code_checks = (one.redirect_uri is None, one.redirect_uri, one.challenge) if spent == "code" else ()
    params = (
        spent_digest, one.client_id, at, one.jkt, *code_checks, one.resources,
        at, spent_digest,
        digest(one.refresh), one.client_id, at, one.refresh_expires_at, one.client_wants_refresh,
        one.bind_jkt, one.bind_jkt is not None,
        at, one.event, one.client_id, one.ip,
        spent_digest,
    )  # fmt: skip
    rows = fetch(db, _IN_ONE_SQL[spent], params)
    if not rows:
        return None, False
    *row, done = rows[0]
    return row, bool(done)


def redeem_in_one(db: Raw, code: str, at: int, one: InOne) -> tuple[CodeRow | None, bool]:
    """On PostgreSQL, in ``session``: the code as ``code_for`` reads it, and whether this statement spent it with
    ``one``'s writes (the refresh token, the binding, the audit event)."""
    row, done = _in_one(db, "code", code, at, one)
    return (code_row(row) if row is not None else None), done


def rotate_in_one(db: Raw, token: str, at: int, one: InOne) -> tuple[RefreshRow | None, bool]:
    """On PostgreSQL, in ``session``: the refresh token as ``refresh_for`` reads it, and whether this statement
    spent it with ``one``'s writes (the new refresh token, the binding, the audit event)."""
    row, done = _in_one(db, "refresh", token, at, one)
    return (refresh_row(row) if row is not None else None), done
