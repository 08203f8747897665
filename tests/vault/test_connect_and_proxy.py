"""The vault end to end against a provider on loopback: connect, call, expire, refresh, reconnect, delete — and
every way a connect link or a proxied call can go wrong."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from conftest import ISSUER
from frontdesk.storage import audit
from frontdesk.storage.schema import VaultConnection, VaultConnectSession
from frontdesk.vault.service import Vault

from .conftest import bearer, connect_link, connected, open_link, remember_tokens, reopen, through_provider
from .fake_provider import Fake

pytestmark = pytest.mark.usefixtures("vault")


async def test_connect_then_call_the_api_as_the_person(
    http: httpx.AsyncClient, api_key: str, fake: Fake, secrets_seen: set[str]
) -> None:
    """A person connects through the link; the platform then calls the provider's API without ever seeing a token."""
    connection = await connected(http, api_key)
    remember_tokens(fake, secrets_seen)
    assert connection["status"] == "active"
    assert connection["scopes"] == ["calendar.read"]
    assert connection["expires_at"] > time.time()
    assert not {"access_token", "refresh_token"} & set(json.dumps(connection).split('"'))

    response = await http.post(
        f"/vault/proxy/{connection['id']}/events?day=today",
        content=b'{"title": "lunch"}',
        headers={**bearer(api_key), "Content-Type": "application/json", "Cookie": "platform=1", "X-Trace": "t1"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["method"] == "POST"
    assert body["path"] == "/api/events"
    assert body["query"] == "day=today"
    assert body["body"] == '{"title": "lunch"}'
    # The provider echoed the credential back: the vault strips it from body and headers, and drops its cookies.
    assert body["echo"] == "Bearer [redacted]"
    assert response.headers["x-echo"] == "Bearer [redacted]"
    assert "set-cookie" not in response.headers
    sent = fake.api_calls[-1]["headers"]
    assert "cookie" not in sent  # the platform's own headers do not travel to the provider…
    assert sent["x-trace"] == "t1"  # …except vendor headers
    assert sent["authorization"].startswith("Bearer fake_at_")


async def test_an_expired_token_is_refreshed_before_the_call(
    http: httpx.AsyncClient, api_key: str, fake: Fake, vault: Vault, secrets_seen: set[str]
) -> None:
    """Ahead of expiry the vault refreshes, stores the rotated refresh token, and the call goes through."""
    connection = await connected(http, api_key)
    with vault.engine.begin() as conn:
        # An hour's token with 5 s left: inside the refresh margin (and the lifetime, expires_at - refreshed_at,
        # still an hour: the margin is capped at half of it).
        at = int(time.time())
        conn.execute(update(VaultConnection).values(expires_at=at + 5, refreshed_at=at + 5 - 3600))
    fake.expire_access_tokens()
    response = await http.get(f"/vault/proxy/{connection['id']}/me", headers=bearer(api_key))
    remember_tokens(fake, secrets_seen)
    assert response.status_code == 200, response.text
    assert fake.refresh_calls == 1
    events = [e.event for e in audit.tail(vault.engine)]
    assert "vault.connection.refreshed" in events
    # The rotated refresh token was kept: a second forced refresh works (the old one is dead at the provider).
    fake.expire_access_tokens()
    again = await http.get(f"/vault/proxy/{connection['id']}/me", headers=bearer(api_key))
    remember_tokens(fake, secrets_seen)
    assert again.status_code == 200
    assert fake.refresh_calls == 2
    assert fake.dead_refreshes == 0


async def test_a_401_from_the_provider_refreshes_and_retries_once(
    http: httpx.AsyncClient, api_key: str, fake: Fake, secrets_seen: set[str]
) -> None:
    """A token the provider stopped honouring early (expires_at still in the future) is refreshed on 401."""
    connection = await connected(http, api_key)
    fake.expire_access_tokens()
    response = await http.get(f"/vault/proxy/{connection['id']}/me", headers=bearer(api_key))
    remember_tokens(fake, secrets_seen)
    assert response.status_code == 200
    assert fake.refresh_calls == 1
    assert [c["path"] for c in fake.api_calls[-2:]] == ["/api/me", "/api/me"]


async def test_a_grant_revoked_at_the_provider_asks_the_person_to_reconnect(
    http: httpx.AsyncClient, api_key: str, fake: Fake, vault: Vault, secrets_seen: set[str]
) -> None:
    """invalid_grant → needs_reauth, audited, and the proxy answers 424 with a fresh connect link in plain words."""
    connection = await connected(http, api_key)
    remember_tokens(fake, secrets_seen)
    fake.revoke_everything()
    response = await http.get(f"/vault/proxy/{connection['id']}/me", headers=bearer(api_key))
    assert response.status_code == 424
    body = response.json()
    assert body["status"] == "authorization_required"
    assert body["reason"] == "needs_reauth"
    assert body["integration"] == "cal"
    assert body["authorization_url"].startswith(ISSUER + "/vault/connect/fd_vc_")
    assert "Fake Calendar" in body["message"]
    assert "Reconnect" in body["message"]
    listing = await http.get("/vault/connections", params={"user": "u-123"}, headers=bearer(api_key))
    assert listing.json()["connections"][0]["status"] == "needs_reauth"
    assert any(e.event == "vault.connection.needs_reauth" for e in audit.tail(vault.engine))
    # Reconnecting through the new link updates the same connection in place.
    done = await through_provider(http, body["authorization_url"])
    assert done.status_code == 200
    remember_tokens(fake, secrets_seen)
    listing = await http.get("/vault/connections", params={"user": "u-123"}, headers=bearer(api_key))
    (again,) = listing.json()["connections"]
    assert again["id"] == connection["id"]
    assert again["status"] == "active"
    assert (await http.get(f"/vault/proxy/{connection['id']}/me", headers=bearer(api_key))).status_code == 200


async def test_a_provider_outage_keeps_the_connection_and_backs_off(
    http: httpx.AsyncClient, api_key: str, fake: Fake, vault: Vault, secrets_seen: set[str]
) -> None:
    """5xx from the token endpoint: 503 with Retry-After, the connection stays active, and no retry storm."""
    connection = await connected(http, api_key)
    remember_tokens(fake, secrets_seen)
    with vault.engine.begin() as conn:
        conn.execute(update(VaultConnection).values(expires_at=int(time.time()) - 1))
    fake.down = True
    first = await http.get(f"/vault/proxy/{connection['id']}/me", headers=bearer(api_key))
    assert first.status_code == 503
    assert int(first.headers["retry-after"]) > 0
    second = await http.get(f"/vault/proxy/{connection['id']}/me", headers=bearer(api_key))
    assert second.status_code == 503
    assert fake.refresh_calls == 0  # the endpoint answered 503 before counting; the second call did not even try
    with vault.engine.begin() as conn:
        row = conn.execute(select(VaultConnection)).one()
    assert row.status == "active"
    assert row.failures == 1
    assert row.retry_at is not None


async def test_missing_connection_answers_authorization_required(http: httpx.AsyncClient, api_key: str) -> None:
    """A tool asking before the person connected gets the structured answer with a link, not an error string."""
    response = await http.post(
        "/vault/check",
        json={"user": "u-9", "integration": "cal", "scopes": ["calendar.write"]},
        headers=bearer(api_key),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "authorization_required"
    assert body["reason"] == "not_connected"
    assert body["message"] == "I need access to changes to your Fake Calendar to do that. Connect it here."
    assert "calendar.write" in body["scopes"]


async def test_missing_scopes_ask_for_granted_plus_needed(
    http: httpx.AsyncClient, api_key: str, fake: Fake, secrets_seen: set[str]
) -> None:
    """Incremental authorization: the new link asks for what was granted and what is needed now."""
    await connected(http, api_key)
    remember_tokens(fake, secrets_seen)
    ok = await http.post(
        "/vault/check",
        json={"user": "u-123", "integration": "cal", "scopes": ["calendar.read"]},
        headers=bearer(api_key),
    )
    assert ok.json()["status"] == "connected"
    more = await http.post(
        "/vault/check",
        json={"user": "u-123", "integration": "cal", "scopes": ["calendar.write"]},
        headers=bearer(api_key),
    )
    body = more.json()
    assert body["reason"] == "missing_scopes"
    assert set(body["scopes"]) == {"calendar.read", "calendar.write"}
    done = await through_provider(http, body["authorization_url"])
    assert done.status_code == 200
    remember_tokens(fake, secrets_seen)
    asked = fake.codes or {}
    assert not asked  # the code was used
    listing = await http.get("/vault/connections", params={"user": "u-123"}, headers=bearer(api_key))
    assert set(listing.json()["connections"][0]["scopes"]) == {"calendar.read", "calendar.write"}


async def test_delete_revokes_at_the_provider_and_forgets(
    http: httpx.AsyncClient, api_key: str, fake: Fake, vault: Vault, secrets_seen: set[str]
) -> None:
    connection = await connected(http, api_key)
    remember_tokens(fake, secrets_seen)
    response = await http.delete(f"/vault/connections/{connection['id']}", headers=bearer(api_key))
    assert response.status_code == 200
    assert response.json() == {"deleted": True, "revoked_at_provider": True}
    assert fake.revoked
    assert fake.revoked[0].startswith("fake_rt_")
    assert (await http.get(f"/vault/connections/{connection['id']}", headers=bearer(api_key))).status_code == 404
    assert (await http.get(f"/vault/proxy/{connection['id']}/me", headers=bearer(api_key))).status_code == 404


async def test_export_is_admin_only_and_audited(
    http: httpx.AsyncClient, api_key: str, export_key: str, fake: Fake, vault: Vault, secrets_seen: set[str]
) -> None:
    connection = await connected(http, api_key)
    remember_tokens(fake, secrets_seen)
    refused = await http.get(f"/vault/connections/{connection['id']}/credentials", headers=bearer(api_key))
    assert refused.status_code == 403
    exported = await http.get(f"/vault/connections/{connection['id']}/credentials", headers=bearer(export_key))
    assert exported.status_code == 200
    assert exported.json()["access_token"] in fake.access
    assert any(e.event == "vault.connection.exported" for e in audit.tail(vault.engine))


# --- the connect link and the callback ------------------------------------------------------------------------


async def test_a_replayed_callback_stores_nothing(
    http: httpx.AsyncClient, api_key: str, fake: Fake, vault: Vault, secrets_seen: set[str]
) -> None:
    link = await connect_link(http, api_key)
    opened = await open_link(http, link["connect_url"])
    async with httpx.AsyncClient() as outside:
        back = (await outside.get(opened.headers["location"])).headers["location"].removeprefix(ISSUER)
    assert (await http.get(back)).status_code == 200
    remember_tokens(fake, secrets_seen)
    replay = await http.get(back)
    assert replay.status_code == 400
    assert "already been used" in replay.text


async def test_an_expired_link_shows_a_clear_page(http: httpx.AsyncClient, api_key: str, vault: Vault) -> None:
    link = await connect_link(http, api_key)
    with vault.engine.begin() as conn:
        conn.execute(update(VaultConnectSession).values(expires_at=int(time.time()) - 1))
    response = await http.get(link["connect_url"].removeprefix(ISSUER))
    assert response.status_code == 410
    assert "expired" in response.text
    with vault.engine.begin() as conn:
        assert conn.execute(select(VaultConnection)).first() is None


async def test_an_expired_state_at_the_callback_stores_nothing(
    http: httpx.AsyncClient, api_key: str, vault: Vault
) -> None:
    link = await connect_link(http, api_key)
    opened = await open_link(http, link["connect_url"])
    async with httpx.AsyncClient() as outside:
        back = (await outside.get(opened.headers["location"])).headers["location"].removeprefix(ISSUER)
    with vault.engine.begin() as conn:
        conn.execute(update(VaultConnectSession).values(expires_at=int(time.time()) - 1))
    response = await http.get(back)
    assert response.status_code == 400
    assert "expired" in response.text
    with vault.engine.begin() as conn:
        assert conn.execute(select(VaultConnection)).first() is None


async def test_a_link_opened_twice_works_once(http: httpx.AsyncClient, api_key: str) -> None:
    link = await connect_link(http, api_key)
    assert (await open_link(http, link["connect_url"])).status_code == 303
    again = await http.get(link["connect_url"].removeprefix(ISSUER))
    assert again.status_code == 410
    assert "already been used" in again.text


async def test_a_callback_in_another_browser_is_refused(http: httpx.AsyncClient, api_key: str, fd: Any) -> None:
    """A forwarded link cannot attach someone's account to the user who started it: the browser must match."""
    link = await connect_link(http, api_key)
    opened = await open_link(http, link["connect_url"])
    async with httpx.AsyncClient() as outside:
        back = (await outside.get(opened.headers["location"])).headers["location"].removeprefix(ISSUER)
    http.cookies.clear()
    response = await http.get(back)
    assert response.status_code == 400
    assert "another browser" in response.text


async def test_the_person_saying_no_stores_nothing(http: httpx.AsyncClient, api_key: str, vault: Vault) -> None:
    link = await connect_link(http, api_key)
    opened = await open_link(http, link["connect_url"])
    state = httpx.URL(opened.headers["location"]).params["state"]
    response = await http.get("/vault/callback", params={"error": "access_denied", "state": state})
    assert response.status_code == 400
    assert "did not give access" in response.text
    with vault.engine.begin() as conn:
        assert conn.execute(select(VaultConnection)).first() is None


async def test_unknown_state_is_a_page_not_a_500(http: httpx.AsyncClient) -> None:
    for params in ({}, {"state": "nope", "code": "x"}, {"state": "fd_vs_" + "a" * 43}):
        response = await http.get("/vault/callback", params=params)
        assert response.status_code == 400
        assert "not valid" in response.text


# --- the API's own checks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic Zm9vOmJhcg=="}, {"Authorization": "Bearer "}],
)
async def test_the_api_wants_an_api_key(http: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await http.get("/vault/connections", params={"user": "u"}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_revoked_api_key_is_refused(http: httpx.AsyncClient, api_key: str, vault: Vault) -> None:
    from frontdesk.vault import api_key_store

    (record,) = api_key_store.api_keys(vault.engine)
    api_key_store.revoke_api_key(vault.engine, record.id)
    response = await http.get("/vault/connections", params={"user": "u"}, headers=bearer(api_key))
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"not json", "application/json"),
        (b"[]", "application/json"),
        (b'{"user": "u"}', "application/json"),
        (b'{"user": "", "integration": "cal"}', "application/json"),
        (b'{"user": "u", "integration": "nope"}', "application/json"),
        (b'{"user": "u", "integration": "cal", "scopes": "calendar.read"}', "application/json"),
        (b'{"user": "u", "integration": "cal", "params": {"shop": "x"}}', "application/json"),
        (b'{"user": "u", "integration": "cal", "return_url": "javascript:alert(1)"}', "application/json"),
        (b"user=u&integration=cal", "application/x-www-form-urlencoded"),
    ],
)
async def test_bad_connect_session_requests_are_400(
    http: httpx.AsyncClient, api_key: str, vault: Vault, body: bytes, content_type: str
) -> None:
    response = await http.post(
        "/vault/connect-sessions", content=body, headers={**bearer(api_key), "Content-Type": content_type}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    with vault.engine.begin() as conn:
        assert conn.execute(select(VaultConnectSession)).first() is None


@pytest.mark.parametrize(
    "path",
    ["../token", "a/../../token", "//evil.example/x", "http://evil.example/x", "..%2f..%2ftoken", "a\\b"],
)
async def test_the_proxy_stays_on_the_providers_api_hosts(
    http: httpx.AsyncClient, api_key: str, fake: Fake, secrets_seen: set[str], path: str
) -> None:
    """No SSRF: a path that would leave the provider's API base is refused before any request is made."""
    connection = await connected(http, api_key)
    remember_tokens(fake, secrets_seen)
    before = len(fake.api_calls)
    response = await http.get(f"/vault/proxy/{connection['id']}/{path}", headers=bearer(api_key))
    assert response.status_code in (400, 404), response.text
    assert len(fake.api_calls) == before


async def check(http: httpx.AsyncClient, key: str, user: str, scope: str) -> httpx.Response:
    body = {"user": user, "integration": "cal", "scopes": [scope]}
    return await http.post("/vault/check", json=body, headers=bearer(key))


def _audit_detail(vault: Vault, event: str) -> list[dict[str, Any]]:
    return [e.detail for e in audit.tail(vault.engine, 200) if e.event == event]


async def test_every_proxied_call_is_audited_without_its_query(
    http: httpx.AsyncClient, api_key: str, fake: Fake, vault: Vault, secrets_seen: set[str]
) -> None:
    connection = await connected(http, api_key)
    remember_tokens(fake, secrets_seen)
    await http.get(f"/vault/proxy/{connection['id']}/me?secret=1", headers=bearer(api_key))
    (detail,) = _audit_detail(vault, "vault.proxy")
    assert detail["path"] == "/api/me"
    assert detail["status"] == 200
    assert "secret" not in json.dumps(detail)


async def test_an_answer_larger_than_the_proxy_holds_is_a_502(
    http: httpx.AsyncClient, api_key: str, fake: Fake, fd: Any, secrets_seen: set[str]
) -> None:
    """The proxy holds an answer whole to strip the credential from it, so it holds at most max_proxy_body."""
    import dataclasses

    connection = await connected(http, api_key)
    remember_tokens(fake, secrets_seen)
    fd.settings = dataclasses.replace(fd.settings, max_proxy_body=64)
    reopen(fd)
    response = await http.get(f"/vault/proxy/{connection['id']}/me", headers=bearer(api_key))
    assert response.status_code == 502
    assert response.json()["error"] == "bad_gateway"
