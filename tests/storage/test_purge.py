"""The purge deletes what expired, in batches, and keeps what is live."""

from __future__ import annotations

from sqlalchemy import func, select

from frontdesk.storage.db import now, transaction
from frontdesk.storage.grants import revoke_access_token
from frontdesk.storage.purge import CODE_GRACE, GRANT_GRACE, purge_expired, saturated
from frontdesk.storage.schema import AuthorizationCode, Grant, RefreshToken, RevokedAccessToken

from .helpers import stored_grant


def _artefacts(fd, at: int, life: int) -> None:
    grant, _, _ = stored_grant(fd, (), at=at, life=life)
    with transaction(fd.engine) as conn:
        revoke_access_token(conn, f"{grant.id}.jti", at + life)


def _count(fd, model) -> int:
    with transaction(fd.engine) as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


def test_purge_removes_expired_and_keeps_live_rows(fd):
    """Rows long expired go; rows still live stay."""
    at = now()
    for _ in range(5):
        _artefacts(fd, at - 10 * GRANT_GRACE, 60)  # long dead
    _artefacts(fd, at, 3600)  # live
    counts = purge_expired(fd.engine, at, batch=2)
    assert counts["grants"] == 5
    assert counts["refresh_tokens"] == 5
    assert counts["authorization_codes"] == 5
    assert counts["revoked_access_tokens"] == 5
    for model in (Grant, RefreshToken, AuthorizationCode, RevokedAccessToken):
        assert _count(fd, model) == 1


def test_recently_expired_codes_are_kept_to_recognise_replays(fd):
    """A code expired less than the grace period ago stays, so a late replay still counts as one."""
    at = now()
    _artefacts(fd, at - 120, 60)
    purge_expired(fd.engine, at)
    assert _count(fd, AuthorizationCode) == 1
    purge_expired(fd.engine, at + CODE_GRACE + 120)
    assert _count(fd, AuthorizationCode) == 0


def test_a_pass_that_hits_its_bound_says_so(fd):
    """A backlog bigger than one pass is reported, so the server runs the next pass at once rather than in ten
    minutes; a pass that cleared everything is not."""
    at = now()
    for _ in range(5):
        _artefacts(fd, at - 10 * GRANT_GRACE, 60)
    first = purge_expired(fd.engine, at, batch=2, max_batches=1)
    assert first["grants"] == 2
    assert saturated(first, batch=2, max_batches=1)
    while saturated(counts := purge_expired(fd.engine, at, batch=2, max_batches=1), batch=2, max_batches=1):
        pass
    assert not saturated(counts, batch=2, max_batches=1)
    assert _count(fd, Grant) == 0


def test_expired_vault_connect_links_are_purged(fd):
    """Connect links live minutes; their rows go once expired."""
    from frontdesk.storage.schema import VaultConnectSession

    at = now()
    with transaction(fd.engine) as conn:
        for n, expires in enumerate((at - 10, at + 600)):
            conn.execute(
                VaultConnectSession.__table__.insert(),
                {"id": f"cs_{n}", "digest": f"{n:064x}", "user": "u", "integration": "cal", "scopes": "[]",
                 "params": "{}", "created_at": at - 700, "expires_at": expires},
            )  # fmt: skip
    assert purge_expired(fd.engine, at)["vault_connect_sessions"] == 1
    assert _count(fd, VaultConnectSession) == 1
