"""Mail to people through SMTP (RFC 5321), with the standard library's ``smtplib``: ``[email] smtp_url`` names the
server, ``smtp://`` with STARTTLS (RFC 3207) whenever the server offers it, and required unless the server is on
this host; ``smtps://`` with TLS from the first byte (RFC 8314 §3.3). A user and password in the URL sign in
(percent-decoded).

The whole conversation has one deadline (``[email] timeout``): a watchdog shuts the connection when it passes, so
a server that answers one byte at a time cannot hold a worker for longer.
The URL is never logged and never in an error: it may carry the password. A failure is a ``MailFailed`` whose
text a person can read; what went wrong underneath goes to the log as the exception's class and the server's host.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import socket
import ssl
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import unquote, urlsplit

from ..config.operations import Email
from ..secret import Secret
from .app_identity import is_loopback

__all__ = ["Mail", "MailFailed", "SmtpServer", "compose", "parse_smtp_url", "send", "tls_context"]

log = logging.getLogger("frontdesk.mail")


class MailFailed(Exception):
    """The message was not handed to the mail server; ``str()`` says why in words a person can read."""


@dataclass(frozen=True, slots=True)
class Mail:
    """A plain-text message to one address."""

    to: str
    subject: str
    text: str


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """``[email] smtp_url``, parsed. ``password`` is masked in every repr."""

    tls: bool  # smtps: TLS from the start; otherwise STARTTLS
    host: str
    port: int
    username: str | None
    password: Secret | None

    @property
    def local(self) -> bool:
        """A server on this host: the only one frontdesk talks to without TLS when it offers no STARTTLS."""
        return is_loopback(self.host)


def parse_smtp_url(url: str) -> SmtpServer:
    """``smtp://[user[:password]@]host[:port]`` (port 587 by default) or ``smtps://…`` (465). Raises ValueError
    without repeating the URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("the mail server URL must start with smtp:// or smtps://")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the mail server URL has a port that is not a number") from None
    if not parts.hostname:
        raise ValueError("the mail server URL names no host")
    tls = parts.scheme == "smtps"
    username = unquote(parts.username) if parts.username else None
    password = Secret(unquote(parts.password)) if parts.password is not None else None
    return SmtpServer(tls, parts.hostname, port or (465 if tls else 587), username, password)


def tls_context() -> ssl.SSLContext:
    """Certificates checked against the system's trust store, the host name against the URL's."""
    return ssl.create_default_context()


def compose(settings: Email, mail: Mail, issuer_host: str) -> EmailMessage:
    """The message as sent: plain text, UTF-8, from ``[email] from_address``. Raises ValueError for a header that
    cannot be written (an address with a line break, say)."""
    message = EmailMessage()
    message["From"] = settings.from_address
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=issuer_host or None)
    # RFC 3834 §5: automatic; out-of-office replies should stay away from it.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(mail.text)
    return message


class _Watchdog:
    """The one deadline of a conversation. A timeout on each read alone would let a server that drips a byte at a
    time go on for ever, so when the deadline passes the connection is shut down under the waiting read, through
    a duplicate of its socket (the TLS layers wrap the original one)."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._connection: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def hold(self, sock: socket.socket) -> None:
        with self._lock:
            self._connection = sock.dup()
            if self.expired:  # the connect itself took the whole deadline
                self._shut()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            self._shut()

    def _shut(self) -> None:
        if self._connection is not None:
            # Already closed: the conversation ended on its own.
            with contextlib.suppress(OSError):
                self._connection.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()
        with self._lock:
            if self._connection is not None:
                self._connection.close()


class _Client(smtplib.SMTP):
    """``smtplib.SMTP`` whose new connection is handed to the watchdog before the server's greeting is read."""

    def __init__(self, watchdog: _Watchdog, host: str, port: int, timeout: float) -> None:
        self.watchdog = watchdog
        super().__init__(host, port, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # smtplib's own hook for making the connection; typeshed does not declare it.
        sock: socket.socket = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        self.watchdog.hold(sock)
        return sock


class _TlsClient(smtplib.SMTP_SSL, _Client):
    """``smtps://``: ``SMTP_SSL`` wraps the connection ``_Client`` made (and the watchdog holds) in TLS."""

    def __init__(self, watchdog: _Watchdog, host: str, port: int, timeout: float) -> None:
        self.watchdog = watchdog
        smtplib.SMTP_SSL.__init__(self, host, port, timeout=timeout, context=tls_context())


def _open(server: SmtpServer, watchdog: _Watchdog, timeout: float) -> smtplib.SMTP:
    """Connected, the greeting read. The host is given to the constructor: TLS checks the certificate against
    it."""
    client_class = _TlsClient if server.tls else _Client
    return client_class(watchdog, server.host, server.port, timeout)


def _converse(server: SmtpServer, message: EmailMessage, watchdog: _Watchdog, timeout: float) -> None:
    client = _open(server, watchdog, timeout)
    try:
        client.ehlo()
        if not server.tls:
            if client.has_extn("starttls"):
                client.starttls(context=tls_context())
                client.ehlo()
            elif not server.local:
                # RFC 3207 §4: a client may insist; a password or a reset link in clear over the network is worse.
                raise _NoStartTls
        if server.username is not None:
            client.login(server.username, server.password.value if server.password else "")
        client.send_message(message)
        client.quit()
    finally:
        client.close()


class _NoStartTls(Exception):
    pass


def _words(exc: BaseException) -> str:
    """What went wrong, for a person: never the URL, the password or the server's own text."""
    if isinstance(exc, _NoStartTls):
        return "the mail server does not offer an encrypted connection (STARTTLS)"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return "the mail server did not accept frontdesk's user name and password"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "the mail server refused the address"
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return "the mail server refused the sender address (email.from_address)"
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return "the mail server's encrypted connection could not be trusted"
    if isinstance(exc, TimeoutError | socket.timeout) or isinstance(exc.__context__, TimeoutError | socket.timeout):
        # smtplib turns a read's own timeout into SMTPServerDisconnected ("Connection unexpectedly closed"); on a
        # loaded machine that read can time out before the watchdog's thread is scheduled to end the deadline.
        return "the mail server did not answer in time"
    if isinstance(exc, smtplib.SMTPException):
        return "the mail server refused the message"
    return "the mail server could not be reached"


def send(settings: Email, mail: Mail, issuer_host: str = "") -> None:
    """Hand one message to the mail server within ``settings.timeout`` seconds, or raise ``MailFailed``."""
    if not settings.smtp_url:
        raise MailFailed("email is not set up on this server")
    try:
        server = parse_smtp_url(settings.smtp_url)
        message = compose(settings, mail, issuer_host)
    except ValueError as exc:
        raise MailFailed(str(exc) if "mail server URL" in str(exc) else "the address cannot be written to") from None
    watchdog = _Watchdog(settings.timeout)
    try:
        _converse(server, message, watchdog, settings.timeout)
    except (OSError, ValueError, smtplib.SMTPException, _NoStartTls) as exc:  # ValueError: ssl's, e.g.
        words = "the mail server did not answer in time" if watchdog.expired else _words(exc)
        log.warning("mail not sent: %s", words, extra={"smtp_host": server.host, "error": type(exc).__name__})
        raise MailFailed(words) from None
    finally:
        watchdog.cancel()
