"""The CIBA grant at the token endpoint (OpenID Connect CIBA Core 1.0 §10.1, §11): the client redeems its
``auth_req_id`` once the person approved, as a device redeems its device code (RFC 8628 §3.4, ``oauth.grants``).

One transaction reads the request and either records the poll, marks it expired (audited once), or consumes it and
issues the tokens; the protocol error is raised after the transaction commits, so what the poll recorded stays."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import Connection

from ..core import Frontdesk
from ..errors import (
    AccessDenied,
    AuthorizationPending,
    ExpiredToken,
    InvalidGrant,
    InvalidRequest,
    OAuthError,
    SlowDown,
)
from ..protocol.ciba import CIBA_GRANT
from ..protocol.forms import Params
from ..storage import audit
from ..storage.ciba import BackchannelRow, consume_request, expire_request, poll_request, request_for
from ..storage.clients import ClientRecord
from ..storage.db import Raw, now, transaction
from ..storage.grants import GrantRow, insert_grant
from .resources import ResourceRow, resolve

__all__ = ["SLOW_DOWN_STEP", "Issue", "redeem"]

Response = dict[str, Any]
# §11 slow_down: "the interval MUST be increased by at least 5 seconds for this and all subsequent requests".
SLOW_DOWN_STEP = 5


class Issue(Protocol):
    """``oauth.grants``'s issuing of tokens on a grant (access, refresh per the client's grant types and
    ``offline_access``, ID token for ``openid``), handed in so that both grants issue alike; ``jkt`` binds the access
    token to the key of the request's DPoP proof (RFC 9449 §5: ``cnf.jkt``, ``token_type`` DPoP)."""

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


def _waiting(conn: Connection, row: BackchannelRow, at: int) -> OAuthError:
    """§11: ``slow_down`` to a client that polls faster than the interval (which then grows), else
    ``authorization_pending``; the poll is recorded either way."""
    interval = row.interval
    if row.last_polled_at is not None and at - row.last_polled_at < row.interval:
        interval += SLOW_DOWN_STEP
        answer: OAuthError = SlowDown("poll more slowly")
    else:
        answer = AuthorizationPending("the person has not answered yet")
    poll_request(conn, row.digest, at, interval)
    return answer


def _expired(conn: Connection, row: BackchannelRow, client: ClientRecord, ip: str | None, at: int) -> OAuthError:
    if expire_request(conn, row.digest, at):
        audit.record(conn, "ciba.expired", "expired", client_id=client.client_id, user_id=row.user_id, ip=ip)
    return ExpiredToken("the authentication request has expired; make a new one")


def _tokens(
    fd: Frontdesk,
    conn: Connection,
    client: ClientRecord,
    row: BackchannelRow,
    issue: Issue,
    ip: str | None,
    at: int,
    jkt: str | None,
) -> Response:
    resources = resolve(fd, conn, row.resource)  # still registered (RFC 8707 §2); else all rolls back
    grant = insert_grant(
        conn,
        client_id=client.client_id,
        user_id=row.user_id,
        scope=row.scope,
        resource=row.resource,
        auth_time=row.auth_time,
        amr=row.amr or ("pwd",),  # RFC 8176: how the person who approved signed in
        at=at,
        expires_at=at + fd.settings.lifetimes.refresh_token,
        authorization_details=row.authorization_details,  # RFC 9396 §7: what the person approved, kept with the grant
    )
    body = issue(fd, conn, client, grant, row.scope, resources, None, at, jkt=jkt)
    audit.record(
        conn,
        "token.issued",
        "success",
        client_id=client.client_id,
        user_id=row.user_id,
        ip=ip,
        grant_type=CIBA_GRANT,
        grant_id=grant.id,
    )
    return body


def redeem(
    fd: Frontdesk, client: ClientRecord, params: Params, ip: str | None, issue: Issue, jkt: str | None = None
) -> Response:
    """§10.1: ``grant_type=urn:openid:params:grant-type:ciba`` with ``auth_req_id``; the answers of §11. ``jkt``: the
    key of the token request's checked DPoP proof, if any (RFC 9449 §5 binds the tokens of every grant to it)."""
    auth_req_id = params.get("auth_req_id")
    if not auth_req_id:
        raise InvalidRequest("auth_req_id is required")
    at = now()
    with transaction(fd.engine) as conn:
        row = request_for(conn, auth_req_id)
        # §11 invalid_grant: an unknown id, or one issued to another client (which learns nothing more).
        if row is None or row.client_id != client.client_id:
            raise InvalidGrant("the auth_req_id is invalid")
        if row.status == "consumed":
            raise InvalidGrant("the auth_req_id was already used")
        if row.status == "denied":
            raise AccessDenied("the person denied the request")
        if row.status == "expired" or row.expires_at <= at:
            answer = _expired(conn, row, client, ip, at)
        elif row.status == "pending":
            answer = _waiting(conn, row, at)
        elif consume_request(conn, row.digest):
            return _tokens(fd, conn, client, row, issue, ip, at, jkt)
        else:  # another request consumed it a moment ago (compare-and-set)
            raise InvalidGrant("the auth_req_id was already used")
    raise answer
