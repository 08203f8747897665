"""The SMTP mailer (``oauth.mail``) against real servers: aiosmtpd with STARTTLS, TLS from the start and AUTH, a
server that never answers and one that drips its greeting a byte at a time (one deadline for the whole
conversation), and a server without STARTTLS that is not on this host. Failures are words, never the URL."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import smtplib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from frontdesk.config import ConfigError, Settings
from frontdesk.config.operations import Email
from frontdesk.oauth import mail
from frontdesk.oauth.mail import Mail, MailFailed, parse_smtp_url, send
from inbox import Mailbox, free_port, mailbox_at, quiet_clients

MESSAGE = Mail("alice@example.com", "Hello", "A plain message.\n")


def email(url: str, timeout: int = 10) -> Email:
    settings = Email(smtp_url=url, from_address="frontdesk@as.example", timeout=timeout)
    settings.check()
    return settings


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: (certificate, key) files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("smtp-tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@pytest.fixture
def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def trusted(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """frontdesk trusts the test certificate (as a system's store would trust a real one)."""
    monkeypatch.setattr(mail, "tls_context", lambda: ssl.create_default_context(cafile=str(certificate[0])))


def test_the_url_is_parsed_with_its_user_and_password_percent_decoded() -> None:
    server = parse_smtp_url("smtp://mailer%40example:p%40ss%3Aword%2F1@mail.example")
    assert (server.tls, server.host, server.port) == (False, "mail.example", 587)
    assert server.username == "mailer@example"
    assert server.password is not None
    assert server.password.value == "p@ss:word/1"
    assert "p@ss" not in repr(server)
    assert parse_smtp_url("smtps://mail.example").port == 465


def test_the_settings_never_show_the_smtp_url() -> None:
    """It may carry a password: no repr of the settings (a traceback, a debug line) holds it."""
    settings = email("smtp://mailer:hunter2-secret@mail.example")
    assert "hunter2-secret" not in repr(settings)
    assert "hunter2-secret" not in repr(Settings(email=settings))


def test_a_url_that_is_not_smtp_is_refused_at_start() -> None:
    with pytest.raises(ConfigError, match="smtp://"):
        email("https://mail.example")


def test_a_message_arrives_with_its_headers() -> None:
    with mailbox_at() as box:
        send(email(box.url), MESSAGE, "as.example")
        [message] = box.wait_for(1)
    assert message["To"] == "alice@example.com"
    assert message["From"] == "frontdesk@as.example"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"].endswith("@as.example>")
    assert message.get_content().strip() == "A plain message."


def test_starttls_is_used_when_the_server_offers_it(server_tls: ssl.SSLContext, trusted: None) -> None:
    with mailbox_at(tls=server_tls) as box:
        send(email(box.url), MESSAGE)
        box.wait_for(1)
    assert box.starttls


def test_an_untrusted_certificate_is_refused_in_words(server_tls: ssl.SSLContext) -> None:
    with mailbox_at(tls=server_tls) as box, pytest.raises(MailFailed, match="could not be trusted"):
        send(email(box.url), MESSAGE)
    assert box.messages == []


def test_the_user_and_password_of_the_url_sign_in(server_tls: ssl.SSLContext, trusted: None) -> None:
    with mailbox_at(tls=server_tls, auth=True) as box:
        send(email(f"smtp://mailer%40example:p%40ss%3Aword%2F1@127.0.0.1:{box.port}"), MESSAGE)
        box.wait_for(1)
    assert box.logins == [("mailer@example", "p@ss:word/1")]


def test_a_wrong_password_is_a_plain_answer_and_is_never_logged(
    server_tls: ssl.SSLContext, trusted: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="frontdesk")
    with mailbox_at(tls=server_tls, auth=True) as box:
        url = f"smtp://mailer%40example:wrong-secret-9@127.0.0.1:{box.port}"
        with pytest.raises(MailFailed) as failed:
            send(email(url), MESSAGE)
    assert str(failed.value) == "the mail server did not accept frontdesk's user name and password"
    assert "wrong-secret-9" not in caplog.text
    assert "smtp://" not in caplog.text


def test_smtps_speaks_tls_from_the_first_byte(server_tls: ssl.SSLContext, trusted: None) -> None:
    box = Mailbox(free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port, ssl_context=server_tls)
    with quiet_clients():
        controller.start()
        try:
            send(email(f"smtps://127.0.0.1:{box.port}"), MESSAGE)
            box.wait_for(1)
        finally:
            controller.stop()


def test_a_server_elsewhere_without_starttls_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a server on this host may be spoken to in clear; one elsewhere must offer STARTTLS (RFC 3207)."""
    monkeypatch.setattr(mail, "is_loopback", lambda host: False)
    with mailbox_at() as box, pytest.raises(MailFailed, match="does not offer an encrypted connection"):
        send(email(box.url), MESSAGE)
    assert box.messages == []


def test_a_server_that_is_down_is_a_plain_answer() -> None:
    with pytest.raises(MailFailed, match=r"^the mail server could not be reached$"):
        send(email(f"smtp://127.0.0.1:{free_port()}"), MESSAGE)


def _serving(converse: Callable[[socket.socket, threading.Event], None]) -> Iterator[int]:
    """A loopback server that accepts every connection (none is left in the backlog, where a loaded machine could
    end it before the client's deadline does) and holds it open while ``converse`` runs on it in a thread."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        while not stop.is_set():
            try:
                connection = listener.accept()[0]
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(connection)
            threading.Thread(target=converse, args=(connection, stop), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(5)
    listener.close()
    for connection in held:
        connection.close()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A server that accepts connections and says nothing."""
    yield from _serving(lambda _connection, _stop: None)


def test_a_server_that_never_answers_is_given_up_on_at_the_deadline(silent_server: int) -> None:
    # The server never speaks: without the deadline this call would not return. No timing is asserted (the suite
    # runs on loaded machines); that it returns, with the deadline's own answer, is the test.
    with pytest.raises(MailFailed, match="did not answer in time"):
        send(email(f"smtp://127.0.0.1:{silent_server}", timeout=1), MESSAGE)


def test_a_read_that_times_out_before_the_watchdog_is_the_same_answer(silent_server: int) -> None:
    # On a loaded machine the socket's own read timeout can come before the watchdog's thread runs; smtplib then
    # raises SMTPServerDisconnected, which is still "did not answer in time", not "refused the message".
    watchdog = mail._Watchdog(60)
    try:
        url = f"smtp://127.0.0.1:{silent_server}"
        message = mail.compose(email(url), MESSAGE, "as.example")
        with pytest.raises(smtplib.SMTPServerDisconnected) as raised:
            mail._converse(parse_smtp_url(url), message, watchdog, 0.3)
    finally:
        watchdog.cancel()
    assert not watchdog.expired
    assert mail._words(raised.value) == "the mail server did not answer in time"


@pytest.fixture
def dripping_server() -> Iterator[int]:
    """A server that sends its greeting one byte every 0.3 seconds, for ever: no single read ever times out."""

    def drip(connection: socket.socket, stop: threading.Event) -> None:
        while not stop.wait(0.3):
            try:
                connection.sendall(b"2")
            except OSError:
                return

    yield from _serving(drip)


def test_one_deadline_bounds_the_whole_conversation(dripping_server: int) -> None:
    # The greeting never ends and no single read times out: only a deadline over the whole conversation returns.
    with pytest.raises(MailFailed, match="did not answer in time"):
        send(email(f"smtp://127.0.0.1:{dripping_server}", timeout=1), MESSAGE)
