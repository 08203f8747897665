"""A signed-in person's own account: who is visiting, what the account pages show (an overview, the connected apps,
the signed-in browsers, recent activity, the security settings), and revoking an app.

Changing the password is ``oauth.password``; passkeys and the second factor are changed through ``oauth.passkeys``
and ``oauth.second_factor``; signing browsers out is ``oauth.logout.end_sessions`` (Back-Channel Logout).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..core import Frontdesk
from ..storage import audit
from ..storage.connected_apps import connected_apps, disconnect_app
from ..storage.db import now, transaction
from ..storage.passkeys import PasskeyRow, passkeys_of
from ..storage.people import (
    AccountEvent,
    BrowserSession,
    SessionRow,
    UserRecord,
    live_sessions,
    recent_events,
    session_for,
)
from ..storage.second_factor import recovery_codes_left
from .app_identity import AppIdentity, identity_of
from .second_factor import has_second_factor
from .signin import Detour, Next, open_for

__all__ = [
    "ACTIVITY_DAYS",
    "AppView",
    "Overview",
    "SecurityView",
    "Visitor",
    "activity",
    "app_name",
    "apps",
    "browser_sessions",
    "overview",
    "revoke_app",
    "security",
    "sign_in_first",
    "visitor",
]

ACTIVITY_DAYS = 30


@dataclass(frozen=True, slots=True)
class Visitor:
    """The signed-in person on an account page, the session they came with, and when they came (the pages' now)."""

    token: str
    session: SessionRow
    person: UserRecord
    at: int

    def csrf(self, fd: Frontdesk) -> str:
        return fd.csrf_token(self.token)

    def recently_signed_in(self, fd: Frontdesk) -> bool:
        return self.at - self.session.auth_time <= fd.settings.lifetimes.recent_sign_in


def visitor(fd: Frontdesk, token: str | None) -> Visitor | None:
    """The signed-in person behind a session cookie, if the session is live."""
    if not token:
        return None
    at = now()
    with transaction(fd.engine) as conn:  # a write transaction: the visit counts as the session's last use
        session = session_for(conn, token, at, fd.settings.lifetimes.session_idle)
        person = fd.users.by_id(conn, session.user_id) if session else None
    return Visitor(token, session, person, at) if session and person else None


def sign_in_first(fd: Frontdesk, return_to: str, again_as: str | None = None) -> Detour:
    """An interaction to sign in (or, for a security change, to sign in again as the username ``again_as``), then
    come back to ``return_to``."""
    data: dict[str, Any] = {"kind": "account", "return_to": return_to}
    if again_as is not None:
        data.update(reauth=True, login_hint=again_as)
    with transaction(fd.engine) as conn:
        return open_for(fd, conn, data, Next.SIGN_IN, None, now())


@dataclass(frozen=True, slots=True)
class Overview:
    """The profile page's counts."""

    apps: int
    sessions: int
    passkeys: int
    second_factor: bool


def overview(fd: Frontdesk, visitor: Visitor) -> Overview:
    user_id = visitor.person.id
    with transaction(fd.engine, readonly=True) as conn:
        return Overview(
            apps=len(connected_apps(conn, user_id, visitor.at)),
            sessions=len(live_sessions(conn, user_id, visitor.at, fd.settings.lifetimes.session_idle, None)),
            passkeys=len(passkeys_of(conn, user_id)),
            second_factor=has_second_factor(conn, user_id),
        )


# --- connected apps ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AppView:
    """An app the person let in, by who it is (``app_identity``: the operator's name for it, or what can be known of
    a client nobody checked) and the hosts it sends them back to."""

    client_id: str
    name: str
    hosts: tuple[str, ...]
    scope: tuple[str, ...]
    granted_at: int
    last_used_at: int | None
    identity: AppIdentity


def app_name(fd: Frontdesk, client_id: str) -> str:
    """The app in a sentence of the account pages: a client nobody checked never by its chosen name alone."""
    return identity_of(fd.clients.get(client_id), client_id).label


def apps(fd: Frontdesk, visitor: Visitor) -> list[AppView]:
    """Every app with the person's consent or a live grant, the most recently used first."""
    with transaction(fd.engine, readonly=True) as conn:
        found = connected_apps(conn, visitor.person.id, visitor.at)
    shown = []
    for app in found:
        client = fd.clients.get(app.client_id)
        hosts = tuple(dict.fromkeys(urlsplit(u).netloc for u in client.redirect_uris)) if client else ()
        identity = identity_of(client, app.client_id)
        shown.append(
            AppView(app.client_id, identity.name, hosts, app.scope, app.granted_at, app.last_used_at, identity)
        )
    return shown


def revoke_app(fd: Frontdesk, user_id: str, client_id: str, ip: str | None) -> int:
    """Revoke an app: its consent goes, and every grant (so every refresh and access token) of it for this person.
    Audited as ``app.revoked``; returns the number of grants revoked."""
    with transaction(fd.engine) as conn:
        grants = disconnect_app(conn, user_id, client_id, now())
        audit.record(conn, "app.revoked", "success", client_id=client_id, user_id=user_id, ip=ip, grants=grants)
    return grants


# --- browsers, activity, security -------------------------------------------------------------------------------


def browser_sessions(fd: Frontdesk, visitor: Visitor) -> list[BrowserSession]:
    """Every browser the person is signed in on, the most recently used first, this one marked ``current``."""
    idle = fd.settings.lifetimes.session_idle
    with transaction(fd.engine, readonly=True) as conn:
        return live_sessions(conn, visitor.person.id, visitor.at, idle, visitor.session.id)


def activity(fd: Frontdesk, visitor: Visitor) -> list[AccountEvent]:
    """The person's own account events of the last ``ACTIVITY_DAYS`` days, newest first."""
    with transaction(fd.engine, readonly=True) as conn:
        return recent_events(conn, visitor.person.id, visitor.at - ACTIVITY_DAYS * 86400)


@dataclass(frozen=True, slots=True)
class SecurityView:
    """The Security page: the person's passkeys, whether the second step is on, and recovery codes left."""

    passkeys: tuple[PasskeyRow, ...]
    second_factor: bool
    recovery_left: int


def security(fd: Frontdesk, user_id: str) -> SecurityView:
    with transaction(fd.engine, readonly=True) as conn:
        passkeys = tuple(passkeys_of(conn, user_id))
        enrolled = has_second_factor(conn, user_id)
        left = recovery_codes_left(conn, user_id) if enrolled else 0
    return SecurityView(passkeys, enrolled, left)
