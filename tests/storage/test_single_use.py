"""Single use is one compare-and-set statement: racing connections never both win, and secrets rest as digests."""

from __future__ import annotations

from sqlalchemy import select, text

from frontdesk.secret import digest
from frontdesk.storage.db import now, transaction
from frontdesk.storage.grants import consume_code, consume_refresh
from frontdesk.storage.schema import AuthorizationCode, RefreshToken

from .helpers import race, stored_grant


def _grant(fd):
    _, code, refresh = stored_grant(fd)
    return code, refresh


def _race(fd, consume, secret: str) -> list[bool]:
    def attempt(engine) -> bool:
        with transaction(engine) as conn:
            return consume(conn, secret, now())

    return race(fd, attempt)


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
