"""RFC 8628 device codes: the device code is stored as a digest, the user code as typed by people.

The user code is drawn by the service (``oauth.device_flow``, from ``protocol.rfc8628``) and handed in: storage keeps
no protocol rules, it only reports a collision."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..secret import digest, new_token
from .schema import DeviceCode

__all__ = [
    "DeviceRow",
    "consume_device",
    "decide_device",
    "device_by_user_code",
    "device_for",
    "insert_device",
    "poll_device",
]


@dataclass(frozen=True, slots=True)
class DeviceRow:
    digest: str
    user_code: str
    client_id: str
    scope: tuple[str, ...]
    resource: tuple[str, ...]
    status: str
    interval: int
    last_polled_at: int | None
    user_id: str | None
    auth_time: int | None
    expires_at: int
    amr: tuple[str, ...] = ()  # RFC 8176: how the person who approved signed in


def _row(r: Any) -> DeviceRow:
    return DeviceRow(
        r.digest,
        r.user_code,
        r.client_id,
        tuple(r.scope.split()),
        tuple(json.loads(r.resource)),
        r.status,
        r.interval,
        r.last_polled_at,
        r.user_id,
        r.auth_time,
        r.expires_at,
        tuple(json.loads(r.amr)) if r.amr else (),
    )


def insert_device(
    conn: Connection,
    *,
    user_code: str,
    client_id: str,
    scope: tuple[str, ...],
    resource: tuple[str, ...],
    interval: int,
    at: int,
    ttl: int,
) -> str | None:
    """A new pending device code under ``user_code``; returns the device code, or None when ``user_code`` is
    already taken (the caller draws another)."""
    device_code = new_token("device_code")
    try:
        with conn.begin_nested():
            conn.execute(
                insert(DeviceCode),
                {
                    "digest": digest(device_code),
                    "user_code": user_code,
                    "client_id": client_id,
                    "scope": " ".join(scope),
                    "resource": json.dumps(list(resource)),
                    "status": "pending",
                    "interval": interval,
                    "last_polled_at": None,
                    "user_id": None,
                    "auth_time": None,
                    "amr": None,
                    "created_at": at,
                    "expires_at": at + ttl,
                },
            )
    except IntegrityError:
        return None
    return device_code


def device_for(conn: Connection, device_code: str) -> DeviceRow | None:
    row = conn.execute(select(DeviceCode).where(DeviceCode.digest == digest(device_code))).first()
    return _row(row) if row else None


def device_by_user_code(conn: Connection, user_code: str, at: int) -> DeviceRow | None:
    row = conn.execute(
        select(DeviceCode).where(
            DeviceCode.user_code == user_code, DeviceCode.expires_at > at, DeviceCode.status == "pending"
        )
    ).first()
    return _row(row) if row else None


def poll_device(conn: Connection, code_digest: str, at: int, interval: int) -> None:
    conn.execute(
        update(DeviceCode).where(DeviceCode.digest == code_digest).values(last_polled_at=at, interval=interval)
    )


def decide_device(
    conn: Connection, code_digest: str, status: str, user_id: str, auth_time: int, amr: tuple[str, ...]
) -> bool:
    """The person's answer, with the facts of the sign-in that gave it; once (False if already answered)."""
    result = conn.execute(
        update(DeviceCode)
        .where(DeviceCode.digest == code_digest, DeviceCode.status == "pending")
        .values(status=status, user_id=user_id, auth_time=auth_time, amr=json.dumps(list(amr)))
    )
    return result.rowcount == 1


def consume_device(conn: Connection, code_digest: str) -> bool:
    result = conn.execute(
        update(DeviceCode)
        .where(DeviceCode.digest == code_digest, DeviceCode.status == "approved")
        .values(status="consumed")
    )
    return result.rowcount == 1
