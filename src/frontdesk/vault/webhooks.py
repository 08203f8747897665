"""Lifecycle webhooks: the platform hears when a connection is made, updated, dies or is deleted.

Each delivery is a JSON POST signed like Stripe's: ``Frontdesk-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>">`` under the operator's webhook secret, so the receiver can check both origin and freshness. Deliveries
never carry a token. They are retried a few times with back-off on a background thread; the audit log, written in
the same transaction as the change, is the durable record.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from typing import Any

import httpx

__all__ = ["Webhooks", "sign"]

log = logging.getLogger("frontdesk.vault")
DELAYS = (0.0, 1.0, 5.0, 30.0)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


class Webhooks:
    def __init__(self, url: str, secret: str, delays: tuple[float, ...] = DELAYS) -> None:
        self.url = url
        self._secret = secret
        self._delays = delays

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def send(self, event: str, data: dict[str, Any]) -> None:
        if not self.enabled:
            return
        body = json.dumps({"type": event, "at": int(time.time()), "data": data}, sort_keys=True).encode()
        threading.Thread(target=self._deliver, args=(event, body), daemon=True, name="vault-webhook").start()

    def _deliver(self, event: str, body: bytes) -> None:
        for attempt, delay in enumerate(self._delays, 1):
            time.sleep(delay)
            timestamp = int(time.time())
            headers = {"Content-Type": "application/json", "Frontdesk-Signature": sign(self._secret, timestamp, body)}
            try:
                response = httpx.post(self.url, content=body, headers=headers, timeout=10.0)
                if response.status_code < 300:
                    return
                outcome = f"status {response.status_code}"
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            log.warning("webhook delivery failed", extra={"event": event, "attempt": attempt, "outcome": outcome})
        log.error("webhook delivery gave up", extra={"event": event})
