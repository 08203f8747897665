"""RFC 8628 device authorization, the person's side: a device asks for a pair of codes (§3.1, §3.2), and a signed-in
person types the user code (§3.3) and allows or denies. The device's polling is a grant (``oauth.grants``).

Approving goes through the one sign-in policy (``signin.next_step``) for the device's client: a second factor it
requires is added (a step-up) before the approval is taken. Each use case is one transaction; the decision is one
audit event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection

from ..core import Frontdesk
from ..errors import UnauthorizedClient
from ..protocol.rfc8628 import format_user_code, new_user_code, normalise_user_code
from ..protocol.rfc8707 import check_resource
from ..protocol.scope import parse_scope
from ..storage import audit
from ..storage.clients import ClientRecord
from ..storage.db import now, transaction
from ..storage.device import decide_device, device_by_user_code, insert_device
from ..storage.people import SessionRow, session_for
from .grants import DEVICE_CODE, check_scope
from .rate_limits import check, count_failure, user_code_limits
from .resources import resolve
from .signin import Asked, Detour, Next, facts_of, next_step, open_for

__all__ = [
    "Answer",
    "DeviceAsk",
    "DeviceAuthorization",
    "DeviceRequest",
    "checked_request",
    "decide",
    "review",
    "session_of",
    "sign_in_first",
    "start",
]

# Draws of a user code before giving up: among 20^8 codes, five collisions in a row mean something else is wrong.
_DRAWS = 5

Answer = Literal["recorded", "expired"]


@dataclass(frozen=True, slots=True)
class DeviceAsk:
    """A device authorization request, checked (RFC 8628 §3.1)."""

    client_id: str
    scope: tuple[str, ...]
    resource: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DeviceAuthorization:
    """The device authorization response (RFC 8628 §3.2)."""

    device_code: str
    user_code: str  # as shown to people: grouped with a dash
    verification_uri: str
    verification_uri_complete: str
    expires_in: int
    interval: int

    def as_json(self) -> dict[str, object]:
        return {
            "device_code": self.device_code,
            "user_code": self.user_code,
            "verification_uri": self.verification_uri,
            "verification_uri_complete": self.verification_uri_complete,
            "expires_in": self.expires_in,
            "interval": self.interval,
        }


@dataclass(frozen=True, slots=True)
class DeviceRequest:
    """A pending device code as the person asked to approve it sees it (RFC 8628 §3.3)."""

    user_code: str  # as shown to people
    client_id: str
    client_name: str
    scope: tuple[str, ...]
    resource: tuple[str, ...]
    username: str


def _insert(
    fd: Frontdesk, conn: Connection, client_id: str, scope: tuple[str, ...], resource: tuple[str, ...], at: int
) -> tuple[str, str]:
    """(device_code, user_code): the service draws the user code (RFC 8628 §6.1 alphabet), storage keeps it."""
    lt = fd.settings.lifetimes
    for _ in range(_DRAWS):
        user_code = new_user_code()
        device_code = insert_device(
            conn,
            user_code=user_code,
            client_id=client_id,
            scope=scope,
            resource=resource,
            interval=lt.device_interval,
            at=at,
            ttl=lt.device_code,
        )
        if device_code is not None:
            return device_code, user_code
        # a user code collision: draw again
    raise RuntimeError("could not draw a free user code")


def checked_request(fd: Frontdesk, client: ClientRecord, scope: str | None, resource: list[str]) -> DeviceAsk:
    """RFC 8628 §3.1: the request of an authenticated client, if it is allowed the grant and asks for scopes and
    resources it may have (``scope`` and ``resource`` as sent); raises the OAuthError to answer otherwise."""
    if DEVICE_CODE not in client.grant_types:
        raise UnauthorizedClient("the client is not allowed the device authorization grant")
    resources = resolve(fd, fd.engine, check_resource(resource))  # RFC 8707 §2: registered resources only
    checked_scope = check_scope(fd, client, parse_scope(scope), resources)
    return DeviceAsk(client.client_id, checked_scope, tuple(r.uri for r in resources))


def start(fd: Frontdesk, asked: DeviceAsk) -> DeviceAuthorization:
    """RFC 8628 §3.2: a new device code and user code for a checked request."""
    lt = fd.settings.lifetimes
    with transaction(fd.engine) as conn:
        device_code, user_code = _insert(fd, conn, asked.client_id, asked.scope, asked.resource, now())
    shown = format_user_code(user_code)
    return DeviceAuthorization(
        device_code=device_code,
        user_code=shown,
        verification_uri=fd.url("/device"),
        verification_uri_complete=fd.url(f"/device?user_code={shown}"),
        expires_in=lt.device_code,
        interval=lt.device_interval,
    )


def session_of(fd: Frontdesk, token: str | None) -> SessionRow | None:
    """The live session of the verification page's visitor (read only: looking is not a use of the session)."""
    if not token:
        return None
    with transaction(fd.engine, readonly=True) as conn:
        return session_for(conn, token, now(), fd.settings.lifetimes.session_idle)


def sign_in_first(fd: Frontdesk, user_code: str | None) -> Detour:
    """An interaction to sign in and come back to the user code typed (or given in ``verification_uri_complete``)."""
    at = now()
    with transaction(fd.engine) as conn:
        data: dict[str, Any] = {"kind": "device", "user_code": user_code}
        row = device_by_user_code(conn, normalise_user_code(user_code), at) if user_code else None
        if row is not None:
            data["client_id"] = row.client_id  # known already: the sign-in owes what the policy asks for it
        return open_for(fd, conn, data, Next.SIGN_IN, None, at)


def _owed(
    fd: Frontdesk, conn: Connection, client_id: str, user_code: str, session: SessionRow, at: int
) -> Detour | None:
    """None when the session's sign-in may approve a device code of ``client_id``; otherwise an interaction for what
    it still owes (a step-up to the second factor the policy asks for this client). The one sign-in policy."""
    facts = facts_of(conn, session, for_this_request=False)
    step = next_step(fd.settings.second_factor, Asked(client_id=client_id), facts, at)
    if step is Next.PROCEED:
        return None
    data = {"kind": "device", "user_code": format_user_code(user_code), "client_id": client_id}
    return open_for(fd, conn, data, step, session, at)


def review(fd: Frontdesk, typed: str, session: SessionRow, ip: str | None) -> DeviceRequest | Detour | None:
    """The pending request behind a typed user code, for the person to allow or deny; a detour when their sign-in
    owes a step-up first; None when the code is not valid (counted against ``ip``). Raises RateLimited."""
    code = normalise_user_code(typed)
    # RFC 8628 §5.1: user codes are short, so guessing them must be rate limited.
    limits = user_code_limits(fd, ip)
    check(fd, limits)
    at = now()
    with transaction(fd.engine) as conn:
        row = device_by_user_code(conn, code, at)
        if row is not None:
            owed = _owed(fd, conn, row.client_id, row.user_code, session, at)
            if owed is not None:
                return owed
        person = fd.users.by_id(conn, session.user_id)
    if row is None:
        count_failure(fd, limits)
        return None
    client = fd.clients.get(row.client_id)
    return DeviceRequest(
        user_code=format_user_code(code),
        client_id=row.client_id,
        client_name=client.name if client else row.client_id,
        scope=row.scope,
        resource=row.resource,
        username=person.username if person else "",
    )


def decide(fd: Frontdesk, typed: str, allow: bool, session: SessionRow, ip: str | None) -> Answer | Detour:
    """The person's answer to a user code, with the facts of the sign-in that gave it (RFC 8628 §3.3), audited as
    consent; "expired" when the code is no longer pending; a detour when allowing owes a step-up first."""
    at = now()
    with transaction(fd.engine) as conn:
        row = device_by_user_code(conn, normalise_user_code(typed), at)
        if row is not None and allow:
            # Checked again at the decision itself: a form posted straight here must not skip the step-up.
            owed = _owed(fd, conn, row.client_id, row.user_code, session, at)
            if owed is not None:
                return owed
        status = "approved" if allow else "denied"
        if row is None or not decide_device(conn, row.digest, status, session.user_id, session.auth_time, session.amr):
            return "expired"
        audit.record(
            conn,
            "consent",
            "granted" if allow else "denied",
            client_id=row.client_id,
            user_id=session.user_id,
            ip=ip,
            scope=" ".join(row.scope),
            grant_type=DEVICE_CODE,
        )
    return "recorded"
