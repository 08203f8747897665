"""The server's own housekeeping (oauth/housekeeping.py): the purge pass the web application runs every ten
minutes, as a service that says what it deleted and whether it fell behind."""

from __future__ import annotations

from frontdesk.oauth.housekeeping import purge
from frontdesk.storage.db import now, transaction
from frontdesk.storage.ratelimit import hit


def test_a_purge_pass_deletes_what_expired_and_is_not_behind(fd):
    """An expired counter goes, a live one stays, and a pass that did not reach its bound is not behind."""
    with transaction(fd.engine) as conn:
        hit(conn, "test", "expired", 60, now() - 3600)
        hit(conn, "test", "live", 60, now())
    purged = purge(fd)
    assert purged.deleted["rate_limits"] == 1
    assert purged.behind is False
    assert purge(fd).deleted["rate_limits"] == 0
