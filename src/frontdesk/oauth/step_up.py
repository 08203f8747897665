"""A second factor for a page that asks more than the operator's sign-in policy: the admin console, whose sessions
must have used one (``[admin] console_requires_second_factor``).

A signed-in person whose session lacks it proves it at the sign-in's second step (their authenticator app, or a
recovery code), or enrols an app there first when they have none; the new session carries ``otp`` and ``mfa`` in
its ``amr`` (RFC 8176 §2), and the browser comes back to the page it was on.
"""

from __future__ import annotations

from ..core import Frontdesk
from ..protocol.rfc8176 import is_multi_factor
from ..storage.db import now, transaction
from .account import Visitor
from .second_factor import has_second_factor
from .signin import Detour, Next, open_for

__all__ = ["second_factor_first", "used_second_factor"]


def used_second_factor(visitor: Visitor) -> bool:
    """Whether the visitor's session was signed in with a second factor (or a passkey that verified the person)."""
    return is_multi_factor(visitor.session.amr)


def second_factor_first(fd: Frontdesk, visitor: Visitor, return_to: str) -> Detour:
    """An interaction held for the second factor the visitor's session lacks (enrolling one when the person has
    none), then back to ``return_to``."""
    at = now()
    with transaction(fd.engine) as conn:
        step = Next.SECOND_FACTOR if has_second_factor(conn, visitor.person.id) else Next.ENROL
        params = {"kind": "account", "return_to": return_to}
        return open_for(fd, conn, params, step, visitor.session, at)
