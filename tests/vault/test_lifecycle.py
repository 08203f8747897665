"""The vault's keys and housekeeping: tokens sealed at rest, key rotation while serving, refusing to start without
the key, keep-alive refreshes of idle connections, and signed lifecycle webhooks."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from conftest import remember
from frontdesk.asgi import open_frontdesk
from frontdesk.config import ConfigError
from frontdesk.core import Frontdesk
from frontdesk.storage.schema import VaultConnection, VaultIntegration
from frontdesk.vault.cli import _prepend_key
from frontdesk.vault.keys import generate_key
from frontdesk.vault.service import Vault, open_vault

from .conftest import bearer, connected, remember_tokens, reopen
from .fake_provider import CLIENT_SECRET, Fake

pytestmark = pytest.mark.usefixtures("vault")


def _sealed(vault: Vault) -> list[tuple[str, bytes]]:
    with vault.engine.begin() as conn:
        return [(r.key_id, r.credentials) for r in conn.execute(select(VaultConnection))]


async def test_tokens_rest_sealed_with_the_connection_id_bound(
    http: httpx.AsyncClient, api_key: str, fake: Fake, vault: Vault, secrets_seen: set[str]
) -> None:
    """No provider token in any row (the suite's at-rest scan checks every table), and an envelope moved to another
    row does not open."""
    first = await connected(http, api_key, user="u-1")
    second = await connected(http, api_key, user="u-2")
    remember_tokens(fake, secrets_seen)
    with vault.engine.begin() as conn:
        blobs = {r.id: r.credentials for r in conn.execute(select(VaultConnection))}
        assert blobs[first["id"]] != blobs[second["id"]]
        conn.execute(
            update(VaultConnection).where(VaultConnection.id == second["id"]).values(credentials=blobs[first["id"]])
        )
    response = await http.get(f"/vault/proxy/{second['id']}/me", headers=bearer(api_key))
    assert response.status_code == 500  # an altered row is a server fault, logged; never a token from another row
    assert "fake_" not in response.text


async def test_rotate_vault_keys_while_serving(
    http: httpx.AsyncClient, api_key: str, fake: Fake, vault: Vault, fd: Frontdesk, secrets_seen: set[str]
) -> None:
    """A new key is added to the key file; records are re-sealed in batches; a server that loaded only the old key
    picks the new one up the first time it meets it."""
    connections = [await connected(http, api_key, user=f"u-{n}") for n in range(5)]
    remember_tokens(fake, secrets_seen)
    old = vault.keys.active_id
    _prepend_key(fd.settings.home / "vault.keys")
    rotated = open_vault(fd)  # the operator's `frontdesk keys rotate-vault --new-key`
    assert rotated.keys.active_id != old
    assert rotated.rotate_keys(batch=2) == 5 + 1  # five connections and the integration's client secret
    assert {kid for kid, _ in _sealed(vault)} == {rotated.keys.active_id}
    with vault.engine.begin() as conn:
        assert conn.execute(select(VaultIntegration.key_id)).scalar_one() == rotated.keys.active_id
    # The serving vault (`vault`) still holds only the old key in memory, and reads the file again on a miss.
    fake.expire_access_tokens()
    for connection in connections:
        response = await http.get(f"/vault/proxy/{connection['id']}/me", headers=bearer(api_key))
        assert response.status_code == 200
    remember_tokens(fake, secrets_seen)
    assert rotated.rotate_keys() == 0


async def test_keys_from_the_environment_rotate_too(
    http: httpx.AsyncClient, api_key: str, fake: Fake, vault: Vault, fd: Frontdesk, secrets_seen: set[str]
) -> None:
    await connected(http, api_key)
    remember_tokens(fake, secrets_seen)
    old = (fd.settings.home / "vault.keys").read_text().strip()
    new = generate_key()
    remember(secrets_seen, new, old)
    settings = dataclasses.replace(fd.settings, vault_keys=f"{new},{old}")
    rotated = open_vault(dataclasses.replace(fd, settings=settings))
    assert rotated.rotate_keys() == 2
    only_new = open_vault(dataclasses.replace(fd, settings=dataclasses.replace(fd.settings, vault_keys=new)))
    assert only_new.keys.active_id == rotated.keys.active_id


async def test_no_vault_key_refuses_to_start_once_connections_exist(
    http: httpx.AsyncClient, api_key: str, fake: Fake, fd: Frontdesk, secrets_seen: set[str]
) -> None:
    await connected(http, api_key)
    remember_tokens(fake, secrets_seen)
    key_file: Path = fd.settings.home / "vault.keys"
    key_file.unlink()
    with pytest.raises(ConfigError, match="no vault key is configured"):
        open_frontdesk(fd.settings, run_migrations=False, ensure_keys=False)
    assert not key_file.exists()  # and no new key was quietly made in its place
    stranger = generate_key()
    remember(secrets_seen, stranger)
    with pytest.raises(ConfigError, match="does not hold"):
        open_frontdesk(dataclasses.replace(fd.settings, vault_keys=stranger), run_migrations=False, ensure_keys=False)


async def test_keepalive_refreshes_idle_connections_only(
    http: httpx.AsyncClient, api_key: str, fake: Fake, fd: Frontdesk, tmp_path: Path, secrets_seen: set[str]
) -> None:
    providers = tmp_path / "providers"
    fake.provider_file(providers, keepalive="86400")
    vault = reopen(fd)
    idle = await connected(http, api_key, user="idle")
    await connected(http, api_key, user="busy")
    with vault.engine.begin() as conn:
        conn.execute(
            update(VaultConnection)
            .where(VaultConnection.id == idle["id"])
            .values(refreshed_at=int(time.time()) - 90000)
        )
    assert vault.keepalive() == 1
    remember_tokens(fake, secrets_seen)
    assert fake.refresh_calls == 1
    assert vault.keepalive() == 0


async def test_a_dead_connection_is_announced_by_a_signed_webhook(
    http: httpx.AsyncClient, api_key: str, fake: Fake, fd: Frontdesk, secrets_seen: set[str]
) -> None:
    secret = "whsec_" + "s" * 32
    remember(secrets_seen, secret)
    fd.settings = dataclasses.replace(fd.settings, vault_webhook_url=fake.base + "/hook", vault_webhook_secret=secret)
    reopen(fd)
    connection = await connected(http, api_key)
    fake.revoke_everything()
    response = await http.get(f"/vault/proxy/{connection['id']}/me", headers=bearer(api_key))
    remember_tokens(fake, secrets_seen)
    assert response.status_code == 424
    deadline = time.monotonic() + 10
    while len(fake.hooks) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    events = {json.loads(body)["type"]: (body, signature) for body, signature in fake.hooks}
    assert set(events) == {"connection.created", "connection.needs_reauth"}
    body, signature = events["connection.needs_reauth"]
    stamp, mac = (part.split("=", 1)[1] for part in signature.split(","))
    assert hmac.compare_digest(mac, hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest())
    data = json.loads(body)["data"]
    assert data["id"] == connection["id"]
    assert data["status"] == "needs_reauth"
    assert "fake_" not in body.decode()
    assert CLIENT_SECRET not in body.decode()
