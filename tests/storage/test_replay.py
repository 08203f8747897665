"""A client assertion's ``jti`` is spent once per client (RFC 7523 §3 item 7), and rests only as a digest."""

from __future__ import annotations

from sqlalchemy import select

from frontdesk.storage.db import now, transaction
from frontdesk.storage.replay import spend_jti
from frontdesk.storage.schema import UsedJti

from .helpers import race


def test_a_jti_is_spent_once(fd):
    exp = now() + 60
    assert spend_jti(fd.engine, "client-a", "jti-1", exp)
    assert not spend_jti(fd.engine, "client-a", "jti-1", exp)


def test_the_same_jti_from_another_client_is_its_own(fd):
    """A jti is unique only among one issuer's assertions (RFC 7519 §4.1.7)."""
    exp = now() + 60
    assert spend_jti(fd.engine, "client-a", "jti-1", exp)
    assert spend_jti(fd.engine, "client-b", "jti-1", exp)


def test_a_jti_raced_by_four_connections_is_spent_once(fd):
    """Each contender has its own engine (its own pool), as separate processes would."""
    results = race(fd, lambda engine: spend_jti(engine, "client-a", "raced", now() + 60), contenders=4)
    assert sorted(results) == [False] * 3 + [True]


def test_a_spent_jti_rests_as_a_digest_until_the_assertion_expires(fd):
    exp = now() + 60
    spend_jti(fd.engine, "client-a", "jti-in-clear", exp)
    with transaction(fd.engine, readonly=True) as conn:
        (row,) = conn.execute(select(UsedJti.key, UsedJti.expires_at)).all()
    assert "jti-in-clear" not in row.key
    assert row.expires_at == exp
