"""Finishing a sign-in: after the first factor (a password, or a passkey), the second when one is owed, then a new
session bound to the interaction.

A second factor is owed when the person enrolled one, when the operator requires one (for everyone, or for the
client asking), or when the client asked for the multi-factor ``acr``; a passkey that verified the person is
multi-factor by itself. Someone who owes one but has none is asked to enrol before continuing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from .core import Frontdesk
from .protocol.rfc8176 import is_multi_factor
from .second_factor import has_second_factor, mfa_required
from .storage import audit
from .storage.interactions import attach_user, hold_for_second_factor
from .storage.people import close_session, open_session

__all__ = ["Visit", "first_factor_passed", "mfa_required_for", "signed_in"]


@dataclass(frozen=True, slots=True)
class Visit:
    """The browser signing in: its old session cookie (replaced: session fixation), address and user agent."""

    old_token: str | None
    ip: str | None
    user_agent: str | None


def mfa_required_for(fd: Frontdesk, params: dict[str, Any]) -> bool:
    """The policy for an interaction: an authorization request names its client and acr; other sign-ins (the
    account page, a device) fall under the operator's policy for everyone."""
    request = params.get("request") if params.get("kind") == "authorize" else None
    if request:
        return mfa_required(fd, request["client_id"], tuple(request.get("acr_values", ())))
    return mfa_required(fd, None, ())


def first_factor_passed(
    fd: Frontdesk, conn: Connection, ix_id: str, params: dict[str, Any], user_id: str, amr: tuple[str, ...]
) -> bool:
    """Hold the interaction for the second step when one is owed (True); otherwise the caller signs the person in."""
    if is_multi_factor(amr):
        return False
    if not has_second_factor(conn, user_id) and not mfa_required_for(fd, params):
        return False
    hold_for_second_factor(conn, ix_id, user_id, amr)
    return True


def signed_in(
    fd: Frontdesk, conn: Connection, ix_id: str, user_id: str, amr: tuple[str, ...], visit: Visit, at: int
) -> str:
    """A new session (a new id at every sign-in), the interaction's person, and the audit event; the new token."""
    if visit.old_token:
        close_session(conn, visit.old_token)
    token = open_session(
        conn, user_id, amr, at, fd.settings.lifetimes.session, user_agent=visit.user_agent, ip=visit.ip
    )
    attach_user(conn, ix_id, user_id, at)
    audit.record(conn, "signin", "success", user_id=user_id, ip=visit.ip, amr=" ".join(amr))
    return token
