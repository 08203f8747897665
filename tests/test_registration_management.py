"""Client configuration management (RFC 7592) at ``/register/{client_id}``, over HTTP on both databases: read,
replace and delete with the registration access token; every refusal a 401 that never tells whether a client
exists; the grants of a deleted client end with it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text

from conftest import ISSUER, Browser, Registered, code_for
from frontdesk.storage import audit
from test_registration_dynamic import iat, register

WEB = "https://app.example/cb"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def registered(http: httpx.AsyncClient, secrets_seen: set[str]) -> dict[str, Any]:
    """A self-registered confidential web client, as /register answered it."""
    response = await register(
        http,
        secrets_seen,
        client_name="Notes",
        redirect_uris=[WEB],
        logo_uri="https://app.example/logo.png",
        scope="openid profile",
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def update_of(client: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The body of an RFC 7592 §2.2 update: the client's metadata without what the server issued."""
    issued = ("registration_access_token", "registration_client_uri", "client_secret_expires_at", "client_id_issued_at")
    body = {k: v for k, v in client.items() if k not in issued and k != "client_secret"}
    return {**body, **changes}


async def test_AG_DCR_05_the_client_reads_its_configuration(http, registered):
    response = await http.get(
        registered["registration_client_uri"], headers=bearer(registered["registration_access_token"])
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["client_id"] == registered["client_id"]
    assert body["logo_uri"] == "https://app.example/logo.png"
    assert body["registration_client_uri"] == f"{ISSUER}/register/{registered['client_id']}"
    assert "client_secret" not in body  # never shown again


async def test_AG_DCR_06_without_a_token_the_answer_is_a_bare_challenge(http, registered):
    response = await http.get(registered["registration_client_uri"])
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert response.headers["www-authenticate"] == 'Bearer realm="frontdesk"'


async def test_AG_DCR_06_a_wrong_token_or_another_clients_token_is_401(http, registered, secrets_seen):
    other = (await register(http, secrets_seen, client_name="Other", redirect_uris=[WEB])).json()
    uri = registered["registration_client_uri"]
    for token in ("fd_rat_wrong-wrong-wrong", other["registration_access_token"], registered["client_secret"]):
        for method in ("GET", "DELETE"):
            response = await http.request(method, uri, headers=bearer(token))
            assert response.status_code == 401, (method, response.text)
            assert response.json()["error"] == "invalid_token"
            assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_AG_DCR_06_a_token_for_an_unknown_client_is_401_and_revoked(http, registered):
    """RFC 7592 §2: the same 401 as a wrong token, and the token presented stops working."""
    token = registered["registration_access_token"]
    response = await http.get(f"{ISSUER}/register/no-such-client", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert (await http.get(registered["registration_client_uri"], headers=bearer(token))).status_code == 401


async def test_an_operator_registered_client_is_not_managed_here(http, confidential: Registered):
    response = await http.get(f"{ISSUER}/register/{confidential.client_id}", headers=bearer(confidential.secret or ""))
    assert response.status_code == 401


async def test_AG_DCR_06_an_unsupported_method_is_405(http, registered):
    response = await http.post(
        registered["registration_client_uri"], headers=bearer(registered["registration_access_token"])
    )
    assert response.status_code == 405


async def test_AG_DCR_05_an_update_replaces_the_metadata(http, fd, registered):
    """RFC 7592 §2.2: what the update leaves out is gone (or back to its default)."""
    body = update_of(registered, client_name="Notes 2", redirect_uris=[WEB, "https://app.example/cb2"])
    del body["logo_uri"]
    response = await http.put(
        registered["registration_client_uri"], json=body, headers=bearer(registered["registration_access_token"])
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["client_name"] == "Notes 2"
    assert updated["redirect_uris"] == [WEB, "https://app.example/cb2"]
    assert "logo_uri" not in updated
    assert "client_secret" not in updated
    client = fd.clients.get(registered["client_id"])  # the cached copy was dropped
    assert client is not None
    assert client.name == "Notes 2"
    assert client.registered_by == "self"
    event = next(e for e in audit.tail(fd.engine) if e.event == "client.updated")
    assert event.client_id == registered["client_id"]


async def test_an_update_keeps_the_secret(http, fd, registered):
    """RFC 7592 §2.2: the secret is not rotated by an update; the current one may be repeated."""
    before = fd.clients.get(registered["client_id"], cached=False)
    response = await http.put(
        registered["registration_client_uri"],
        json=update_of(registered, client_secret=registered["client_secret"]),
        headers=bearer(registered["registration_access_token"]),
    )
    assert response.status_code == 200, response.text
    after = fd.clients.get(registered["client_id"], cached=False)
    assert before is not None
    assert after is not None
    assert after.secret_digest == before.secret_digest
    # The secret still authenticates: a bad code is invalid_grant, not invalid_client.
    token = await http.post(
        "/token",
        data={"grant_type": "authorization_code", "code": "fd_ac_nothing", "code_verifier": "v" * 43},
        auth=(registered["client_id"], registered["client_secret"]),
    )
    assert token.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"client_id": "someone-else"}, "client_id"),
        ({"client_secret": "mine-mine-mine-mine"}, "client_secret"),
        ({"registration_access_token": "x"}, "registration_access_token"),
        ({"client_id_issued_at": 1}, "client_id_issued_at"),
        ({"token_endpoint_auth_method": "none"}, "token_endpoint_auth_method"),
        ({"grant_types": ["authorization_code", "client_credentials"]}, "client_credentials"),
        ({"redirect_uris": ["http://app.example/cb"]}, "http://app.example/cb"),
    ],
)
async def test_AG_DCR_05_an_update_is_judged_like_a_registration(http, registered, changes, field):
    body = update_of(registered, **changes)
    response = await http.put(
        registered["registration_client_uri"], json=body, headers=bearer(registered["registration_access_token"])
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] in ("invalid_client_metadata", "invalid_redirect_uri")
    assert field in response.json()["error_description"]


async def test_AG_DCR_06_a_wrong_token_is_401_even_with_a_bad_update_body(http, registered):
    response = await http.put(
        registered["registration_client_uri"], content=b"{not json", headers=bearer("fd_rat_wrong-wrong-wrong")
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


async def test_an_update_without_client_id_is_refused(http, registered):
    body = update_of(registered)
    del body["client_id"]
    response = await http.put(
        registered["registration_client_uri"], json=body, headers=bearer(registered["registration_access_token"])
    )
    assert response.status_code == 400
    assert "client_id" in response.json()["error_description"]


async def test_an_update_keeps_what_the_initial_access_token_allowed(http, fd, secrets_seen):
    """A client registered with client_credentials by an initial access token may keep it when updated."""
    service = {"client_name": "Batch", "grant_types": ["client_credentials"], "response_types": []}
    body = (await register(http, secrets_seen, iat(fd, secrets_seen), **service)).json()
    response = await http.put(
        body["registration_client_uri"],
        json=update_of(body, client_name="Batch v2"),
        headers=bearer(body["registration_access_token"]),
    )
    assert response.status_code == 200, response.text
    token = await http.post(
        "/token", data={"grant_type": "client_credentials"}, auth=(body["client_id"], body["client_secret"])
    )
    assert token.status_code == 200, token.text


async def test_AG_DCR_05_delete_ends_the_client_and_its_grants(http, fd, browser: Browser, secrets_seen):
    """RFC 7592 §2.3: 204; the client, its configuration endpoint and its tokens stop working."""
    body = (
        await register(
            http,
            secrets_seen,
            client_name="Agent",
            redirect_uris=[WEB],
            token_endpoint_auth_method="none",
            scope="openid profile offline_access",
        )
    ).json()
    client = Registered(body["client_id"], None, WEB)
    code, verifier = await code_for(browser, client, scope="openid profile offline_access")
    tokens = (
        await http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": WEB,
                "client_id": client.client_id,
                "code_verifier": verifier,
            },
        )
    ).json()
    deleted = await http.delete(body["registration_client_uri"], headers=bearer(body["registration_access_token"]))
    assert deleted.status_code == 204
    assert fd.clients.get(client.client_id, cached=False) is None
    again = await http.get(body["registration_client_uri"], headers=bearer(body["registration_access_token"]))
    assert again.status_code == 401
    refreshed = await http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": client.client_id},
    )
    assert refreshed.status_code in (400, 401)
    assert refreshed.json()["error"] in ("invalid_grant", "invalid_client")
    userinfo = await http.get("/userinfo", headers=bearer(tokens["access_token"]))
    assert userinfo.status_code == 401
    with fd.engine.connect() as conn:
        live = conn.execute(
            text("SELECT COUNT(*) FROM grants WHERE client_id = :c AND revoked_at IS NULL"), {"c": client.client_id}
        ).scalar()
    assert live == 0
    event = next(e for e in audit.tail(fd.engine) if e.event == "client.deleted")
    assert event.client_id == client.client_id
    assert event.detail["registered_by"] == "self"
