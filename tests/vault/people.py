"""People with vault connections at a real provider, and their tokens for the vault (issue 14 item 2): what
tests/vault/test_person_tokens.py and tests/test_account_connections.py share.

node-oidc-provider plays the provider (tests/peers); frontdesk is the in-process app of the ``http`` fixture. A
person connects through the real connect link and the provider's real pages; an agent gets the person's token for
the vault through /authorize and /token as any client does.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

import httpx

from conftest import ISSUER, Browser, Registered, basic, code_for, csrf_of, remember
from frontdesk.core import Frontdesk
from frontdesk.oauth.registration import register
from frontdesk.vault import api_key_store
from frontdesk.vault.service import Vault, vault_of
from peers.oidc_provider import Op, OpAccount, OpClient, sign_in_and_consent

VAULT = ISSUER + "/vault"
OP_CLIENT = OpClient("frontdesk-vault", "op-client-secret-" + secrets.token_urlsafe(24), [VAULT + "/callback"])
ALICE_AT_OP = OpAccount("alice-op", "alice@op.example", "alice at the provider " + secrets.token_urlsafe(8))
BOB_AT_OP = OpAccount("bob-op", "bob@op.example", "bob at the provider " + secrets.token_urlsafe(8))
PASSWORD = "correct horse battery staple"
INTEGRATIONS = ("calendar", "mail")


@dataclass
class World:
    """Two frontdesk people, two integrations at the provider, the platform's API key and an agent's client."""

    fd: Frontdesk
    vault: Vault
    op: Op
    api_key: str
    agent: Registered
    alice: str  # frontdesk ids
    bob: str


def world(fd: Frontdesk, op: Op, seen: set[str]) -> World:
    vault = vault_of(fd)
    discovery = op.url("/.well-known/openid-configuration")
    for name in INTEGRATIONS:
        params = {"discovery_url": discovery, "api_base_url": op.url("/api")}
        vault.add_integration(name, "oidc", OP_CLIENT.client_id, OP_CLIENT.client_secret, None, params)
    _, key = api_key_store.create_api_key(fd.engine, "chat backend")
    client, secret = register(
        fd,
        name="Trip Planner",
        client_id="trip-planner",
        redirect_uris=["https://agent.example/cb"],
        grant_types=["authorization_code", "refresh_token", "client_credentials"],
        scope="openid vault:calendar vault:mail",
    )
    alice = fd.users.create("alice", PASSWORD, email="alice@example.com", name="Alice Example")
    bob = fd.users.create("bob", PASSWORD, email="bob@example.com", name="Bob Example")
    remember(seen, OP_CLIENT.client_secret, key.value, secret, PASSWORD, ALICE_AT_OP.password, BOB_AT_OP.password)
    agent = Registered(client.client_id, secret, "https://agent.example/cb")
    return World(fd, vault, op, key.value, agent, alice.id, bob.id)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def connect(
    http: httpx.AsyncClient, w: World, integration: str, user: str, at_op: OpAccount, **extra: Any
) -> str:
    """Connect ``at_op``'s account at the provider for the platform's ``user``, through the connect link (opened in
    ``http``'s browser, signed in when the link is bound to a person) and the provider's pages; the connection id."""
    made = await http.post(
        "/vault/connect-sessions", json={"user": user, "integration": integration, **extra}, headers=bearer(w.api_key)
    )
    assert made.status_code == 201, made.text
    page = await http.get(made.json()["connect_url"].removeprefix(ISSUER))
    assert page.status_code == 200, page.text
    action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert action, page.text
    opened = await http.post(action.group(1), data={"csrf": csrf_of(page.text)})
    assert opened.status_code == 303, opened.text
    back = sign_in_and_consent(opened.headers["location"], at_op.id, at_op.password)
    assert back.startswith(VAULT + "/callback?"), back
    done = await http.get(back.removeprefix(ISSUER))
    assert done.status_code == 200, done.text
    listed = await http.get(
        "/vault/connections", params={"user": user, "integration": integration}, headers=bearer(w.api_key)
    )
    [connection] = listed.json()["connections"]
    return str(connection["id"])


async def signed_in(http: httpx.AsyncClient, username: str) -> Browser:
    """``http``'s browser, signed out of anyone else, ready to sign in as ``username``."""
    http.cookies.clear()
    return Browser(http, username, PASSWORD)


async def token_for(
    http: httpx.AsyncClient, w: World, username: str, scope: str = "vault:calendar", resource: str | None = VAULT
) -> str:
    """The agent's access token for ``username`` (who signs in and consents), addressed to ``resource``."""
    browser = await signed_in(http, username)
    extra = {"resource": resource} if resource else {}
    code, verifier = await code_for(browser, w.agent, scope=scope, **extra)
    answer = await http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": w.agent.redirect_uri,
            "code_verifier": verifier,
        },
        auth=basic(w.agent),
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])
