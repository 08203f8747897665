"""The operator's token exchange policy (RFC 8693 §5): ``frontdesk client create|update --may-exchange-for URI``,
``--clear-may-exchange-for``, and that a client registering itself cannot set it."""

from __future__ import annotations

import pytest

from conftest import remember
from frontdesk.cli import clients as client_cli
from frontdesk.cli import main
from frontdesk.core import Frontdesk
from frontdesk.storage import audit
from test_token_exchange import CALENDAR, FILES, TE, agent_client, register_targets


@pytest.fixture
def targets(fd: Frontdesk) -> tuple[str, str]:
    return register_targets(fd)


@pytest.fixture
def cli(fd: Frontdesk, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """``frontdesk client …`` in this process on the test's frontdesk: (exit status, stdout, stderr)."""
    monkeypatch.setattr(client_cli, "open_for", lambda args: fd)

    def run(*argv: str) -> tuple[int, str, str]:
        status = main(["client", *argv])
        out, err = capsys.readouterr()
        return status, out, err

    return run


def test_client_create_may_exchange_for_stores_the_registered_uri(fd, cli, targets, secrets_seen):
    status, out, _ = cli(
        "create", "--name", "Agent", "--client-id", "cli-agent", "--grant-type", TE,
        "--may-exchange-for", "HTTPS://Calendar.Example:443/api", "--may-exchange-for", FILES,
    )  # fmt: skip
    remember(secrets_seen, *(line.split()[-1] for line in out.splitlines() if line.startswith("client_secret:")))
    assert status == 0, out
    assert "may exchange for: https://calendar.example/api https://files.example/api" in out
    client = fd.clients.get("cli-agent", cached=False)
    assert client.may_exchange_for == (CALENDAR, FILES)


def test_client_create_refuses_an_unregistered_exchange_target(fd, cli, targets):
    status, _, err = cli("create", "--name", "Agent", "--may-exchange-for", "https://nobody.example/api")
    assert status != 0
    assert "may_exchange_for" in err
    assert fd.clients.list() == []


def test_client_update_replaces_and_clears_may_exchange_for(fd, cli, targets, secrets_seen):
    agent_client(fd, secrets_seen)
    assert cli("update", "agent", "--may-exchange-for", FILES)[0] == 0
    assert fd.clients.get("agent", cached=False).may_exchange_for == (FILES,)
    status, _, err = cli("update", "agent", "--may-exchange-for", "https://nobody.example/api")
    assert status != 0
    assert "may_exchange_for" in err
    assert fd.clients.get("agent", cached=False).may_exchange_for == (FILES,)
    assert cli("update", "agent", "--clear-may-exchange-for")[0] == 0
    assert fd.clients.get("agent", cached=False).may_exchange_for == ()
    updates = [e for e in audit.tail(fd.engine, 50) if e.event == "client.updated" and e.client_id == "agent"]
    assert [e.detail["may_exchange_for"] for e in updates] == [[FILES], []]


async def test_a_self_registered_client_cannot_name_its_own_exchange_policy(http, fd, secrets_seen):
    response = await http.post(
        "/register",
        json={"redirect_uris": ["https://agent.example/cb"], "may_exchange_for": [CALENDAR]},
    )
    assert response.status_code == 201, response.text
    remember(secrets_seen, response.json().get("registration_access_token"))
    assert "may_exchange_for" not in response.json()
    assert fd.clients.get(response.json()["client_id"], cached=False).may_exchange_for == ()
