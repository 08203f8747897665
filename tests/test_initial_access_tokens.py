"""Initial access tokens (RFC 7591 §3): made by the operator (``frontdesk registration token …``), shown once, kept
as a digest, audited; a use is spent by one compare-and-set, so a token's last use goes to one registration only."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import remember
from frontdesk.cli import main
from frontdesk.cli import registration as registration_cli
from frontdesk.core import Frontdesk
from frontdesk.oauth.initial_access_tokens import (
    InitialAccessTokenError,
    create_initial_access_token,
    list_initial_access_tokens,
    revoke_initial_access_token,
)
from frontdesk.storage import audit
from frontdesk.storage.db import now, transaction
from frontdesk.storage.initial_access_tokens import initial_access_token_for, spend_initial_access_token


@pytest.fixture
def cli(fd: Frontdesk, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """``frontdesk registration …`` in this process, on this test's frontdesk."""
    monkeypatch.setattr(registration_cli, "open_for", lambda args: fd)

    def run(*args: str) -> tuple[int, str, str]:
        status = main(["registration", *args])
        out, err = capsys.readouterr()
        return status, out, err

    return run


def test_a_created_token_is_shown_once_and_stored_as_a_digest(fd, cli, secrets_seen):
    status, out, _ = cli("token", "create", "--name", "partner", "--uses", "3", "--expires-in", "3600", "--json")
    assert status == 0
    shown = json.loads(out)
    remember(secrets_seen, shown["token"])  # the database is scanned for it at the end of the test
    assert shown["token"].startswith("fd_iat_")
    assert (shown["name"], shown["uses_left"]) == ("partner", 3)
    assert shown["expires_at"] == shown["created_at"] + 3600
    status, out, _ = cli("token", "list", "--json")
    listed = json.loads(out)
    assert [t["id"] for t in listed] == [shown["id"]]
    assert listed[0]["state"] == "active"
    assert shown["token"] not in out


def test_the_text_output_prints_the_token_with_a_warning(cli, secrets_seen):
    status, out, _ = cli("token", "create")
    assert status == 0
    token = next(line for line in out.splitlines() if line.startswith("fd_iat_"))
    remember(secrets_seen, token)
    assert "shown once" in out


def test_a_revoked_token_is_listed_as_revoked_and_opens_nothing(fd, cli, secrets_seen):
    token, row = create_initial_access_token(fd, name="x", expires_in=None, uses=None)
    remember(secrets_seen, token)
    assert cli("token", "revoke", row.id)[0] == 0
    with transaction(fd.engine) as conn:
        assert initial_access_token_for(conn, token, now()) is None
    status, out, _ = cli("token", "list")
    assert "revoked" in out
    status, _, err = cli("token", "revoke", row.id)
    assert status == 1
    assert "no unrevoked initial access token" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [(("--uses", "0"), "--uses"), (("--expires-in", "0"), "--expires-in"), (("--name", " "), "name")],
)
def test_a_token_that_cannot_be_made_is_refused_in_words(cli, args, message):
    status, _, err = cli("token", "create", *args)
    assert status == 1
    assert message in err


def test_the_last_use_goes_to_one_registration_only(fd, secrets_seen):
    """Compare-and-set: a second spend of a one-use token finds nothing, even in the same instant."""
    token, _ = create_initial_access_token(fd, name="once", expires_in=None, uses=1)
    remember(secrets_seen, token)
    at = now()
    with transaction(fd.engine) as conn:
        first = spend_initial_access_token(conn, token, at)
        second = spend_initial_access_token(conn, token, at)
    assert first is not None
    assert first.uses_left == 0
    assert second is None


def test_a_token_without_a_use_limit_stays_unlimited(fd, secrets_seen):
    token, _ = create_initial_access_token(fd, name="many", expires_in=None, uses=None)
    remember(secrets_seen, token)
    with transaction(fd.engine) as conn:
        for _ in range(3):
            spent = spend_initial_access_token(conn, token, now())
            assert spent is not None
            assert spent.uses_left is None


def test_an_expired_token_cannot_be_spent(fd, secrets_seen, clock):
    token, _ = create_initial_access_token(fd, name="brief", expires_in=10, uses=None)
    remember(secrets_seen, token)
    clock.advance(11)
    with transaction(fd.engine) as conn:
        assert spend_initial_access_token(conn, token, now()) is None
    assert list_initial_access_tokens(fd)[0].uses_left is None


def test_creating_and_revoking_are_audited_without_the_token(fd, secrets_seen):
    token, row = create_initial_access_token(fd, name="audited", expires_in=None, uses=2)
    remember(secrets_seen, token)
    assert revoke_initial_access_token(fd, row.id)
    events = [e for e in audit.tail(fd.engine) if e.event.startswith("initial_access_token.")]
    assert [e.event for e in events] == ["initial_access_token.created", "initial_access_token.revoked"]
    assert all(e.detail["token_id"] == row.id for e in events)
    assert token not in json.dumps([e.as_dict() for e in events])


def test_the_service_refuses_a_bad_lifetime(fd):
    with pytest.raises(InitialAccessTokenError):
        create_initial_access_token(fd, name="x", expires_in=-5, uses=None)
