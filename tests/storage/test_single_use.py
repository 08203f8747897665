"""Single use is one compare-and-set statement: racing connections never both win, and secrets rest as digests."""

from __future__ import annotations

import threading

from sqlalchemy import select, text

from frontdesk.secret import digest
from frontdesk.storage.db import now, open_engine, transaction
from frontdesk.storage.grants import consume_code, consume_refresh, insert_code, insert_grant, insert_refresh
from frontdesk.storage.schema import AuthorizationCode, RefreshToken


def _grant(fd):
    at = now()
    with transaction(fd.engine) as conn:
        grant = insert_grant(
            conn,
            client_id="c",
            user_id="u",
            scope=("openid",),
            resource=(),
            auth_time=at,
            amr=("pwd",),
            at=at,
            expires_at=at + 3600,
        )
        code = insert_code(
            conn,
            grant_id=grant.id,
            client_id="c",
            redirect_uri="https://app.example/cb",
            code_challenge="x" * 43,
            nonce=None,
            expires_at=at + 60,
        )
        refresh = insert_refresh(conn, grant=grant, at=at, idle=3600)
    return code, refresh


def _race(fd, consume, secret: str, contenders: int = 8) -> list[bool]:
    """Each contender uses its own engine (its own connection pool), as separate processes would."""
    engines = [open_engine(fd.settings.db_url) for _ in range(contenders)]
    barrier = threading.Barrier(contenders)
    results: list[bool] = []
    lock = threading.Lock()

    def contend(engine) -> None:
        barrier.wait()
        with transaction(engine) as conn:
            won = consume(conn, secret, now())
        with lock:
            results.append(won)

    threads = [threading.Thread(target=contend, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for e in engines:
        e.dispose()
    return results


def test_a_code_raced_by_eight_connections_is_consumed_once(fd):
    """Exactly one of eight concurrent consumers wins the code."""
    code, _ = _grant(fd)
    assert sorted(_race(fd, consume_code, code)) == [False] * 7 + [True]


def test_a_refresh_token_raced_by_eight_connections_rotates_once(fd):
    """Exactly one of eight concurrent rotations wins the refresh token."""
    _, refresh = _grant(fd)
    assert sorted(_race(fd, consume_refresh, refresh)) == [False] * 7 + [True]


def test_codes_and_refresh_tokens_rest_only_as_digests(fd):
    """The database holds the SHA-256 digest, never the code or refresh token itself."""
    code, refresh = _grant(fd)
    with transaction(fd.engine) as conn:
        assert conn.execute(select(AuthorizationCode.digest)).scalar_one() == digest(code)
        assert conn.execute(select(RefreshToken.digest)).scalar_one() == digest(refresh)
        for table in ("authorization_codes", "refresh_tokens", "grants"):
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                assert code not in repr(tuple(row))
                assert refresh not in repr(tuple(row))
