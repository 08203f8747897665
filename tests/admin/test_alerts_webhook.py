"""The signed webhook of each new alert, on SQLite and PostgreSQL, delivered to a real HTTP server on loopback that
checks the signature as a receiver would: retried after a failed delivery with backoff, at most ATTEMPTS times, once
per alert however often it repeats, and every attempt audited."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import pytest

from conftest import remember
from frontdesk.admin import alert_webhook, alerts
from frontdesk.admin.alert_webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, deliver_due, sign, verify
from frontdesk.admin.principals import CLI
from frontdesk.storage.db import now
from servers import loopback

from .alerting import configure, evaluate_all, events, raised, write

SECRET = "whsec-" + "k3y" * 8


@dataclass
class Receiver:
    """What the receiving server saw, and the statuses it answers with, in turn (the last one from then on)."""

    statuses: list[int]
    seen: list[dict[str, object]] = field(default_factory=list)
    url: str = ""


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            timestamp = self.headers[TIMESTAMP_HEADER]
            # As a receiver computes it, independently of frontdesk's own code: HMAC-SHA256 of "timestamp.body".
            expected = "v1=" + hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            valid = hmac.compare_digest(expected, self.headers[SIGNATURE_HEADER])
            receiver.seen.append({"valid": valid, "timestamp": int(timestamp), "body": json.loads(body)})
            status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
            self.send_response(status if valid else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def receiver(fd, secrets_seen) -> Iterator[Receiver]:
    got = Receiver([200])
    with loopback(_handler(got)) as port:
        got.url = f"http://127.0.0.1:{port}/frontdesk-alerts"
        configure(fd, webhook_url=got.url, webhook_secret=SECRET)
        remember(secrets_seen, SECRET)
        yield got


def _replay(fd, client_id: str = "app") -> None:
    write(fd, "refresh.reused", "revoked", client_id=client_id, grant_id="g1")
    evaluate_all(fd)


async def _deliver(fd) -> int:
    async with httpx.AsyncClient() as http:
        return await deliver_due(fd, http)


async def test_a_failed_delivery_is_retried_after_its_backoff(fd, receiver, clock):
    """The receiver answers 503, then 200: the second attempt waits its 30 seconds; both requests are signed over
    their own timestamp and body, and the alert is marked delivered after the second."""
    receiver.statuses = [503, 200]
    _replay(fd)
    before = now()
    assert await _deliver(fd) == 1
    (alert,) = raised(fd)
    assert (alert.notify_attempts, alert.notified_at) == (1, None)
    assert before + 30 <= alert.notify_after <= now() + 30
    assert await _deliver(fd) == 0  # not due yet
    clock.advance(31)
    assert await _deliver(fd) == 1
    (alert,) = raised(fd)
    assert alert.notified_at is not None
    assert alert.notify_after is None
    assert alert.notify_attempts == 2
    assert [r["valid"] for r in receiver.seen] == [True, True]
    body: Any = receiver.seen[1]["body"]
    assert body["type"] == "alert.raised"
    assert body["alert"]["id"] == alert.id
    assert body["alert"]["rule"] == "token.replayed"
    assert body["alert"]["severity"] == "critical"
    notified = events(fd, "alert.notified")
    assert [(e.outcome, e.detail["attempt"], e.detail["status"]) for e in notified] == [
        ("failure", 1, 503),
        ("success", 2, 200),
    ]
    assert await _deliver(fd) == 0


async def test_delivery_gives_up_after_the_last_attempt(fd, receiver, clock, monkeypatch):
    """A receiver that always fails gets ATTEMPTS tries (three here), the last one audited as such, then none."""
    monkeypatch.setattr(alert_webhook, "ATTEMPTS", 3)
    receiver.statuses = [500]
    _replay(fd)
    for _ in range(3):
        assert await _deliver(fd) == 1
        clock.advance(3600)
    assert await _deliver(fd) == 0
    (alert,) = raised(fd)
    assert (alert.notify_attempts, alert.notified_at, alert.notify_after) == (3, None, None)
    assert [e.detail["last_attempt"] for e in events(fd, "alert.notified")] == [False, False, True]
    assert len(receiver.seen) == 3


async def test_an_unreachable_receiver_is_a_failed_attempt(fd, clock):
    """Nothing listening: the attempt fails with the error's name, and is tried again later."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    configure(fd, webhook_url=f"http://127.0.0.1:{port}/", webhook_secret=SECRET)
    _replay(fd)
    assert await _deliver(fd) == 1
    (failed,) = events(fd, "alert.notified")
    assert (failed.outcome, failed.detail["status"], failed.detail["error"]) == ("failure", None, "ConnectError")
    (alert,) = raised(fd)
    assert alert.notify_after is not None


async def test_a_repeat_sends_no_second_webhook(fd, receiver):
    """Repeats counted into an open alert are not sent again: one alert, one request."""
    _replay(fd)
    _replay(fd)
    assert await _deliver(fd) == 1
    assert await _deliver(fd) == 0
    assert len(receiver.seen) == 1
    assert raised(fd)[0].count == 2


async def test_a_resolved_alert_is_not_sent(fd, receiver):
    """Resolved before its webhook went out: nothing is sent."""
    _replay(fd)
    alerts.resolve(fd, CLI, raised(fd)[0].id)
    assert await _deliver(fd) == 0
    assert receiver.seen == []


async def test_without_a_webhook_nothing_is_due(fd):
    """No webhook_url: alerts are stored with nothing to send."""
    _replay(fd)
    (alert,) = raised(fd)
    assert alert.notify_after is None
    assert await _deliver(fd) == 0


def test_a_receiver_refuses_a_changed_body_or_an_old_timestamp():
    """``verify``: the signature covers the timestamp and the exact body; a timestamp far off is refused."""
    at = 1_700_000_000
    body = b'{"a":1}'
    signature = sign(SECRET, at, body)
    assert verify(SECRET, str(at), body, signature, at + 10)
    assert not verify(SECRET, str(at), b'{"a":2}', signature, at)
    assert not verify(SECRET, str(at + 1), body, signature, at)
    assert not verify("another-secret-of-length", str(at), body, signature, at)
    assert not verify(SECRET, str(at), body, signature, at + alert_webhook.TOLERANCE + 1)
    assert not verify(SECRET, "-1", body, signature, at)
