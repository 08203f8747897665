"""What the two decoupled grants share (RFC 8628 device authorization, OpenID Connect CIBA Core 1.0): a client polls
the token endpoint while a person answers elsewhere, and once the answer is yes, the request becomes a grant.

``oauth.grants`` (the device code) and ``oauth.ciba_grant`` (the auth_req_id) keep what differs: where the request is
stored and which errors its spec names for an unknown or spent one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import Connection

from ..core import Frontdesk
from ..errors import AuthorizationPending, OAuthError, SlowDown
from ..storage import audit
from ..storage.clients import ClientRecord
from ..storage.db import Raw
from ..storage.grants import GrantRow, insert_grant
from .resources import ResourceRow, resolve

__all__ = ["SLOW_DOWN_STEP", "Issue", "poll_answer", "tokens_for_approval"]

Response = dict[str, Any]
# RFC 8628 §3.5 and CIBA Core §11 alike: slow_down adds (at least) 5 seconds to this and every later interval.
SLOW_DOWN_STEP = 5


class Issue(Protocol):
    """``oauth.grants``'s issuing of tokens on a grant (access, refresh per the client's grant types and
    ``offline_access``, ID token for ``openid``), handed in so that every grant issues alike; ``jkt`` binds the
    access token to the key of the request's DPoP proof (RFC 9449 §5: ``cnf.jkt``, ``token_type`` DPoP)."""

    def __call__(
        self,
        fd: Frontdesk,
        conn: Connection | Raw,
        client: ClientRecord,
        grant: GrantRow,
        scope: tuple[str, ...],
        resources: Sequence[ResourceRow],
        nonce: str | None,
        at: int,
        *,
        jkt: str | None = None,
    ) -> Response: ...


def poll_answer(last_polled_at: int | None, interval: int, at: int) -> tuple[OAuthError, int]:
    """The answer to a poll while the person has not answered, and the interval from now on: ``slow_down`` (and a
    longer interval) to a client polling faster than its interval, else ``authorization_pending``."""
    if last_polled_at is not None and at - last_polled_at < interval:
        return SlowDown("poll more slowly"), interval + SLOW_DOWN_STEP
    return AuthorizationPending("the person has not answered yet"), interval


def tokens_for_approval(
    fd: Frontdesk,
    conn: Connection,
    client: ClientRecord,
    *,
    grant_type: str,
    user_id: str,
    scope: tuple[str, ...],
    resource: tuple[str, ...],
    auth_time: int | None,
    amr: tuple[str, ...] | None,
    authorization_details: Sequence[dict[str, Any]] | None,
    issue: Issue,
    ip: str | None,
    at: int,
    jkt: str | None,
) -> Response:
    """An approved request, consumed a moment ago in this transaction, turned into a grant and its tokens (one
    ``token.issued`` event). Its resources must still be registered (RFC 8707 §2), else everything rolls back."""
    resources = resolve(fd, conn, resource)
    grant = insert_grant(
        conn,
        client_id=client.client_id,
        user_id=user_id,
        scope=scope,
        resource=resource,
        auth_time=auth_time,
        # RFC 8176: how the person who approved signed in; device approvals stored before 0009 have none recorded.
        amr=amr or ("pwd",),
        at=at,
        expires_at=at + fd.settings.lifetimes.refresh_token,
        authorization_details=authorization_details or (),  # RFC 9396 §7: what the person approved, kept with the grant
    )
    body = issue(fd, conn, client, grant, scope, resources, None, at, jkt=jkt)
    audit.record(
        conn,
        "token.issued",
        "success",
        client_id=client.client_id,
        user_id=user_id,
        ip=ip,
        grant_type=grant_type,
        grant_id=grant.id,
    )
    return body
