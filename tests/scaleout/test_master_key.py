"""Every host of a deployment needs the deployment's master key (README, "Running in production"; DESIGN §3: the key
ring lives in the database, sealed under it). A host given none makes one of its own in its home, as the embedded
default does; on a shared database that key opens none of the stored signing keys, and invalid configuration fails
at start, loudly (DESIGN §9): the command line refuses before it seals new keys under it, and so does the server,
rather than answering every request that signs or publishes a key with a 500; of two hosts started together on an
empty database, each with a key of its own, the one that did not make the first keys refuses."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select

from conftest import PG_ENV, _drop_pg_database, _pg_database, remember
from frontdesk.storage.db import normalise_url
from frontdesk.storage.schema import SigningKey
from servers import CLI_TIMEOUT, START_TIMEOUT, _environment, _free_port, _stop

from .conftest import Pair

pytestmark = [pytest.mark.subprocess, pytest.mark.postgres]


def _without_master_key(pair: Pair, home: Path) -> dict[str, str]:
    """Host A's environment for a host of its own that was given every setting but the master key."""
    env = {k: v for k, v in pair.cluster.servers[0].env.items() if k != "FRONTDESK_MASTER_KEY_FILE"}
    env["FRONTDESK_HOME"] = str(home)
    return env


def _key_ring(pair: Pair) -> list[tuple[str, str, bytes]]:
    """Every stored signing key: its kid, its state and its sealed private part."""
    engine = create_engine(normalise_url(pair.database_url))
    try:
        with engine.connect() as conn:
            return sorted(
                tuple(row) for row in conn.execute(select(SigningKey.kid, SigningKey.state, SigningKey.private_jwk))
            )
    finally:
        engine.dispose()


def test_a_command_without_the_deployments_master_key_refuses_and_leaves_the_key_ring_as_it_was(
    pair: Pair, tmp_path: Path
):
    before = _key_ring(pair)
    env = _without_master_key(pair, tmp_path / "home")
    done = subprocess.run(
        [sys.executable, "-m", "frontdesk", "keys", "rotate", "--json"],
        env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "master key" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert _key_ring(pair) == before


def test_a_server_without_the_deployments_master_key_refuses_to_start(pair: Pair, tmp_path: Path):
    env = _without_master_key(pair, tmp_path / "home")
    port = _free_port()
    log = tmp_path / "refused.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "frontdesk", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        status = process.wait(timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        _stop(process)
        pytest.fail(f"frontdesk served on a master key that opens no signing key; its log:\n{log.read_text()[-3000:]}")
    assert status == 1, log.read_text()[-3000:]
    assert "master key" in log.read_text(), log.read_text()[-3000:]


def test_of_two_hosts_started_together_on_an_empty_database_with_different_master_keys_one_refuses(
    tmp_path: Path,
):
    """Whichever makes the first signing keys serves; the other finds them sealed under another key, before or after
    its own turn to make keys, and exits 1 naming the master key."""
    admin_url = os.environ[PG_ENV]
    database_url = _pg_database(admin_url)
    port = _free_port()
    processes: list[subprocess.Popen[bytes]] = []
    ports: list[int] = []
    logs = [tmp_path / f"host-{n}.log" for n in range(2)]
    try:
        for n, log in enumerate(logs):
            env = _environment(tmp_path / f"home-{n}", database_url)
            master_key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
            remember(set(), master_key)
            env.update({"FRONTDESK_MASTER_KEY": master_key, "FRONTDESK_ISSUER": f"http://127.0.0.1:{port}"})
            ports.append(port if n == 0 else _free_port())
            command = [sys.executable, "-m", "frontdesk", "serve", "--host", "127.0.0.1", "--port", str(ports[-1])]
            with log.open("wb") as sink:
                processes.append(
                    subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT)
                )
        outcomes = sorted(_outcome(p, f"http://127.0.0.1:{n}") for p, n in zip(processes, ports, strict=True))
        assert outcomes == ["exited 1", "serving"], "\n".join(log.read_text()[-2000:] for log in logs)
        refused = next(log for process, log in zip(processes, logs, strict=True) if process.poll() is not None)
        assert "master key" in refused.read_text()
    finally:
        for process in processes:
            _stop(process)
        _drop_pg_database(admin_url, database_url)


def _outcome(process: subprocess.Popen[bytes], base: str) -> str:
    """``serving`` once the process answers discovery at ``base``, or how it exited."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        status = process.poll()
        if status is not None:
            return f"exited {status}"
        try:
            if httpx.get(f"{base}/.well-known/openid-configuration", timeout=2.0).status_code == 200:
                return "serving"
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return "still starting"
