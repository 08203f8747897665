"""frontdesk as a separate process (``python -m frontdesk serve``) on a free loopback port, on SQLite or on a fresh
PostgreSQL database, set up through the CLI exactly as an operator would: shared by the interop, browser and
security tests."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import PG_ENV, _drop_pg_database, _pg_database

CLI_TIMEOUT = 60.0
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
START_ATTEMPTS = 3


@dataclass(frozen=True)
class Server:
    """A running ``frontdesk serve`` and the environment that points the CLI at the same home and database."""

    issuer: str
    env: dict[str, str]
    backend: str
    log: Path

    def cli(self, *args: str, stdin: str | None = None) -> Any:
        """Run ``python -m frontdesk ARGS --json`` against this server's database; returns the parsed output."""
        command = [sys.executable, "-m", "frontdesk", *args, "--json"]
        done = subprocess.run(
            command, env=self.env, input=stdin, capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False
        )
        if done.returncode != 0:
            pytest.fail(f"`frontdesk {' '.join(args)}` exited {done.returncode}:\n{done.stderr}{done.stdout}")
        return json.loads(done.stdout)

    def metadata(self) -> dict[str, Any]:
        response = httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=10.0)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environment(home: Path, database_url: str | None) -> dict[str, str]:
    # Nothing from the caller's own frontdesk setup may leak into the server under test.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_") or k == PG_ENV}
    # DEBUG, so that the scan of the server's log after the tests sees everything it could ever write.
    env.update({"FRONTDESK_HOME": str(home), "FRONTDESK_LOG_LEVEL": "DEBUG", "PYTHONUNBUFFERED": "1"})
    if database_url:
        env["FRONTDESK_DATABASE_URL"] = database_url
    return env


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


def _wait_until_ready(process: subprocess.Popen[bytes], issuer: str, log: Path, base: str | None = None) -> bool:
    """True once discovery answers with this issuer (at ``base``, by default the issuer itself); False if the process
    died (e.g. the port was taken)."""
    deadline = time.monotonic() + START_TIMEOUT
    url = f"{base or issuer}/.well-known/openid-configuration"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            response = httpx.get(url, timeout=2.0)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        assert response.status_code == 200, f"discovery answered {response.status_code}: {response.text}"
        assert response.json()["issuer"] == issuer
        return True
    _stop(process)
    pytest.fail(f"frontdesk did not answer at {url} within {START_TIMEOUT:.0f} s; its log:\n{log.read_text()}")


# Anything shaped like a frontdesk credential: a prefixed code, refresh token, secret or session, or a JWT.
SECRET_SHAPES = re.compile(
    r"fd_(?:ac|rt|cs|dc|ss|ix|adm|ev|pr)_[A-Za-z0-9_\-]{20,}|eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"
)


def assert_no_secret_in_log(log: Path) -> None:
    """The server's own DEBUG log holds no credential: its redaction left nothing shaped like one."""
    found = SECRET_SHAPES.findall(log.read_text(errors="replace")) if log.exists() else []
    assert not found, f"{len(found)} credential(s) in the server log {log}, e.g. {found[0][:16]}…"


@contextlib.contextmanager
def serving(
    backend: str, tmp_path: Path, env: dict[str, str] | None = None, issuer_host: str = "127.0.0.1"
) -> Iterator[Server]:
    """``frontdesk serve`` in its own process on a fresh database, stopped (and the database dropped) afterwards.

    ``env`` adds variables (``FRONTDESK_VAULT_PROVIDERS_DIR``…) to the server's environment and its CLI's.
    ``issuer_host`` names the loopback server in its issuer: ``localhost`` for WebAuthn, which Chromium refuses on
    an IP address."""
    database_url = _pg_database(os.environ[PG_ENV]) if backend == "postgresql" else None
    home = tmp_path / "frontdesk-home"
    home.mkdir()
    env = {**_environment(home, database_url), **(env or {})}
    log = tmp_path / "frontdesk.log"
    process: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(START_ATTEMPTS):
            port = _free_port()
            issuer = f"http://{issuer_host}:{port}"
            command = ["serve", "--host", "127.0.0.1", "--port", str(port), "--issuer", issuer]
            with log.open("ab") as sink:
                process = subprocess.Popen(
                    [sys.executable, "-m", "frontdesk", *command],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
            if _wait_until_ready(process, issuer, log):
                break
            process.wait(timeout=STOP_TIMEOUT)
        else:
            pytest.fail(f"frontdesk serve exited before answering, {START_ATTEMPTS} times; its log:\n{log.read_text()}")
        server = Server(issuer=issuer, env=env, backend=backend, log=log)
        yield server
        assert process.poll() is None, f"frontdesk serve died during the test; its log:\n{server.log_text()}"
    finally:
        if process is not None:
            _stop(process)
        if database_url is not None:
            _drop_pg_database(os.environ[PG_ENV], database_url)
    assert_no_secret_in_log(log)


@contextlib.contextmanager
def loopback(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """A small HTTP server for a test's own pages or endpoints, on a free loopback port; yields the port."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield int(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@dataclass(frozen=True)
class Cluster:
    """Several ``frontdesk serve`` processes behind one issuer, each with a home of its own, on one database: the
    hosts of a scale-out deployment. ``servers[i].cli`` runs the command line as host ``i``'s operator would."""

    issuer: str
    bases: tuple[str, ...]  # where each process listens; the issuer names the first, as a load balancer would
    servers: tuple[Server, ...]


@contextlib.contextmanager
def serving_together(tmp_path: Path, database_url: str, envs: list[dict[str, str]]) -> Iterator[Cluster]:
    """One ``frontdesk serve`` per entry of ``envs`` (variables over ``_environment``; give each its own
    ``FRONTDESK_HOME``), started at once on ``database_url`` (so they also race through its migrations) with the
    issuer of the first; stopped afterwards, and each one's DEBUG log checked for credentials."""
    logs = [tmp_path / f"frontdesk-{i}.log" for i in range(len(envs))]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(START_ATTEMPTS):
            ports = [_free_port() for _ in envs]
            if len(set(ports)) < len(ports):
                continue
            issuer = f"http://127.0.0.1:{ports[0]}"
            bases = tuple(f"http://127.0.0.1:{port}" for port in ports)
            full = [
                {**_environment(Path(env["FRONTDESK_HOME"]), database_url), **env, "FRONTDESK_ISSUER": issuer}
                for env in envs
            ]
            processes = []
            for port, env, log in zip(ports, full, logs, strict=True):
                with log.open("ab") as sink:
                    command = [sys.executable, "-m", "frontdesk", "serve", "--host", "127.0.0.1", "--port", str(port)]
                    processes.append(
                        subprocess.Popen(
                            command, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT
                        )
                    )
            if all(
                _wait_until_ready(p, issuer, log, base) for p, base, log in zip(processes, bases, logs, strict=True)
            ):
                break
            for process in processes:  # one died, most likely on a port taken meanwhile: all start again
                _stop(process)
        else:
            pytest.fail(
                f"{len(envs)} frontdesk processes did not all start, {START_ATTEMPTS} times; their logs:\n"
                + "\n".join(log.read_text(errors="replace") for log in logs if log.exists())
            )
        servers = tuple(
            Server(issuer=issuer, env=env, backend="postgresql" if database_url.startswith("postgresql") else "sqlite",
                   log=log)
            for env, log in zip(full, logs, strict=True)
        )  # fmt: skip
        yield Cluster(issuer, bases, servers)
        for i, (process, log) in enumerate(zip(processes, logs, strict=True)):
            assert process.poll() is None, f"frontdesk {i} died during the tests; its log:\n{log.read_text()}"
    finally:
        for process in processes:
            _stop(process)
    for log in logs:
        assert_no_secret_in_log(log)
