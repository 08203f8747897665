"""The admin API's scopes, resources, signing keys, sign-in providers and vault on SQLite and PostgreSQL
(admin/catalog.py, admin/upstreams.py, admin/vault.py), each change audited naming the token."""

from __future__ import annotations

from urllib.parse import quote

from conftest import Registered, remember
from frontdesk.core import Frontdesk
from frontdesk.storage.db import transaction
from frontdesk.vault.service import vault_of
from frontdesk.vault.store import Credentials, save_connection

from .admin_api import Api, events


async def test_scopes_are_listed_and_defined(operator: Api, auditor: Api):
    made = await operator.post("/scopes", {"name": "orders:read", "description": "See your orders"})
    assert made.status_code == 201
    assert made.json()["scope"] == {"name": "orders:read", "description": "See your orders", "built_in": False}
    names = {s["name"]: s["built_in"] for s in (await auditor.get("/scopes")).json()["items"]}
    assert names["orders:read"] is False
    assert names["openid"] is True
    assert (await operator.post("/scopes", {"name": "orders:read", "description": "again"})).status_code == 409
    assert (await operator.post("/scopes", {"name": "openid", "description": "mine"})).status_code == 422
    assert (await operator.post("/scopes", {"name": "x"})).status_code == 422


async def test_a_scope_is_described_anew_and_deleted_once_nothing_holds_it(
    operator: Api, auditor: Api, fd: Frontdesk, confidential: Registered
):
    assert (await operator.post("/scopes", {"name": "orders_%x", "description": "See your orders"})).status_code == 201
    changed = await operator.patch("/scopes/orders_%25x", {"description": "See and cancel your orders"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["scope"]["description"] == "See and cancel your orders"
    assert fd.scopes()["orders_%x"] == "See and cancel your orders"  # this process's registry is fresh at once
    assert (await auditor.patch("/scopes/orders_%25x", {"description": "mine"})).status_code == 403
    assert (await operator.patch("/scopes/orders_%25x", {"description": " "})).status_code == 422
    assert (await operator.patch("/scopes/openid", {"description": "mine"})).status_code == 409
    assert (await operator.patch("/scopes/nothing", {"description": "mine"})).status_code == 404
    # Held by a client (as a whole word of its scope): refused, naming the holder; free again once it is taken away.
    client = f"/clients/{confidential.client_id}"
    before = (await operator.get(client)).json()["client"]["scope"]
    patched = await operator.patch(client, {"scope": before + " orders_%x"})
    assert patched.status_code == 200, patched.text
    refused = await operator.delete("/scopes/orders_%25x")
    assert refused.status_code == 409
    assert confidential.client_id in refused.json()["error_description"]
    assert (await operator.patch(client, {"scope": before})).status_code == 200
    assert (await operator.delete("/scopes/orders_%25x")).status_code == 204
    assert "orders_%x" not in fd.scopes()
    assert (await operator.delete("/scopes/orders_%25x")).status_code == 404
    assert (await operator.delete("/scopes/openid")).status_code == 409
    assert [e.detail["scope"] for e in events(fd, "admin.scope.")] == ["orders_%x", "orders_%x", "orders_%x"]


async def test_resources_are_named_by_their_uri_in_the_path(operator: Api, fd: Frontdesk):
    uri = "https://api.example/orders"
    made = await operator.post("/resources", {"uri": uri, "name": "Orders", "scope": "orders:read orders:write"})
    assert made.status_code == 201, made.text
    assert made.json()["created_scopes"] == ["orders:read", "orders:write"]
    path = "/resources/" + quote(uri, safe="")
    assert (await operator.get(path)).json()["resource"]["name"] == "Orders"
    changed = await operator.patch(path, {"require_dpop": True})
    assert changed.json()["resource"]["require_dpop"] is True
    assert (await operator.post("/resources", {"uri": uri, "name": "Again"})).status_code == 409
    assert (await operator.delete(path)).status_code == 204
    assert (await operator.get(path)).status_code == 404
    assert [e.detail["resource"] for e in events(fd, "admin.resource.")] == [uri, uri, uri]


async def test_signing_keys_rotate(operator: Api, auditor: Api, fd: Frontdesk):
    fd.keys.ensure()
    before = {k["kid"]: k["state"] for k in (await auditor.get("/keys")).json()["items"]}
    rotated = await operator.post("/keys/rotate")
    assert rotated.status_code == 200, rotated.text
    after = {k["kid"]: k["state"] for k in rotated.json()["items"]}
    assert {kid for kid, state in before.items() if state == "next"} == {
        kid for kid, state in after.items() if state == "active"
    }
    assert (await auditor.post("/keys/rotate")).status_code == 403
    assert events(fd, "admin.keys.rotated")


async def test_upstream_providers_are_added_and_removed(operator: Api, secrets_seen):
    remember(secrets_seen, "upstream-secret-value")
    body = {
        "name": "corp",
        "client_id": "frontdesk",
        "client_secret": "upstream-secret-value",
        "authorization_endpoint": "https://idp.example/authorize",
        "token_endpoint": "https://idp.example/token",
        "userinfo_endpoint": "https://idp.example/userinfo",
    }
    made = await operator.post("/upstreams", body)
    assert made.status_code == 201, made.text
    assert made.json()["upstream"]["redirect_uri"] == "https://as.example/upstream/corp/callback"
    assert "upstream-secret-value" not in made.text
    assert [u["name"] for u in (await operator.get("/upstreams")).json()["items"]] == ["corp"]
    assert (await operator.post("/upstreams", body)).status_code == 409
    bad = await operator.post("/upstreams", {**body, "name": "other", "token_endpoint": "http://idp.example/t"})
    assert bad.status_code == 422
    assert (await operator.delete("/upstreams/corp")).status_code == 204
    assert (await operator.delete("/upstreams/corp")).status_code == 404


async def test_vault_connections_are_listed_and_deleted(operator: Api, fd: Frontdesk, secrets_seen):
    vault = vault_of(fd)
    remember(secrets_seen, "gh-access-token")
    vault.add_integration("gh", "github", "gh-client", "gh-client-secret")
    remember(secrets_seen, "gh-client-secret")
    with transaction(fd.engine) as conn:
        for user in ("u1", "u2", "u3"):
            save_connection(
                conn,
                vault.keys,
                integration_name="gh",
                user=user,
                credentials=Credentials("gh-access-token"),
                scopes=["repo"],
                meta={},
                expires_at=None,
                person=None,
            )
    [integration] = (await operator.get("/vault/integrations")).json()["items"]
    assert integration["name"] == "gh"
    assert "gh-client-secret" not in (await operator.get("/vault/integrations")).text
    first = (await operator.get("/vault/connections", limit=2)).json()
    rest = (await operator.get("/vault/connections", limit=2, cursor=first["next_cursor"])).json()
    listed = first["items"] + rest["items"]
    assert sorted(c["user"] for c in listed) == ["u1", "u2", "u3"]
    assert "gh-access-token" not in str(listed)
    one = listed[0]["id"]
    assert (await operator.get(f"/vault/connections/{one}")).json()["connection"]["integration"] == "gh"
    deleted = await operator.delete(f"/vault/connections/{one}")
    assert deleted.json() == {"deleted": True, "revoked_at_provider": False}
    assert (await operator.get(f"/vault/connections/{one}")).status_code == 404
    assert (await operator.delete("/vault/integrations/gh")).status_code == 409  # it still has connections
    assert (await operator.delete("/vault/integrations/gh", with_connections="true")).status_code == 204
    assert (await operator.get("/vault/connections")).json()["items"] == []
