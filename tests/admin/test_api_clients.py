"""The admin API's clients (admin/clients.py behind /admin/api/v1/clients) on SQLite and PostgreSQL: register, read,
list a page at a time, change any field (judged as registration judges it), replace, rotate the secret with an
overlap, delete; each change audited naming the token."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from conftest import Registered
from frontdesk.core import Frontdesk
from frontdesk.storage.clients import save_document_client
from frontdesk.storage.db import now, transaction

from .admin_api import Api, events

WEB = {"name": "Shop", "redirect_uris": ["https://shop.example/cb"], "scope": "openid profile"}


async def _client_credentials(http: httpx.AsyncClient, client_id: str, secret: str) -> int:
    response = await http.post("/token", auth=(client_id, secret), data={"grant_type": "client_credentials"})
    return response.status_code


async def test_a_client_is_registered_read_and_listed(operator: Api, fd: Frontdesk):
    """POST answers 201 with the client and its secret (once); GET reads it without the secret."""
    response = await operator.post("/clients", {**WEB, "client_id": "shop"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["client"]["client_id"] == "shop"
    assert body["client_secret"].startswith("fd_cs_")
    assert body["client"]["has_secret"] is True
    read = (await operator.get("/clients/shop")).json()["client"]
    assert read["redirect_uris"] == ["https://shop.example/cb"]
    assert body["client_secret"] not in (await operator.get("/clients/shop")).text
    [created] = events(fd, "admin.client.created")
    assert created.client_id == "shop"
    assert created.detail["by"].startswith("token:")


async def test_the_list_pages_through_every_client_once(operator: Api):
    for n in range(5):
        assert (await operator.post("/clients", {**WEB, "client_id": f"c{n}"})).status_code == 201
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await operator.get("/clients", **params)).json()
        seen += [c["client_id"] for c in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == ["c0", "c1", "c2", "c3", "c4"]
    found = (await operator.get("/clients", search="C3")).json()["items"]
    assert [c["client_id"] for c in found] == ["c3"]


async def test_redirect_uris_and_scopes_change_and_bad_ones_are_refused(operator: Api, fd: Frontdesk):
    """PATCH changes the fields given; a plain-http redirect URI gets registration's own error code, 422."""
    await operator.post("/clients", {**WEB, "client_id": "shop"})
    changed = await operator.patch("/clients/shop", {"redirect_uris": ["https://shop.example/new"], "scope": "openid"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["client"]["redirect_uris"] == ["https://shop.example/new"]
    assert changed.json()["client"]["scope"] == "openid"
    assert fd.clients.get("shop", cached=False).redirect_uris == ("https://shop.example/new",)
    refused = await operator.patch("/clients/shop", {"redirect_uris": ["http://shop.example/cb"]})
    assert refused.status_code == 422
    assert refused.json()["error"] == "invalid_redirect_uri"
    unknown = await operator.patch("/clients/shop", {"scope": "openid nobody:defined"})
    assert unknown.status_code == 422
    assert "nobody:defined" in unknown.json()["error_description"]
    wrong_type = await operator.patch("/clients/shop", {"redirect_uris": "https://x.example/cb"})
    assert wrong_type.status_code == 422
    assert "redirect_uris" in wrong_type.json()["error_description"]


async def test_put_replaces_the_metadata_and_a_method_change_moves_the_secret(operator: Api):
    await operator.post("/clients", {**WEB, "client_id": "shop", "auth_method": "none"})
    replaced = await operator.put(
        "/clients/shop",
        {"name": "Shop 2", "redirect_uris": ["https://shop.example/cb"], "auth_method": "client_secret_post"},
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["client"]["name"] == "Shop 2"
    assert replaced.json()["client"]["scope"] == "openid profile email offline_access"  # registration's default
    assert replaced.json()["client_secret"].startswith("fd_cs_")


async def test_unknown_and_duplicate_clients(operator: Api):
    assert (await operator.get("/clients/nobody")).status_code == 404
    assert (await operator.delete("/clients/nobody")).json()["error"] == "not_found"
    await operator.post("/clients", {**WEB, "client_id": "shop"})
    again = await operator.post("/clients", {**WEB, "client_id": "shop"})
    assert again.status_code == 409
    assert again.json()["error"] == "invalid_client_id"


async def test_a_deleted_client_is_gone(operator: Api, http: httpx.AsyncClient, confidential: Registered):
    assert (await operator.delete(f"/clients/{confidential.client_id}")).status_code == 204
    assert (await operator.get(f"/clients/{confidential.client_id}")).status_code == 404
    assert await _client_credentials(http, confidential.client_id, confidential.secret or "") == 401


async def test_the_old_secret_works_until_the_overlap_ends(
    operator: Api, http: httpx.AsyncClient, confidential: Registered, clock, secrets_seen
):
    """A rotated secret keeps the previous one working for the overlap; after it, only the new one works."""
    old = confidential.secret or ""
    rotated = await operator.post(f"/clients/{confidential.client_id}/secret", {"overlap": 3600})
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["client_secret"]
    assert rotated.json()["previous_secret_valid_until"] is not None
    assert await _client_credentials(http, confidential.client_id, new) == 200
    assert await _client_credentials(http, confidential.client_id, old) == 200
    clock.advance(3601)
    assert await _client_credentials(http, confidential.client_id, old) == 401
    assert await _client_credentials(http, confidential.client_id, new) == 200


async def test_an_overlap_of_zero_ends_the_old_secret_at_once(
    operator: Api, http: httpx.AsyncClient, confidential: Registered
):
    rotated = await operator.post(f"/clients/{confidential.client_id}/secret", {"overlap": 0})
    assert rotated.json()["previous_secret_valid_until"] is None
    assert await _client_credentials(http, confidential.client_id, confidential.secret or "") == 401
    assert await _client_credentials(http, confidential.client_id, rotated.json()["client_secret"]) == 200


async def test_a_public_client_has_no_secret_to_rotate(operator: Api):
    await operator.post("/clients", {**WEB, "client_id": "spa", "auth_method": "none"})
    refused = await operator.post("/clients/spa/secret")
    assert refused.status_code == 409
    assert "no secret" in refused.json()["error_description"]


DOCUMENT = "https://app.example/oauth/client.json"


def store_document(fd: Frontdesk, url: str, name: str) -> bool:
    """A public client's metadata document at ``url``, stored as a fetch would store it (fresh for five minutes)."""
    with transaction(fd.engine) as conn:
        return save_document_client(
            conn,
            url,
            expires_at=now() + 300,
            stale_until=now() + 3600,
            name=name,
            auth_method="none",
            redirect_uris=["https://app.example/cb"],
            grant_types=["authorization_code", "refresh_token"],
            scope=["openid"],
            jwks=None,
            jwks_uri=None,
        )


async def test_a_metadata_document_client_is_read_and_deleted_by_its_url_never_changed(operator: Api, fd: Frontdesk):
    """A client ID metadata document's client_id is an https URL: percent-encoded into the path, it names the stored
    copy like any client_id. Its metadata is the document's, so a change is refused (409: the next fetch would undo
    it); deleting it ends its grants."""
    assert store_document(fd, DOCUMENT, "App")
    path = "/clients/" + quote(DOCUMENT, safe="")
    read = await operator.get(path)
    assert read.status_code == 200, read.text
    assert read.json()["client"]["client_id"] == DOCUMENT
    assert read.json()["client"]["registered_by"] == "document"
    assert DOCUMENT in [c["client_id"] for c in (await operator.get("/clients")).json()["items"]]
    for change in (operator.patch(path, {"name": "Not the document's"}), operator.put(path, WEB)):
        refused = await change
        assert refused.status_code == 409, refused.text
        assert "metadata document" in refused.json()["error_description"]
    assert fd.clients.get(DOCUMENT, cached=False).name == "App"
    assert (await operator.post(path + "/secret", {})).status_code == 409  # a document client has no secret
    assert (await operator.delete(path)).status_code == 204
    assert fd.clients.get(DOCUMENT, cached=False) is None
    assert (await operator.get(path)).status_code == 404
    [deleted] = events(fd, "admin.client.deleted")
    assert deleted.client_id == DOCUMENT


async def test_a_metadata_document_whose_url_ends_in_secret_is_a_client_not_a_secret(operator: Api, fd: Frontdesk):
    """``https://app.example/secret``, percent-encoded into the path, names that client: decoded, its path would
    look like the secret route of a client ``https://app.example``. The secret route still answers the literal one."""
    url = "https://app.example/secret"
    assert store_document(fd, url, "Secretive App")
    path = "/clients/" + quote(url, safe="")
    read = await operator.get(path)
    assert read.status_code == 200, read.text
    assert read.json()["client"]["client_id"] == url
    refused = await operator.put("/clients/shop/secret", WEB)  # the literal /secret: the secret's route, no PUT
    assert refused.status_code == 405
    assert (await operator.delete(path)).status_code == 204
    assert fd.clients.get(url, cached=False) is None
