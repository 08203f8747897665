"""A real SMTP server for tests (aiosmtpd on loopback, in a thread of its own), and what it received."""

from __future__ import annotations

import email
import email.policy
import logging
import re
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from frontdesk.config.operations import Email
from frontdesk.core import Frontdesk

__all__ = ["Mailbox", "free_port", "link_in", "mailbox_at", "quiet_clients", "token_of", "with_email"]

LINK = re.compile(r"https?://\S+[?&]t=(\S+)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def link_in(message: EmailMessage) -> str:
    """The one link a message carries."""
    body = message.get_content()
    found = LINK.findall(body)
    assert len(found) == 1, body
    match = LINK.search(body)
    assert match is not None
    return match.group(0)


@dataclass
class Mailbox:
    """What the server received, in order; ``wait_for(n)`` blocks (briefly) until n messages arrived."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    starttls: bool = False
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def wait_for(self, n: int, timeout: float = 10.0) -> list[EmailMessage]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.messages) >= n, timeout)
        assert len(self.messages) >= n, f"expected {n} messages, got {len(self.messages)}"
        return list(self.messages)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.starttls = self.starttls or session.ssl is not None
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 OK"

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> Any:
        assert isinstance(data, LoginPassword)
        login = (data.login.decode(), data.password.decode())
        self.logins.append(login)
        return AuthResult(success=login == ("mailer@example", "p@ss:word/1"), handled=False)


@contextmanager
def quiet_clients() -> Iterator[None]:
    """Keep the tests' own clients from logging what they carry: aiosmtpd logs each line of a message at DEBUG,
    httpx each URL it requests at INFO, and both hold link secrets. The suite's DEBUG log is scanned for secrets
    that *frontdesk* logged; these lines are the test's, not the server's."""
    loggers = [logging.getLogger(name) for name in ("mail.log", "httpx")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextmanager
def mailbox_at(*, tls: ssl.SSLContext | None = None, auth: bool = False) -> Iterator[Mailbox]:
    """An SMTP server on a free loopback port; with ``tls``, it offers STARTTLS; with ``auth``, it requires AUTH
    (user "mailer@example", password "p@ss:word/1")."""
    box = Mailbox(free_port())
    extra: dict[str, Any] = {}
    if tls is not None:
        extra.update(tls_context=tls, require_starttls=True)
    if auth:
        extra.update(authenticator=box.authenticate, auth_required=True, auth_require_tls=tls is not None)
    controller = Controller(box, hostname="127.0.0.1", port=box.port, **extra)
    with quiet_clients():
        controller.start()
        try:
            yield box
        finally:
            controller.stop()


def token_of(link: str) -> str:
    """The secret of a link: its ``t`` parameter."""
    return link.split("t=", 1)[1]


def with_email(fd: Frontdesk, url: str, **settings: Any) -> Frontdesk:
    """Point the running frontdesk's ``[email]`` at ``url`` (the app reads its settings per request)."""
    fd.settings = replace(fd.settings, email=Email(smtp_url=url, from_address="frontdesk@as.example", **settings))
    return fd
