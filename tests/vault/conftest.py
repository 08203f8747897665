"""Vault fixtures: a fake provider on loopback, its catalog file, an integration, an API key, and the connect flow
driven the way a person's browser drives it."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import ISSUER, csrf_of, remember
from frontdesk.core import Frontdesk
from frontdesk.vault import api_key_store
from frontdesk.vault.service import Vault, open_vault

from .fake_provider import CLIENT_ID, CLIENT_SECRET, Fake, running


def reopen(fd: Frontdesk) -> Vault:
    """Open the vault again (after its settings or provider files changed), closing the old one's connections."""
    if fd.vault is not None:
        fd.vault.close()
    vault = fd.vault = open_vault(fd)
    return vault


@pytest.fixture
def fake_options() -> dict[str, Any]:
    """Override in a test module (or parametrize indirectly) to give the fake provider its quirks."""
    return {}


@pytest.fixture
def fake_class() -> type[Fake]:
    """Override in a test module to play the provider with a subclass of the fake."""
    return Fake


@pytest.fixture
def fake(fake_class: type[Fake], fake_options: dict[str, Any]) -> Iterator[Fake]:
    with running(fake_class(**fake_options)) as provider:
        yield provider


@pytest.fixture
def provider_file_options() -> dict[str, str]:
    """Override in a test module for more keys in the fake's catalog file (raw TOML values)."""
    return {}


@pytest.fixture
def vault(
    fd: Frontdesk, fake: Fake, provider_file_options: dict[str, str], tmp_path: Any, secrets_seen: set[str]
) -> Vault:
    """The vault of ``fd``, with the fake provider in the operator's catalog directory and an integration for it."""
    providers = tmp_path / "providers"
    fake.provider_file(providers, **provider_file_options)
    fd.settings = dataclasses.replace(fd.settings, vault_providers_dir=str(providers))
    vault = reopen(fd)
    vault.add_integration("cal", "fake", CLIENT_ID, CLIENT_SECRET, ["calendar.read"])
    remember(secrets_seen, CLIENT_SECRET)
    return vault


@pytest.fixture
def api_key(vault: Vault, secrets_seen: set[str]) -> str:
    _, key = api_key_store.create_api_key(vault.engine, "platform backend")
    remember(secrets_seen, key.value)
    return key.value


@pytest.fixture
def export_key(vault: Vault, secrets_seen: set[str]) -> str:
    _, key = api_key_store.create_api_key(vault.engine, "admin", export=True)
    remember(secrets_seen, key.value)
    return key.value


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def connect_link(http: httpx.AsyncClient, key: str, user: str = "u-123", **extra: Any) -> dict[str, Any]:
    body = {"user": user, "integration": "cal", **extra}
    response = await http.post("/vault/connect-sessions", json=body, headers=bearer(key))
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    assert data["connect_url"].startswith(ISSUER + "/vault/connect/fd_vc_")
    return data


async def open_link(http: httpx.AsyncClient, connect_url: str) -> httpx.Response:
    """Open the link and continue on its page, as a person does: the answer is the redirect to the provider."""
    shown = await http.get(connect_url.removeprefix(ISSUER))
    assert shown.status_code == 200, shown.text
    action = re.search(r'<form method="post" action="([^"]+)"', shown.text)
    assert action, shown.text
    return await http.post(action.group(1), data={"csrf": csrf_of(shown.text)})


async def through_provider(http: httpx.AsyncClient, connect_url: str) -> httpx.Response:
    """Open the link (this browser is bound), pass the provider's consent, and land on the callback."""
    opened = await open_link(http, connect_url)
    assert opened.status_code == 303, opened.text
    async with httpx.AsyncClient() as outside:
        at_provider = await outside.get(opened.headers["location"])
    assert at_provider.status_code == 302, at_provider.text
    back = at_provider.headers["location"]
    assert back.startswith(ISSUER + "/vault/callback?")
    return await http.get(back.removeprefix(ISSUER))


async def connected(http: httpx.AsyncClient, key: str, user: str = "u-123", **extra: Any) -> dict[str, Any]:
    link = await connect_link(http, key, user, **extra)
    done = await through_provider(http, link["connect_url"])
    assert done.status_code == 200, done.text
    listing = await http.get("/vault/connections", params={"user": user}, headers=bearer(key))
    assert listing.status_code == 200
    found: dict[str, Any] = listing.json()["connections"][0]
    return found


def remember_tokens(fake: Fake, seen: set[str]) -> None:
    """Every token the fake provider handed out is a secret the vault must never store or log in the clear."""
    remember(seen, *fake.access, *fake.refresh)
