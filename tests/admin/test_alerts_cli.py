"""``frontdesk alerts list|ack|resolve``, run as ``python -m frontdesk`` in a subprocess against the test's database,
on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ISSUER
from frontdesk.asgi import open_frontdesk
from frontdesk.config import load_settings

from .alerting import evaluate_all, raised, write

pytestmark = pytest.mark.subprocess


def test_list_acknowledge_and_resolve(database_url: str, tmp_path: Path):
    """An alert raised in the database is listed, acknowledged and resolved by the command line, which names itself
    as the one who did it; a second resolve fails with the reason and a non-zero status. (Four commands: each one
    is a process start.)"""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
    env = {**clean, "FRONTDESK_HOME": str(tmp_path), "FRONTDESK_DATABASE_URL": database_url, "FRONTDESK_ISSUER": ISSUER}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "frontdesk", *args]
        return subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)

    fd = open_frontdesk(load_settings(environ=env))  # the database, migrated, as the commands will find it
    try:
        write(fd, "refresh.reused", "revoked", client_id="app", grant_id="g1")
        evaluate_all(fd)
        (alert,) = raised(fd)
    finally:
        fd.close()
    shown = cli("alerts", "list", "--status", "open")
    assert shown.returncode == 0, shown.stderr
    assert alert.id in shown.stdout
    assert "critical" in shown.stdout
    assert "stolen" in shown.stdout
    acked = cli("alerts", "ack", alert.id, "--json")
    assert acked.returncode == 0, acked.stderr
    assert json.loads(acked.stdout)["acknowledged_by"] == "cli"
    resolved = cli("alerts", "resolve", alert.id)
    assert resolved.returncode == 0
    assert resolved.stdout.startswith("resolved:")
    again = cli("alerts", "resolve", alert.id)
    assert again.returncode == 1
    assert "resolved already" in again.stderr
