"""The browser's side of signing in with an upstream provider, as services for the pages: leaving for the provider,
coming back (a refused trip logged and audited), the trip waiting on an interaction, and the link the person
confirms with their password (never linked silently: ``flow``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

import httpx

from ..core import Frontdesk
from ..oauth.signin_throttle import Refusal, record_failure, record_success, refusal
from ..protocol.forms import Params
from ..storage import audit
from ..storage.db import now, transaction
from ..storage.upstream import LoginRow, finish_login, login_of_interaction
from .flow import Refused, Returned, begin, come_back, confirm_link
from .jwks import ProviderKeys
from .providers import find_provider

__all__ = ["Link", "Pending", "callback", "close_trip", "leave_for", "link_with_password", "pending"]

log = logging.getLogger("frontdesk.upstream")


def leave_for(fd: Frontdesk, name: str, interaction_id: str) -> tuple[str, str] | None:
    """A new trip to provider ``name`` for the interaction: the provider's authorization URL and the browser
    binding for a cookie; None when no such provider is offered here."""
    provider = find_provider(fd, name)
    if provider is None:
        return None
    return begin(fd, provider, interaction_id, now())


def callback(
    fd: Frontdesk, keys: ProviderKeys, name: str, params: Params, browser: str | None, ip: str | None
) -> Returned | Refused | None:
    """The redirection back from provider ``name`` (``flow.come_back``): the trip that returned; the refusal,
    logged and audited as ``upstream.signin`` ``refused``; or None when no such provider is offered here."""
    provider = find_provider(fd, name)
    if provider is None:
        return None
    try:
        with httpx.Client(follow_redirects=False) as http:
            return come_back(fd, http, keys, provider, params, browser, ip, now())
    except Refused as exc:
        log.info("upstream sign-in refused", extra={"provider": name, "reason": exc.reason, "detail": exc.detail})
        with transaction(fd.engine) as conn:
            audit.record(conn, "upstream.signin", "refused", ip=ip, provider=name, reason=exc.reason)
        return exc


@dataclass(frozen=True, slots=True)
class Pending:
    """The interaction's trip that came back, with the account's username and the provider's display name."""

    login: LoginRow
    username: str
    provider: str


def pending(fd: Frontdesk, interaction_id: str) -> Pending | None:
    with transaction(fd.engine, readonly=True) as conn:
        login = login_of_interaction(conn, interaction_id, now())
        user = fd.users.by_id(conn, login.user_id) if login and login.user_id else None
    if login is None or user is None:
        return None
    provider = find_provider(fd, login.provider)
    return Pending(login, user.username, provider.display_name if provider else login.provider)


def close_trip(fd: Frontdesk, login: LoginRow) -> bool:
    """The trip used up (signed in with, or the link declined); False when another request used it first."""
    with transaction(fd.engine) as conn:
        return finish_login(conn, login.id, login.status)


class Link(StrEnum):
    """How confirming a link with the account's password ended."""

    LINKED = "linked"
    WRONG_PASSWORD = "wrong_password"
    GONE = "gone"  # the trip was used, or the upstream account linked meanwhile: the person signs in again


def link_with_password(fd: Frontdesk, trip: Pending, password: str, ip: str | None) -> Link | Refusal:
    """The person proves with the password that they own the account the verified email points at; then the link
    is made (once). The sign-in throttle applies as to any password (``Refusal``: wait, the password unchecked)."""
    refused = refusal(fd, trip.username, ip, now())
    if refused is not None:
        return refused
    user = fd.users.authenticate(trip.username, password)
    if user is None or user.id != trip.login.user_id:
        record_failure(fd, trip.username, ip, now())
        return Link.WRONG_PASSWORD
    record_success(fd, trip.username, ip)
    return Link.LINKED if confirm_link(fd, trip.login, ip, now()) else Link.GONE
