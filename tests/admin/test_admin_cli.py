"""The command line on the admin services (cli/clients.py, cli/people.py): a client's redirect URIs and scopes
changed, its secret rotated with an overlap, a person disabled and enabled; run in process, on SQLite and
PostgreSQL, each change audited as the command line's (``by: cli``)."""

from __future__ import annotations

import json

import pytest

from conftest import Registered, remember
from frontdesk.cli import clients as client_cli
from frontdesk.cli import main
from frontdesk.cli import people as people_cli
from frontdesk.cli import upkeep as upkeep_cli
from frontdesk.core import Frontdesk

from .admin_api import events


@pytest.fixture
def run(fd: Frontdesk, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    for module in (client_cli, people_cli, upkeep_cli):
        monkeypatch.setattr(module, "open_for", lambda args: fd)

    def command(*argv: str) -> tuple[int, str, str]:
        status = main(list(argv))
        out, err = capsys.readouterr()
        return status, out, err

    return command


def test_client_update_changes_redirect_uris_and_scope(run, fd: Frontdesk, confidential: Registered):
    status, out, err = run(
        "client", "update", confidential.client_id, "--redirect-uri", "https://app.example/new", "--scope", "openid",
        "--json",
    )  # fmt: skip
    assert status == 0, err
    assert json.loads(out)["redirect_uris"] == ["https://app.example/new"]
    assert fd.clients.get(confidential.client_id, cached=False).scope == ("openid",)
    status, _, err = run("client", "update", confidential.client_id, "--redirect-uri", "http://app.example/cb")
    assert status == 1
    assert "invalid_redirect_uri" in err
    [updated] = events(fd, "admin.client.updated")
    assert updated.detail["by"] == "cli"


def test_client_rotate_secret_prints_the_new_one_once(run, confidential: Registered, secrets_seen):
    status, out, err = run("client", "rotate-secret", confidential.client_id, "--overlap", "60", "--json")
    assert status == 0, err
    shown = json.loads(out)
    remember(secrets_seen, shown["client_secret"])
    assert shown["client_secret"].startswith("fd_cs_")
    assert shown["previous_secret_valid_until"] is not None
    status, _, err = run("client", "rotate-secret", "nobody")
    assert status == 1
    assert "no client 'nobody'" in err


def test_user_disable_and_enable(run, fd: Frontdesk, person):
    status, out, err = run("user", "disable", "alice")
    assert status == 0, err
    assert "cannot sign in" in out
    assert fd.users.authenticate("alice", person[1]) is not None  # the password is right; sign-in refuses it
    status, out, _ = run("user", "list", "--json")
    assert json.loads(out)[0]["disabled"] is True
    assert run("user", "enable", "alice")[0] == 0
    assert run("user", "disable", "nobody")[2].strip() == "frontdesk: no user 'nobody'"


def test_audit_tail_filters_and_export(run, fd: Frontdesk, person):
    run("user", "disable", "alice")
    run("user", "enable", "alice")
    status, out, _ = run("audit", "tail", "--event", "admin.person.*", "--json")
    assert status == 0
    assert [e["event"] for e in json.loads(out)] == ["admin.person.disabled", "admin.person.enabled"]
    status, out, _ = run("audit", "tail", "-n", "1", "--event", "admin.person.*", "--json")
    assert [e["event"] for e in json.loads(out)] == ["admin.person.enabled"]
    status, out, _ = run("audit", "export", "--event", "admin.person.*")
    assert [json.loads(line)["event"] for line in out.splitlines()] == ["admin.person.disabled", "admin.person.enabled"]
    assert events(fd, "admin.audit.exported")[0].detail["by"] == "cli"
