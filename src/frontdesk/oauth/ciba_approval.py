"""OpenID Connect CIBA Core 1.0, the person's side (§5 step 3, §7.1 ``binding_message``): the requests waiting for a
signed-in person, shown in plain words (which app, the binding message to compare with the other device, the scopes
and authorization details, until when), and their answer.

Approving goes through the one sign-in policy (``signin.next_step``) for the requesting client, as the device flow's
Allow does: a second factor the policy asks for it is added (a step-up through an interaction that comes back to the
approvals page) before the approval is taken. Each answer is one compare-and-set and one audit event
(``ciba.approved``, ``ciba.denied``); in ping mode the client is then told (``ciba_ping``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection

from ..core import Frontdesk
from ..storage import audit
from ..storage.ciba import BackchannelRow, decide_request, request_by_digest, waiting_for
from ..storage.db import now, transaction
from ..storage.people import SessionRow
from .app_identity import AppIdentity, identity_of
from .authorization_details import describe_details, type_names
from .ciba_ping import notify_soon
from .signin import Asked, Detour, Next, facts_of, next_step, open_for

__all__ = ["APPROVALS_PATH", "Answer", "WaitingRequest", "decide", "waiting"]

APPROVALS_PATH = "/account/approvals"
Answer = Literal["approved", "denied", "expired"]


@dataclass(frozen=True, slots=True)
class WaitingRequest:
    """A request as the person asked sees it. ``handle`` names it on the page: the digest of its ``auth_req_id``,
    which the client holds and the person never sees."""

    handle: str
    app: AppIdentity
    binding_message: str | None
    scope: tuple[str, ...]
    details: tuple[str, ...]  # RFC 9396 authorization details, each in the words of its type's template
    resource: tuple[str, ...]
    created_at: int
    expires_at: int


def _shown(fd: Frontdesk, row: BackchannelRow) -> WaitingRequest:
    return WaitingRequest(
        handle=row.digest,
        app=identity_of(fd.clients.get(row.client_id), row.client_id),
        binding_message=row.binding_message,
        scope=row.scope,
        details=tuple(describe_details(fd, row.authorization_details)),
        resource=row.resource,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


def waiting(fd: Frontdesk, user_id: str) -> list[WaitingRequest]:
    """The person's unanswered, unexpired requests, newest first."""
    with transaction(fd.engine, readonly=True) as conn:
        rows = waiting_for(conn, user_id, now())
    return [_shown(fd, row) for row in rows]


def _owed(fd: Frontdesk, conn: Connection, client_id: str, session: SessionRow, at: int) -> Detour | None:
    """None when the session's sign-in may approve a request of ``client_id``; otherwise an interaction for what it
    still owes under the one sign-in policy, coming back to the approvals page."""
    facts = facts_of(conn, session, for_this_request=False)
    step = next_step(fd.settings.second_factor, Asked(client_id=client_id), facts, at)
    if step is Next.PROCEED:
        return None
    data = {"kind": "account", "return_to": APPROVALS_PATH, "client_id": client_id}
    return open_for(fd, conn, data, step, session, at)


def decide(fd: Frontdesk, handle: str, allow: bool, session: SessionRow, ip: str | None) -> Answer | Detour:
    """The person's answer to one of their requests, with the facts of the sign-in that gave it; "expired" when it
    is no longer waiting (answered, expired, or not theirs); a detour when approving owes a step-up first."""
    at = now()
    with transaction(fd.engine) as conn:
        row = request_by_digest(conn, handle) if handle else None
        if row is None or row.user_id != session.user_id:
            return "expired"
        if allow:
            # Checked at the decision itself: a form posted straight here must not skip the step-up.
            owed = _owed(fd, conn, row.client_id, session, at)
            if owed is not None:
                return owed
        status: Answer = "approved" if allow else "denied"
        if not decide_request(conn, row.digest, session.user_id, status, session.auth_time, session.amr, at):
            return "expired"
        audit.record(
            conn,
            f"ciba.{status}",
            "success",
            client_id=row.client_id,
            user_id=session.user_id,
            ip=ip,
            scope=" ".join(row.scope),
            **({"authorization_details": type_names(row.authorization_details)} if row.authorization_details else {}),
        )
    if row.sealed_notification is not None:
        notify_soon(fd, row.client_id, row)  # §10.2: ping mode, once the answer is committed
    return status
