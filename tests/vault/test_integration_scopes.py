"""Integration scopes (issue 11, item 2): scopes the operator gives replace the catalog's default scopes, and an
integration made before that change (revision 0008) keeps asking for the defaults on top, as it did."""

from __future__ import annotations

import json

import httpx
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import select, text

from frontdesk.storage.db import MIGRATIONS, now
from frontdesk.storage.schema import VaultConnectSession
from frontdesk.vault.service import Vault
from frontdesk.vault.store import VaultError

from .conftest import bearer, open_link
from .fake_provider import CLIENT_ID, CLIENT_SECRET


async def asked_at_provider(http: httpx.AsyncClient, api_key: str, integration: str) -> str:
    """The ``scope`` the connect link sends the person to the provider with."""
    created = await http.post(
        "/vault/connect-sessions", json={"user": "u-1", "integration": integration}, headers=bearer(api_key)
    )
    assert created.status_code == 201, created.text
    opened = await open_link(http, created.json()["connect_url"])
    assert opened.status_code == 303, opened.text
    return str(httpx.URL(opened.headers["location"]).params["scope"])


async def test_given_scopes_replace_the_catalog_defaults(http: httpx.AsyncClient, vault: Vault, api_key: str) -> None:
    """The fake provider's default is calendar.read; an integration given calendar.write asks for that alone."""
    vault.add_integration("write-only", "fake", CLIENT_ID, CLIENT_SECRET, ["calendar.write"])
    assert await asked_at_provider(http, api_key, "write-only") == "calendar.write"


async def test_no_scopes_given_asks_for_the_defaults(http: httpx.AsyncClient, vault: Vault, api_key: str) -> None:
    added = vault.add_integration("defaults", "fake", CLIENT_ID, CLIENT_SECRET)
    assert added.scopes == ("calendar.read",)  # kept whole: what it asks for is what the operator was shown
    assert await asked_at_provider(http, api_key, "defaults") == "calendar.read"


async def test_the_check_answer_names_only_the_scopes_asked_for(
    http: httpx.AsyncClient, vault: Vault, api_key: str
) -> None:
    """The authorization_required answer lists what the link asks for, not the defaults the operator dropped."""
    vault.add_integration("write-only", "fake", CLIENT_ID, CLIENT_SECRET, ["calendar.write"])
    answer = await http.post(
        "/vault/check", json={"user": "u-1", "integration": "write-only", "scopes": []}, headers=bearer(api_key)
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["scopes"] == ["calendar.write"]


def test_a_scope_that_is_not_a_scope_token_is_refused(vault: Vault) -> None:
    with pytest.raises(VaultError, match="RFC 6749"):
        vault.add_integration("bad", "fake", CLIENT_ID, CLIENT_SECRET, ['calendar"read'])


def _migrate(vault: Vault, target: str, upgrade: bool) -> None:
    with vault.engine.connect() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        (command.upgrade if upgrade else command.downgrade)(cfg, target)
        conn.commit()


async def test_an_integration_made_before_0008_keeps_its_defaults_on_top(
    http: httpx.AsyncClient, vault: Vault, api_key: str
) -> None:
    """A row written by the old code (scopes = the operator's extras) still asks for the defaults and its extras."""
    _migrate(vault, "0007", upgrade=False)
    with vault.engine.begin() as conn:
        # Plain SQL as the old code wrote it: the model of today would name the column 0008 adds.
        conn.execute(
            text(
                "INSERT INTO vault_integrations (name, provider, client_id, scopes, params, created_at) "
                "VALUES ('legacy', 'fake', :client_id, :scopes, '{}', :at)"
            ),
            {"client_id": CLIENT_ID, "scopes": json.dumps(["calendar.write"]), "at": now()},
        )
    _migrate(vault, "head", upgrade=True)
    assert await asked_at_provider(http, api_key, "legacy") == "calendar.read calendar.write"
    with vault.engine.begin() as conn:
        stored = conn.execute(select(VaultConnectSession.scopes)).scalar_one()
    assert json.loads(stored) == ["calendar.read", "calendar.write"]
