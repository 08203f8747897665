"""Backchannel authentication requests (OpenID Connect CIBA Core 1.0 §7): the ``auth_req_id`` is stored as a digest,
and the digest is also the handle the person's approval page names the request by (the raw id stays with the client).

Every change of state is one compare-and-set statement (``UPDATE … WHERE status = 'pending'``), so that an approval
and a denial, or two token requests, racing in two processes can never both win (DESIGN §4). What a request may
ask, and when it may change, is judged in ``frontdesk.oauth.ciba``; this module only keeps it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from ..secret import digest
from .schema import BackchannelRequest, Client

__all__ = [
    "BackchannelRow",
    "consume_request",
    "decide_request",
    "expire_request",
    "insert_request",
    "poll_request",
    "request_by_digest",
    "request_for",
    "set_delivery",
    "waiting_count",
    "waiting_for",
]


@dataclass(frozen=True, slots=True)
class BackchannelRow:
    digest: str
    client_id: str
    user_id: str
    scope: tuple[str, ...]
    resource: tuple[str, ...]
    authorization_details: tuple[dict[str, Any], ...]
    binding_message: str | None
    status: str  # pending | approved | denied | expired | consumed
    interval: int
    last_polled_at: int | None
    sealed_notification: bytes | None
    auth_time: int | None
    amr: tuple[str, ...]
    created_at: int
    expires_at: int
    decided_at: int | None


def _row(r: Any) -> BackchannelRow:
    return BackchannelRow(
        r.digest,
        r.client_id,
        r.user_id,
        tuple(r.scope.split()),
        tuple(json.loads(r.resource)),
        tuple(json.loads(r.authorization_details)) if r.authorization_details else (),
        r.binding_message,
        r.status,
        r.interval,
        r.last_polled_at,
        r.notification_token,
        r.auth_time,
        tuple(json.loads(r.amr)) if r.amr else (),
        r.created_at,
        r.expires_at,
        r.decided_at,
    )


def insert_request(
    conn: Connection,
    *,
    auth_req_id: str,
    client_id: str,
    user_id: str,
    scope: tuple[str, ...],
    resource: tuple[str, ...],
    authorization_details: tuple[dict[str, Any], ...],
    binding_message: str | None,
    interval: int,
    at: int,
    ttl: int,
    sealed_notification: bytes | None,
) -> None:
    """A new pending request under the digest of ``auth_req_id`` (drawn by the service, ``secret.new_token``);
    ``sealed_notification`` is the ping mode's delivery, already sealed by the caller."""
    key = digest(auth_req_id)
    conn.execute(
        insert(BackchannelRequest),
        {
            "digest": key,
            "client_id": client_id,
            "user_id": user_id,
            "scope": " ".join(scope),
            "resource": json.dumps(list(resource)),
            "authorization_details": json.dumps(list(authorization_details)) if authorization_details else None,
            "binding_message": binding_message,
            "status": "pending",
            "interval": interval,
            "last_polled_at": None,
            "notification_token": sealed_notification,
            "auth_time": None,
            "amr": None,
            "created_at": at,
            "expires_at": at + ttl,
            "decided_at": None,
        },
    )


def request_for(conn: Connection, auth_req_id: str) -> BackchannelRow | None:
    return request_by_digest(conn, digest(auth_req_id))


def request_by_digest(conn: Connection, key: str) -> BackchannelRow | None:
    row = conn.execute(select(BackchannelRequest).where(BackchannelRequest.digest == key)).first()
    return _row(row) if row else None


def waiting_for(conn: Connection, user_id: str, at: int) -> list[BackchannelRow]:
    """The person's requests still waiting for an answer, newest first."""
    rows = conn.execute(
        select(BackchannelRequest)
        .where(
            BackchannelRequest.user_id == user_id,
            BackchannelRequest.status == "pending",
            BackchannelRequest.expires_at > at,
        )
        .order_by(BackchannelRequest.created_at.desc(), BackchannelRequest.digest)
    ).all()
    return [_row(r) for r in rows]


def waiting_count(conn: Connection, user_id: str, at: int) -> int:
    counted = conn.execute(
        select(func.count())
        .select_from(BackchannelRequest)
        .where(
            BackchannelRequest.user_id == user_id,
            BackchannelRequest.status == "pending",
            BackchannelRequest.expires_at > at,
        )
    ).scalar_one()
    return int(counted)


def poll_request(conn: Connection, key: str, at: int, interval: int) -> None:
    conn.execute(
        update(BackchannelRequest).where(BackchannelRequest.digest == key).values(last_polled_at=at, interval=interval)
    )


def decide_request(
    conn: Connection, key: str, user_id: str, status: str, auth_time: int, amr: tuple[str, ...], at: int
) -> bool:
    """The person's answer, with the facts of the sign-in that gave it: once, only by the person asked, only while
    the request lives (False otherwise)."""
    result = conn.execute(
        update(BackchannelRequest)
        .where(
            BackchannelRequest.digest == key,
            BackchannelRequest.user_id == user_id,
            BackchannelRequest.status == "pending",
            BackchannelRequest.expires_at > at,
        )
        .values(status=status, auth_time=auth_time, amr=json.dumps(list(amr)), decided_at=at)
    )
    return result.rowcount == 1


def expire_request(conn: Connection, key: str, at: int) -> bool:
    """Mark a request that outlived its ``expires_at`` unanswered as expired; True only the first time."""
    result = conn.execute(
        update(BackchannelRequest)
        .where(
            BackchannelRequest.digest == key,
            BackchannelRequest.status == "pending",
            BackchannelRequest.expires_at <= at,
        )
        .values(status="expired")
    )
    return result.rowcount == 1


def consume_request(conn: Connection, key: str) -> bool:
    """Single use: an approved request becomes consumed exactly once."""
    result = conn.execute(
        update(BackchannelRequest)
        .where(BackchannelRequest.digest == key, BackchannelRequest.status == "approved")
        .values(status="consumed")
    )
    return result.rowcount == 1


def set_delivery(conn: Connection, client_id: str, mode: str | None, endpoint: str | None) -> bool:
    """Replace a client's CIBA token delivery metadata (judged by ``oauth.ciba_clients``); False for an unknown
    client."""
    updated = conn.execute(
        update(Client)
        .where(Client.client_id == client_id)
        .values(backchannel_token_delivery_mode=mode, backchannel_client_notification_endpoint=endpoint)
    ).rowcount
    return bool(updated)
