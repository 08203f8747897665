"""Each provider quirk the catalog can describe, against the fake provider behaving that way: the token nested in
the response (Slack), ``expires_in`` as a string, in milliseconds or absent, a refresh without a new refresh token
(Google), client credentials in a JSON body (Notion), the credential in a vendor header (Shopify), a connection
variable in the API URL (Shopify's shop) and an API host kept from the token response (Salesforce)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from conftest import remember
from frontdesk.core import Frontdesk
from frontdesk.storage.schema import VaultConnection
from frontdesk.vault.service import Vault

from .conftest import bearer, connect_link, connected, open_link, remember_tokens, reopen, through_provider
from .fake_provider import CLIENT_ID, CLIENT_SECRET, Fake, running


def _vault_with(fd: Frontdesk, fake: Fake, tmp_path: Path, seen: set[str], **file: Any) -> Vault:
    providers = tmp_path / "quirky-providers"
    fake.provider_file(providers, "quirky", **file)
    fd.settings = dataclasses.replace(fd.settings, vault_providers_dir=str(providers))
    vault = reopen(fd)
    vault.add_integration("cal", "quirky", CLIENT_ID, CLIENT_SECRET, ["calendar.read"])
    remember(seen, CLIENT_SECRET)
    return vault


@pytest.fixture
def api_key(fd: Frontdesk, secrets_seen: set[str]) -> str:
    from frontdesk.vault import api_key_store

    _, key = api_key_store.create_api_key(fd.engine, "platform backend")
    remember(secrets_seen, key.value)
    return key.value


def _row(vault: Vault) -> Any:
    with vault.engine.begin() as conn:
        return conn.execute(select(VaultConnection)).one()


async def _call(http: httpx.AsyncClient, key: str, connection_id: str, path: str = "me") -> httpx.Response:
    return await http.get(f"/vault/proxy/{connection_id}/{path}", headers=bearer(key))


async def test_slack_token_under_authed_user_with_kept_team(
    fd: Frontdesk, http: httpx.AsyncClient, api_key: str, tmp_path: Path, secrets_seen: set[str]
) -> None:
    """Slack's oauth.v2.access: the user token sits under ``authed_user``; the team id is kept, not secret."""
    extra = {"ok": True, "team": {"id": "T024BE7LD", "name": "Acme"}, "access_token": "xoxb-bot-token-not-ours"}
    with running(Fake(token_path=("authed_user",), extra=extra, pkce=False)) as fake:
        vault = _vault_with(
            fd, fake, tmp_path, secrets_seen, tables={"keep": {"team.id": "team_id"}}, scope_param='"user_scope"'
        )
        link = await connect_link(http, api_key)
        opened = await open_link(http, link["connect_url"])
        assert "user_scope=calendar.read" in opened.headers["location"]
        assert "code_challenge" not in opened.headers["location"]
        connection = await connected(http, api_key)
        remember_tokens(fake, secrets_seen)
        remember(secrets_seen, "xoxb-bot-token-not-ours")
        assert connection["metadata"] == {"team_id": "T024BE7LD"}
        response = await _call(http, api_key, connection["id"])
        assert response.status_code == 200
        assert fake.api_calls[-1]["headers"]["authorization"].removeprefix("Bearer ") in fake.access
        assert vault.connection(connection["id"]) is not None


@pytest.mark.parametrize(
    ("options", "file", "lifetime"),
    [
        ({"expires_in": "3600"}, {}, 3600),
        ({"expires_in": 7_200_000, "ms": True}, {}, 7200),
        ({"expires_in": None}, {}, None),
    ],
    ids=["string", "milliseconds", "absent"],
)
async def test_expires_in_quirks(
    fd: Frontdesk,
    http: httpx.AsyncClient,
    api_key: str,
    tmp_path: Path,
    secrets_seen: set[str],
    options: dict[str, Any],
    file: dict[str, Any],
    lifetime: int | None,
) -> None:
    with running(Fake(**options)) as fake:
        vault = _vault_with(fd, fake, tmp_path, secrets_seen, **file)
        connection = await connected(http, api_key)
        remember_tokens(fake, secrets_seen)
        if lifetime is None:
            assert connection["expires_at"] is None
            # A token that never expires is never refreshed ahead of time.
            assert (await _call(http, api_key, connection["id"])).status_code == 200
            assert fake.refresh_calls == 0
        else:
            assert abs(connection["expires_at"] - (time.time() + lifetime)) < 30
        assert _row(vault).status == "active"


async def test_a_refresh_without_a_new_refresh_token_keeps_the_old_one(
    fd: Frontdesk, http: httpx.AsyncClient, api_key: str, tmp_path: Path, secrets_seen: set[str]
) -> None:
    """Google, Salesforce and HubSpot often omit the refresh token on refresh: the one we have stays."""
    with running(Fake(rotate=False, return_refresh_on_refresh=False)) as fake:
        vault = _vault_with(fd, fake, tmp_path, secrets_seen)
        connection = await connected(http, api_key)
        for _ in range(3):
            fake.expire_access_tokens()
            assert (await _call(http, api_key, connection["id"])).status_code == 200
        remember_tokens(fake, secrets_seen)
        assert fake.refresh_calls == 3
        assert fake.dead_refreshes == 0
        assert _row(vault).status == "active"


async def test_client_credentials_in_a_json_body(
    fd: Frontdesk, http: httpx.AsyncClient, api_key: str, tmp_path: Path, secrets_seen: set[str]
) -> None:
    """Notion-style token endpoint: HTTP Basic client authentication and a JSON body."""
    with running(Fake(client_auth="basic")) as fake:
        _vault_with(fd, fake, tmp_path, secrets_seen, body_format='"json"')
        connection = await connected(http, api_key)
        fake.expire_access_tokens()
        assert (await _call(http, api_key, connection["id"])).status_code == 200
        remember_tokens(fake, secrets_seen)
        assert fake.refresh_calls == 1


async def test_client_credentials_in_the_form_body(
    fd: Frontdesk, http: httpx.AsyncClient, api_key: str, tmp_path: Path, secrets_seen: set[str]
) -> None:
    with running(Fake(client_auth="body")) as fake:
        _vault_with(fd, fake, tmp_path, secrets_seen)
        connection = await connected(http, api_key)
        fake.expire_access_tokens()
        assert (await _call(http, api_key, connection["id"])).status_code == 200
        remember_tokens(fake, secrets_seen)


async def test_shopify_header_and_shop_in_the_url(
    fd: Frontdesk, http: httpx.AsyncClient, api_key: str, tmp_path: Path, secrets_seen: set[str]
) -> None:
    """The credential goes in X-Shopify-Access-Token (no Bearer), and the person's shop picks the URL."""
    with running(Fake(header="X-Shopify-Access-Token", prefix="")) as fake:
        shop = {"source": "connection", "pattern": "[a-z0-9][a-z0-9-]{0,59}", "description": "the shop"}
        _vault_with(fd, fake, tmp_path, secrets_seen, tables={"variables.shop": shop}, api_base="/api/shops/{shop}")
        refused = await http.post(
            "/vault/connect-sessions",
            json={"user": "u-123", "integration": "cal", "params": {"shop": "evil.example/"}},
            headers=bearer(api_key),
        )
        assert refused.status_code == 400
        connection = await connected(http, api_key, params={"shop": "acme"})
        remember_tokens(fake, secrets_seen)
        assert connection["metadata"] == {"shop": "acme"}
        response = await _call(http, api_key, connection["id"], "products.json")
        assert response.status_code == 200, response.text
        sent = fake.api_calls[-1]
        assert sent["path"] == "/api/shops/acme/products.json"
        assert sent["headers"]["x-shopify-access-token"] in fake.access
        assert "authorization" not in sent["headers"]


async def test_a_header_the_caller_sends_under_the_credentials_name_never_goes_out(
    fd: Frontdesk, http: httpx.AsyncClient, api_key: str, tmp_path: Path, secrets_seen: set[str]
) -> None:
    """A vendor header named as the provider's credential header (in any case) is replaced by the credential, not
    sent beside it: the provider sees one value, the person's token."""
    with running(Fake(header="X-Shopify-Access-Token", prefix="")) as fake:
        _vault_with(fd, fake, tmp_path, secrets_seen)
        connection = await connected(http, api_key)
        remember_tokens(fake, secrets_seen)
        forged = {**bearer(api_key), "x-shopify-access-token": "forged"}
        response = await http.get(f"/vault/proxy/{connection['id']}/me", headers=forged)
        assert response.status_code == 200, response.text
        assert fake.api_calls[-1]["headers"]["x-shopify-access-token"] in fake.access


async def test_api_host_kept_from_the_token_response(
    fd: Frontdesk, http: httpx.AsyncClient, api_key: str, tmp_path: Path, secrets_seen: set[str]
) -> None:
    """Salesforce-style ``instance_url``: the API base comes from the token response, checked by its pattern."""
    with running(Fake()) as fake:
        fake.extra = {"instance_url": fake.base}
        instance = {"source": "response", "kind": "url", "pattern": r"http://127\.0\.0\.1:[0-9]+"}
        _vault_with(
            fd, fake, tmp_path, secrets_seen,
            tables={"keep": {"instance_url": "instance_url"}, "variables.instance_url": instance},
            api_base="{instance_url}", hosts=("{instance_url}",),
        )  # fmt: skip
        connection = await connected(http, api_key)
        remember_tokens(fake, secrets_seen)
        assert connection["metadata"]["instance_url"] == fake.base
        response = await _call(http, api_key, connection["id"], "api/sobjects")
        assert response.status_code == 200, response.text
        assert fake.api_calls[-1]["path"] == "/api/sobjects"


async def test_a_response_value_outside_its_pattern_never_becomes_a_host(
    fd: Frontdesk, http: httpx.AsyncClient, api_key: str, tmp_path: Path, secrets_seen: set[str]
) -> None:
    """A provider (or an attacker in the middle) naming another API host gets no credential sent there."""
    with running(Fake()) as fake:
        fake.extra = {"instance_url": "http://169.254.169.254"}
        instance = {"source": "response", "kind": "url", "pattern": r"http://127\.0\.0\.1:[0-9]+"}
        _vault_with(
            fd, fake, tmp_path, secrets_seen,
            tables={"keep": {"instance_url": "instance_url"}, "variables.instance_url": instance},
            api_base="{instance_url}", hosts=("{instance_url}",),
        )  # fmt: skip
        connection = await connected(http, api_key)
        remember_tokens(fake, secrets_seen)
        response = await _call(http, api_key, connection["id"], "latest/meta-data")
        assert response.status_code == 400
        assert fake.api_calls == []


async def test_refresh_margin_comes_from_the_provider(
    fd: Frontdesk, http: httpx.AsyncClient, api_key: str, tmp_path: Path, secrets_seen: set[str]
) -> None:
    """A token still valid for 100 s is refreshed when the provider's margin is 300 s, not when it is 60 s."""
    with running(Fake()) as fake:
        vault = _vault_with(fd, fake, tmp_path, secrets_seen)  # refresh_margin = 60
        connection = await connected(http, api_key)
        with vault.engine.begin() as conn:
            # An hour's token with 100 s left (the margin is capped at half the lifetime the provider gave).
            at = int(time.time())
            conn.execute(update(VaultConnection).values(expires_at=at + 100, refreshed_at=at + 100 - 3600))
        assert (await _call(http, api_key, connection["id"])).status_code == 200
        assert fake.refresh_calls == 0
        providers = tmp_path / "quirky-providers"
        fake.provider_file(providers, "quirky", refresh_margin="300")
        reopen(fd)
        assert (await _call(http, api_key, connection["id"])).status_code == 200
        remember_tokens(fake, secrets_seen)
        assert fake.refresh_calls == 1


async def test_pkce_and_state_reach_the_provider(
    fd: Frontdesk, http: httpx.AsyncClient, api_key: str, tmp_path: Path, secrets_seen: set[str]
) -> None:
    with running(Fake()) as fake:
        _vault_with(fd, fake, tmp_path, secrets_seen, tables={"authorize_params": {"prompt": "consent"}})
        link = await connect_link(http, api_key)
        done = await through_provider(http, link["connect_url"])
        assert done.status_code == 200
        remember_tokens(fake, secrets_seen)
        # The fake checked the S256 verifier at its token endpoint; the authorize request carried state and extras.
        assert fake.codes == {}
