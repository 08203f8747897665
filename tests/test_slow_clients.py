"""``frontdesk serve`` against slow, stalled and surplus clients (issue 11, item 11): header and body read deadlines,
a cap on open connections below the descriptor limit, and a bounded shutdown on SIGTERM that exits 0.

Real server processes on loopback; every wait is bounded, and the bounds are generous: the timeouts in force are a
couple of seconds, the assertions allow ten times that.
"""

from __future__ import annotations

import contextlib
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from frontdesk.cli import _parser
from frontdesk.cli.context import settings_of as _settings
from frontdesk.config import ConfigError, ServerLimits, load_settings
from servers import START_ATTEMPTS, STOP_TIMEOUT, _environment, _free_port, _stop, _wait_until_ready

# `frontdesk serve` in a process of its own, timed in seconds: the full matrix runs these, the quick loop does not.
pytestmark = pytest.mark.subprocess

SHORT = 2  # seconds: the header, body and shutdown timeouts under test
PATIENCE = 30.0  # seconds the tests wait for what should take SHORT
SLOW_CLIENTS = 300
DESCRIPTOR_LIMIT = 256


@contextlib.contextmanager
def _serving(
    tmp_path: Path, *flags: str, limit_descriptors: bool = False, **server: int
) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """``python -m frontdesk serve FLAGS`` on SQLite and a free loopback port, with ``[server]`` settings given as
    FRONTDESK_SERVER_* variables; yields the process, port and log."""
    home = tmp_path / "home"
    home.mkdir()
    env = _environment(home, None)
    env["FRONTDESK_LOG_LEVEL"] = "INFO"  # hundreds of connections closed on purpose need no DEBUG line each
    env.update({f"FRONTDESK_SERVER_{name.upper()}": str(value) for name, value in server.items()})
    log = tmp_path / "frontdesk.log"

    def at_most_256_files() -> None:  # in the child: `ulimit -n 256`
        resource.setrlimit(resource.RLIMIT_NOFILE, (DESCRIPTOR_LIMIT, DESCRIPTOR_LIMIT))

    process: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(START_ATTEMPTS):
            port = _free_port()
            issuer = f"http://127.0.0.1:{port}"
            with log.open("ab") as sink:
                process = subprocess.Popen(
                    [sys.executable, "-m", "frontdesk", "serve", "--host", "127.0.0.1", "--port", str(port), *flags],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    preexec_fn=at_most_256_files if limit_descriptors else None,
                )
            if _wait_until_ready(process, issuer, log):
                break
            process.wait(timeout=STOP_TIMEOUT)
        else:
            pytest.fail(f"frontdesk serve did not start; its log:\n{log.read_text()}")
        yield process, port, log
    finally:
        if process is not None:
            _stop(process)


def _closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed the connection (an answer such as 408 may come first)."""
    try:
        while data := sock.recv(4096):
            del data
        return True  # end of file
    except BlockingIOError:
        return False
    except OSError:
        return True  # reset


def _served(port: int) -> httpx.Response:
    """A fresh client's request, retried for a while (a worker at its limit may pause accepting for a second)."""
    deadline = time.monotonic() + PATIENCE
    while True:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/jwks", timeout=5.0)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_slow_header_clients_are_closed_and_a_fresh_client_is_served(tmp_path: Path) -> None:
    """300 connections trickling header lines at a server limited to 256 open files are all closed once the header
    timeout passes, and a client that comes afterwards gets its answer."""
    with _serving(tmp_path, limit_descriptors=True, header_timeout=SHORT) as (process, port, log):
        slow: list[socket.socket] = []
        try:
            for _ in range(SLOW_CLIENTS):
                sock = socket.create_connection(("127.0.0.1", port), timeout=10.0)
                sock.setblocking(False)
                with contextlib.suppress(OSError):
                    sock.send(b"GET /jwks HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                slow.append(sock)
            still_open = set(slow)
            deadline = time.monotonic() + PATIENCE
            while still_open and time.monotonic() < deadline:
                for sock in list(still_open):
                    with contextlib.suppress(OSError):
                        sock.send(b"X-Slow: 1\r\n")
                    if _closed_by_server(sock):
                        still_open.discard(sock)
                time.sleep(0.5)
            assert not still_open, (
                f"{len(still_open)} of {SLOW_CLIENTS} slow connections still open after {PATIENCE:.0f} s\n"
                + log.read_text()[-3000:]
            )
            assert _served(port).status_code == 200
            assert process.poll() is None
        finally:
            for sock in slow:
                sock.close()


def test_a_stalled_body_is_answered_408_and_closed(tmp_path: Path) -> None:
    """A request whose body stops halfway gets 408 Request Timeout and the connection is closed."""
    with (
        _serving(tmp_path, body_timeout=SHORT) as (_, port, _log),
        socket.create_connection(("127.0.0.1", port), timeout=PATIENCE) as sock,
    ):
        sock.sendall(
            b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 1000\r\n\r\ngrant_type="
        )
        answer = b""
        with contextlib.suppress(ConnectionError):
            while chunk := sock.recv(4096):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 408 "), answer


def test_connections_over_the_cap_are_refused_with_503(tmp_path: Path) -> None:
    """With server.max_connections open, the next connection is answered 503 at once rather than left waiting."""
    with _serving(tmp_path, max_connections=3) as (_, port, _log):
        held = [socket.create_connection(("127.0.0.1", port), timeout=10.0) for _ in range(3)]
        try:
            time.sleep(0.5)  # accepted by the server, not only by the kernel
            with socket.create_connection(("127.0.0.1", port), timeout=10.0) as extra:
                extra.sendall(b"GET /jwks HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                answer = b""
                with contextlib.suppress(ConnectionError):
                    while chunk := extra.recv(4096):
                        answer += chunk
            assert answer.startswith(b"HTTP/1.1 503 "), answer
        finally:
            for sock in held:
                sock.close()
        assert _served(port).status_code == 200  # room again once they left


def _ask(sock: socket.socket) -> bytes:
    """One keep-alive request on ``sock`` and its whole answer (the JWKS, read up to its Content-Length)."""
    sock.sendall(b"GET /jwks HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < _content_length(answer):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {answer[:200]!r}")
        answer += chunk
    return answer


def _content_length(answer: bytes) -> int:
    head = answer.partition(b"\r\n\r\n")[0].lower()
    return int(head.partition(b"content-length:")[2].split(b"\r\n")[0] or 0)


def test_an_idle_connection_is_closed_after_the_keepalive_timeout_and_a_busy_one_is_kept(tmp_path: Path) -> None:
    """After a response the connection waits ``keepalive_timeout`` seconds for the next request, then is closed; a
    client that sends one request after another within it keeps its connection for longer than that."""
    with (
        _serving(tmp_path, keepalive_timeout=SHORT) as (_, port, _log),
        socket.create_connection(("127.0.0.1", port), timeout=PATIENCE) as idle,
        socket.create_connection(("127.0.0.1", port), timeout=PATIENCE) as busy,
    ):
        assert _ask(idle).startswith(b"HTTP/1.1 200 ")
        began = time.monotonic()
        while time.monotonic() - began < 2 * SHORT:
            assert _ask(busy).startswith(b"HTTP/1.1 200 ")  # raises if the server closed it
            time.sleep(SHORT / 4)
        # Closed by now, twice the timeout later: uvicorn's own default (5 s) would still hold it open.
        idle.settimeout(0.5)
        assert idle.recv(1) == b"", "the idle connection is still open"


def test_a_long_keepalive_timeout_holds_an_idle_connection_past_uvicorns_default(tmp_path: Path) -> None:
    """The setting reaches the server: idle for longer than uvicorn's own 5 seconds, the connection still serves."""
    with (
        _serving(tmp_path, keepalive_timeout=120) as (_, port, _log),
        socket.create_connection(("127.0.0.1", port), timeout=PATIENCE) as sock,
    ):
        assert _ask(sock).startswith(b"HTTP/1.1 200 ")
        time.sleep(7)
        assert _ask(sock).startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_exits_0_within_the_deadline_despite_a_half_sent_body(tmp_path: Path, workers: int) -> None:
    """A client holding half a request body does not keep the server from exiting after SIGTERM: it exits within
    the shutdown deadline, with status 0, with one worker as with several."""
    limits = {"shutdown_timeout": SHORT, "body_timeout": 600}  # the deadline ends it, not the body timeout
    with _serving(tmp_path, "--workers", str(workers), **limits) as (process, port, log):
        with socket.create_connection(("127.0.0.1", port), timeout=10.0) as sock:
            sock.sendall(
                b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: 1000\r\n\r\ngrant_type="
            )
            time.sleep(1.0)  # the request has reached the app, which now waits for the rest of the body
            process.send_signal(signal.SIGTERM)
            try:
                status = process.wait(timeout=PATIENCE)
            except subprocess.TimeoutExpired:
                pytest.fail(f"still running {PATIENCE:.0f} s after SIGTERM\n" + log.read_text()[-3000:])
        assert status == 0, log.read_text()[-3000:]


# --- configuration ------------------------------------------------------------------------------------------------


def test_server_limits_come_from_the_file_the_environment_and_the_flags(tmp_path: Path) -> None:
    """``[server]`` in the file, FRONTDESK_SERVER_* over it, ``serve`` flags over both, one setting at a time."""
    config = tmp_path / "frontdesk.toml"
    config.write_text(
        "[server]\nheader_timeout = 7\nbody_timeout = 20\nmax_connections = 500\nkeepalive_timeout = 70\n"
    )
    env = {"FRONTDESK_CONFIG": str(config), "FRONTDESK_SERVER_BODY_TIMEOUT": "30"}
    assert load_settings(environ=env).server == ServerLimits(
        header_timeout=7, body_timeout=30, max_connections=500, shutdown_timeout=10, keepalive_timeout=70
    )
    args = _parser().parse_args(
        ["serve", "--max-connections", "50", "--shutdown-timeout", "3", "--keepalive-timeout", "75"]
    )
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        assert _settings(args).server == ServerLimits(
            header_timeout=7, body_timeout=30, max_connections=50, shutdown_timeout=3, keepalive_timeout=75
        )


@pytest.mark.parametrize("setting", ["header_timeout = 0", "max_connections = -1", "unknown = 1"])
def test_unusable_server_limits_are_refused(tmp_path: Path, setting: str) -> None:
    config = tmp_path / "frontdesk.toml"
    config.write_text(f"[server]\n{setting}\n")
    with pytest.raises(ConfigError, match="server"):
        load_settings(str(config), environ={})
