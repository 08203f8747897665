"""The CIBA grant at the token endpoint (OpenID Connect CIBA Core 1.0 §10.1, §11): the client redeems its
``auth_req_id`` once the person approved, as a device redeems its device code (RFC 8628 §3.4, ``oauth.grants``).

One transaction reads the request and either records the poll, marks it expired (audited once), or consumes it and
issues the tokens; the protocol error is raised after the transaction commits, so what the poll recorded stays."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from ..core import Frontdesk
from ..errors import (
    AccessDenied,
    ExpiredToken,
    InvalidGrant,
    InvalidRequest,
    OAuthError,
)
from ..protocol.ciba import CIBA_GRANT
from ..protocol.forms import Params
from ..storage import audit
from ..storage.ciba import BackchannelRow, consume_request, expire_request, poll_request, request_for
from ..storage.clients import ClientRecord
from ..storage.db import now, transaction
from .decoupled import Issue, poll_answer, tokens_for_approval

__all__ = ["redeem"]

Response = dict[str, Any]


def _waiting(conn: Connection, row: BackchannelRow, at: int) -> OAuthError:
    """§11: ``slow_down`` to a client that polls faster than the interval (which then grows), else
    ``authorization_pending``; the poll is recorded either way."""
    answer, interval = poll_answer(row.last_polled_at, row.interval, at)
    poll_request(conn, row.digest, at, interval)
    return answer


def _expired(conn: Connection, row: BackchannelRow, client: ClientRecord, ip: str | None, at: int) -> OAuthError:
    if expire_request(conn, row.digest, at):
        audit.record(conn, "ciba.expired", "expired", client_id=client.client_id, user_id=row.user_id, ip=ip)
    return ExpiredToken("the authentication request has expired; make a new one")


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
            return tokens_for_approval(
                fd,
                conn,
                client,
                grant_type=CIBA_GRANT,
                user_id=row.user_id,
                scope=row.scope,
                resource=row.resource,
                auth_time=row.auth_time,
                amr=row.amr,
                authorization_details=row.authorization_details,
                issue=issue,
                ip=ip,
                at=at,
                jkt=jkt,
            )
        else:  # another request consumed it a moment ago (compare-and-set)
            raise InvalidGrant("the auth_req_id was already used")
    raise answer
