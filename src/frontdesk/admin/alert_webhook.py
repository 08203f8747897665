"""The signed webhook of each new alert (``[alerts] webhook_url``): a JSON POST, signed as Stripe and Slack sign
theirs, so the receiver knows it came from this server and is fresh.

- ``Frontdesk-Timestamp``: the Unix time of the attempt;
- ``Frontdesk-Signature``: ``v1=`` and the hex HMAC-SHA256, keyed with ``webhook_secret``, of the timestamp, a
  full stop and the exact body bytes. A receiver recomputes it (``verify``), compares in constant time and refuses
  a timestamp more than ``TOLERANCE`` seconds away, which bounds how long a captured request can be replayed.

Delivery runs in a task of its own (``deliver_forever``), never in the evaluator: a slow or dead receiver delays
only the webhooks. An attempt is claimed by compare-and-set on the attempts made (one process makes each); a failed
one is tried again after a doubling delay, at most ``ATTEMPTS`` times. Every attempt is audited (``alert.notified``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging

import anyio
import anyio.to_thread
import httpx

from ..core import Frontdesk
from ..storage import alerts as store
from ..storage import audit
from ..storage.alerts import AlertRecord
from ..storage.db import now, transaction
from ..wire import dumps

__all__ = [
    "ATTEMPTS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "TOLERANCE",
    "backoff",
    "deliver_due",
    "deliver_forever",
    "payload",
    "sign",
    "verify",
]

log = logging.getLogger("frontdesk.alerts")

SIGNATURE_HEADER = "Frontdesk-Signature"
TIMESTAMP_HEADER = "Frontdesk-Timestamp"
TOLERANCE = 300  # seconds a receiver should accept between the timestamp and its clock
ATTEMPTS = 8  # 30 s, 1, 2, 4, 8, 16 and 32 minutes apart: about an hour of a receiver being away
TIMEOUT = 10.0  # seconds for one attempt
EVERY = 1.0
PER_ROUND = 20  # alerts claimed per round


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return "v1=" + mac


def verify(secret: str, timestamp: str, body: bytes, signature: str, at: int, tolerance: int = TOLERANCE) -> bool:
    """What a receiver checks: the signature over this timestamp and body, and a timestamp within ``tolerance``."""
    if not timestamp.isdigit() or abs(at - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


def backoff(attempt: int) -> int:
    """Seconds after attempt number ``attempt`` (1, 2, …) fails before the next is due."""
    return int(30 * 2 ** (attempt - 1))


def payload(fd: Frontdesk, alert: AlertRecord) -> bytes:
    """The body: the alert as the admin API shows it, less the webhook's own bookkeeping."""
    shown = {k: v for k, v in alert.as_dict().items() if k not in ("notified_at", "notify_attempts", "notify_after")}
    return dumps({"type": "alert.raised", "issuer": fd.issuer, "alert": shown}, sort_keys=True)


def _claim(fd: Frontdesk) -> list[AlertRecord]:
    at = now()
    claimed: list[AlertRecord] = []
    with transaction(fd.engine) as conn:
        for alert in store.due_for_delivery(conn, at, PER_ROUND):
            attempt = alert.notify_attempts + 1
            next_after = at + backoff(attempt) if attempt < ATTEMPTS else None
            if store.claim_delivery(conn, alert.id, alert.notify_attempts, next_after):
                claimed.append(alert)
    return claimed


async def _post(fd: Frontdesk, http: httpx.AsyncClient, alert: AlertRecord) -> tuple[int | None, str | None]:
    """(HTTP status, None) of one attempt, or (None, what went wrong) when no answer came."""
    settings = fd.settings.alerts
    body = payload(fd, alert)
    timestamp = now()
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(settings.webhook_secret, timestamp, body),
    }
    try:
        response = await http.post(settings.webhook_url, content=body, headers=headers, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        return None, type(exc).__name__
    return response.status_code, None


def _settle(fd: Frontdesk, alert: AlertRecord, status: int | None, error: str | None) -> None:
    attempt = alert.notify_attempts + 1
    delivered = status is not None and 200 <= status < 300
    with transaction(fd.engine) as conn:
        if delivered:
            store.delivered(conn, alert.id, now())
        audit.record(
            conn,
            "alert.notified",
            "success" if delivered else "failure",
            alert=alert.id,
            rule=alert.rule,
            attempt=attempt,
            status=status,
            error=error,
            last_attempt=not delivered and attempt >= ATTEMPTS,
        )
    if not delivered:
        log.warning(
            "alert webhook not delivered",
            extra={"alert": alert.id, "attempt": attempt, "status": status, "error": error},
        )


async def deliver_due(fd: Frontdesk, http: httpx.AsyncClient) -> int:
    """Make the webhook attempts that are due; returns how many were made."""
    if not fd.settings.alerts.webhook_url:
        return 0
    claimed = await anyio.to_thread.run_sync(_claim, fd)
    for alert in claimed:
        status, error = await _post(fd, http, alert)
        await anyio.to_thread.run_sync(_settle, fd, alert, status, error)
    return len(claimed)


async def deliver_forever(fd: Frontdesk) -> None:
    """Deliver due webhooks every EVERY seconds for as long as the server runs."""
    if not fd.settings.alerts.enabled or not fd.settings.alerts.webhook_url:
        return
    # No redirects (the alert goes where the operator said) and no proxy settings from the environment.
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as http:
        while True:
            try:
                await deliver_due(fd, http)
            except Exception:
                log.exception("alert webhooks failed; will retry")
            await anyio.sleep(EVERY)
