"""The apps a person let in: their consents, the grants still live, and when each app last got tokens.

"Last used" is derived, not written on the token endpoint's hot path: the newest of the app's grants (a sign-in) and
of their refresh tokens (each refresh stores a new one, with its time).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, select

from .grants import revoke_grant
from .schema import Consent, Grant, RefreshToken

__all__ = ["ConnectedApp", "connected_apps", "disconnect_app"]


@dataclass(frozen=True, slots=True)
class ConnectedApp:
    client_id: str
    scope: tuple[str, ...]
    granted_at: int
    last_used_at: int | None


def connected_apps(conn: Connection, user_id: str, at: int) -> list[ConnectedApp]:
    """Every client with a consent from the person or a live grant (a device approval records no consent), the
    most recently used first."""
    granted: dict[str, tuple[tuple[str, ...], int]] = {}
    for c in conn.execute(
        select(Consent.client_id, Consent.scope, Consent.created_at).where(Consent.user_id == user_id)
    ):
        granted[c.client_id] = (tuple(c.scope.split()), c.created_at)
    consented = set(granted)
    last_used: dict[str, int] = {}
    live = select(Grant.client_id, Grant.scope, Grant.created_at).where(
        Grant.user_id == user_id, Grant.revoked_at.is_(None), Grant.expires_at > at
    )
    for g in conn.execute(live.order_by(Grant.created_at)):
        last_used[g.client_id] = max(last_used.get(g.client_id, 0), g.created_at)
        if g.client_id not in consented:
            scope, since = granted.get(g.client_id, ((), g.created_at))
            granted[g.client_id] = (tuple(dict.fromkeys(scope + tuple(g.scope.split()))), since)
    refreshed = (
        select(Grant.client_id, func.max(RefreshToken.created_at).label("latest"))
        .join(RefreshToken, RefreshToken.grant_id == Grant.id)
        .where(Grant.user_id == user_id, Grant.revoked_at.is_(None))
        .group_by(Grant.client_id)
    )
    for r in conn.execute(refreshed):
        last_used[r.client_id] = max(last_used.get(r.client_id, 0), r.latest)
    apps = [ConnectedApp(cid, scope, since, last_used.get(cid)) for cid, (scope, since) in granted.items()]
    return sorted(apps, key=lambda a: a.last_used_at or a.granted_at, reverse=True)


def disconnect_app(conn: Connection, user_id: str, client_id: str, at: int) -> int:
    """Forget the consent and revoke every grant of the app for the person: its refresh tokens fail at once and its
    access tokens introspect as inactive. Returns the number of grants revoked."""
    conn.execute(delete(Consent).where(Consent.user_id == user_id, Consent.client_id == client_id))
    grant_ids = conn.execute(
        select(Grant.id).where(Grant.user_id == user_id, Grant.client_id == client_id, Grant.revoked_at.is_(None))
    ).scalars()
    return sum(revoke_grant(conn, grant_id, at) for grant_id in list(grant_ids))
