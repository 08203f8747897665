"""Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document; MCP 2025-11-25): an https client_id
names a JSON document frontdesk fetches, judges and keeps as a client registered by "document". Over HTTP against
a real https host on loopback (tests/metadata_host.py), with ``allow_private_metadata_hosts`` on; the rules of the
URL, the document and its freshness also as pure functions."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from conftest import Clock, pkce, query
from frontdesk.config import Registration
from frontdesk.core import Frontdesk
from frontdesk.oauth.client_metadata_document import DocumentError, check_document_url, freshness, judge
from frontdesk.oauth.clients import find_client
from frontdesk.oauth.registration import register
from frontdesk.storage.audit import tail
from metadata_host import MetadataHost, Reply

CALLBACK = "https://agent.example/cb"
LOGGER = "frontdesk.client_metadata_document"
LIMITS = Registration()


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MetadataHost]:
    """The client's https host, trusted through SSL_CERT_FILE as an operator would."""
    with MetadataHost(tmp_path) as running:
        monkeypatch.setenv("SSL_CERT_FILE", str(running.cafile))
        yield running


@pytest.fixture
def documents(fd: Frontdesk) -> Frontdesk:
    """frontdesk allowed to fetch from loopback (the named relaxation), as for development."""
    fd.settings = replace(
        fd.settings, registration=replace(fd.settings.registration, allow_private_metadata_hosts=True)
    )
    return fd


def document(url: str, **fields: Any) -> dict[str, Any]:
    return {
        "client_id": url,
        "client_name": "Research Agent",
        "redirect_uris": [CALLBACK],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid profile offline_access",
        "client_uri": "https://agent.example",
        **fields,
    }


def authorize_params(client_id: str, challenge: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": CALLBACK,
        "scope": "openid profile offline_access",
        "state": "s1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


# The client_id URL (CIMD §3) ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://c.example/c.json",
        "https://c.example",
        "https://c.example/",
        "https://c.example/a/../c.json",
        "https://c.example/a/./c.json",
        "https://c.example/a/%2e%2e/c.json",
        "https://c.example/c.json#frag",
        "https://user:pw@c.example/c.json",
        "https://user@c.example/c.json",
        "https://c.example/c json",
        "https://c.example:0/c.json",
        "https://c.example:99999/c.json",
        "https://[::1/c.json",
        "https://c.example/" + "a" * 250,
    ],
)
def test_client_id_url_rules(url):
    """§3: https, a host, a path, no dot segments, fragment or user information, within the client_id column."""
    with pytest.raises(DocumentError):
        check_document_url(url, LIMITS.max_uri_length)


@pytest.mark.parametrize(
    "url", ["https://c.example/c.json", "https://c.example:8443/oauth/client", "https://c.example/c.json?v=2"]
)
def test_client_id_urls_that_may_name_a_document(url):
    check_document_url(url, LIMITS.max_uri_length)


# The document (CIMD §4.1, §6.2; MCP) --------------------------------------------------------------------------

URL = "https://c.example/c.json"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"client_id": URL + "/"}, "does not equal the URL"),
        ({"client_id": URL.upper()}, "does not equal the URL"),
        ({"client_id": None}, "does not equal the URL"),
        ({"client_secret": "s3cret-s3cret-s3cret"}, "client_secret must not appear"),
        ({"client_secret_expires_at": 0}, "client_secret_expires_at must not appear"),
        ({"token_endpoint_auth_method": "client_secret_basic"}, "none or private_key_jwt"),
        ({"token_endpoint_auth_method": "client_secret_post"}, "none or private_key_jwt"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "private_key_jwt needs jwks or jwks_uri"),
        ({"redirect_uris": []}, "redirect_uris is required"),
        ({"redirect_uris": "https://agent.example/cb"}, "redirect_uris must be an array"),
        ({"redirect_uris": ["https://agent.example/cb#x"]}, "fragment"),
        ({"grant_types": ["client_credentials"]}, "within authorization_code and refresh_token"),
        ({"response_types": ["token"]}, "response_types may only be code"),
        ({"client_name": ""}, "client_name is required"),
        ({"client_name": 7}, "client_name must be a printable string"),
        ({"application_type": "desktop"}, "application_type must be web or native"),
        ({"logo_uri": "javascript:alert(1)"}, "logo_uri must be an https URL"),
        ({"jwks_uri": "https://c.example/jwks", "token_endpoint_auth_method": "none"}, None),
    ],
)
def test_document_rules(fields, reason):
    """Each document-specific rule, with the RFC 7591 field it names; the last row is a document that passes."""
    doc = document(URL, **fields)
    if fields.get("client_name") is None and "client_name" in fields:
        doc.pop("client_name")
    if reason is None:
        assert judge(doc, URL, LIMITS, ["openid", "profile"]).metadata.client_id == URL
        return
    with pytest.raises(DocumentError, match=reason):
        judge(doc, URL, LIMITS, ["openid", "profile", "offline_access"])


def test_a_missing_client_name_is_refused():
    doc = document(URL)
    del doc["client_name"]
    with pytest.raises(DocumentError, match="client_name is required"):
        judge(doc, URL, LIMITS, ["openid"])


def test_redirect_uri_errors_carry_their_code():
    """RFC 7591 §3.2.2: a bad redirect URI is invalid_redirect_uri, anything else invalid_client_metadata."""
    with pytest.raises(DocumentError) as caught:
        judge(document(URL, redirect_uris=[]), URL, LIMITS, ["openid"])
    assert caught.value.error == "invalid_redirect_uri"
    with pytest.raises(DocumentError) as caught:
        judge(document(URL, client_secret="x" * 20), URL, LIMITS, ["openid"])
    assert caught.value.error == "invalid_client_metadata"


def test_a_public_client_by_default_and_private_key_jwt_with_keys():
    key = {
        "kty": "EC",
        "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    }
    assert judge(document(URL), URL, LIMITS, ["openid"]).metadata.auth_method == "none"
    signed = judge(
        document(URL, token_endpoint_auth_method="private_key_jwt", jwks={"keys": [key]}), URL, LIMITS, ["openid"]
    )
    assert signed.metadata.auth_method == "private_key_jwt"


def test_scopes_nobody_defined_are_left_out():
    judged = judge(document(URL, scope="openid mystery profile"), URL, LIMITS, ["openid", "profile"])
    assert judged.metadata.scope == ("openid", "profile")


@pytest.mark.parametrize(
    ("max_age", "ttl"), [(None, 300), (0, 300), (60, 300), (3600, 3600), (86400, 86400), (10**9, 86400)]
)
def test_cache_lifetime_is_kept_within_bounds(max_age, ttl):
    """§4.4: max-age within [metadata_min_cache, metadata_max_cache]; none or no-store → the minimum; then the
    stored copy may stand in for metadata_stale_for more while refetching fails."""
    assert freshness(max_age, 1000, LIMITS) == (1000 + ttl, 1000 + ttl + LIMITS.metadata_stale_for)


# Over HTTP --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"])
async def test_discovery_advertises_metadata_documents(http, path):
    """CIMD §5: client_id_metadata_document_supported in both metadata documents."""
    assert (await http.get(path)).json()["client_id_metadata_document_supported"] is True


async def test_a_document_client_signs_a_person_in_and_gets_tokens(http, documents, host, browser, backend):
    """The whole flow with nothing registered by hand: authorize (the document fetched), sign in, consent (never
    skipped: nobody vetted the client), code, then tokens for PKCE with the URL as client_id."""
    url = host.url("/oauth/client.json")
    host.serve_document("/oauth/client.json", document(url), Cache_Control="max-age=600")
    verifier, challenge = pkce()
    response = await browser.authorize(**authorize_params(url, challenge))
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith(CALLBACK + "?")
    code = query(response.headers["location"])["code"]
    token = await http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "client_id": url,
            "code_verifier": verifier,
        },
    )
    assert token.status_code == 200, token.text
    assert {"access_token", "refresh_token", "id_token"} <= token.json().keys()
    client = documents.clients.get(url, cached=False)
    assert client is not None
    assert client.registered_by == "document"
    assert not client.vetted
    assert client.extra_metadata == {"client_uri": "https://agent.example"}
    assert host.hits("/oauth/client.json") == 1  # fresh for 600 s: the token request used the stored copy
    events = [e.event for e in tail(documents.engine, 50)]
    assert "client.document_registered" in events


async def test_consent_is_asked_of_a_document_client(http, documents, host, browser):
    url = host.url("/c.json")
    host.serve_document("/c.json", document(url))
    _, challenge = pkce()
    response = await browser.authorize(consent=None, **authorize_params(url, challenge))
    assert response.status_code == 200
    assert 'value="allow"' in response.text


@pytest.mark.parametrize("path", ["/", "/a/../c.json", "/c.json#x", "/%2e%2e/c.json"])
async def test_a_bad_client_id_url_is_an_error_page_and_never_fetched(http, documents, host, path, caplog):
    url = f"https://localhost:{host.port}{path}"
    host.serve_document("/c.json", document(url))
    _, challenge = pkce()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        response = await http.get("/authorize", params=authorize_params(url, challenge))
    assert "cannot name a client ID metadata document" in caplog.text
    assert response.status_code == 400
    assert "location" not in response.headers
    assert sum(host.hits(p) for p in ("/", "/c.json", "/a/../c.json", "/%2e%2e/c.json")) == 0


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply(302, b"", {"Location": "/elsewhere.json"}), "HTTP 302"),
        (Reply(404, b"gone", {"Content-Type": "text/plain"}), "HTTP 404"),
        (Reply(500, b"{}"), "HTTP 500"),
        (Reply(200, b"<html></html>", {"Content-Type": "text/html"}), "not served as application/json"),
    ],
    ids=["302", "404", "500", "html"],
)
async def test_a_failed_fetch_is_an_error_page_not_a_redirect(http, documents, host, reply, reason, caplog):
    """CIMD §4.3: the redirect URI is not trusted, so nobody is sent anywhere."""
    url = host.url("/c.json")
    host.serve("/c.json", reply)
    host.serve_document("/elsewhere.json", document(url))
    _, challenge = pkce()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        response = await http.get("/authorize", params=authorize_params(url, challenge))
    assert f"{url} refused: the document at localhost" in caplog.text
    assert reason in caplog.text
    assert response.status_code == 400
    assert "location" not in response.headers
    assert host.hits("/elsewhere.json") == 0


async def test_a_document_for_another_url_is_refused(http, documents, host, caplog):
    """CIMD §4.1: the document's client_id equals the URL exactly; a trailing slash names another client."""
    url = host.url("/c.json")
    host.serve_document("/c.json", document(url + "/"))
    _, challenge = pkce()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        response = await http.get("/authorize", params=authorize_params(url, challenge))
    assert "does not equal the URL it was fetched from" in caplog.text
    assert response.status_code == 400
    assert "location" not in response.headers
    assert documents.clients.get(url, cached=False) is None


async def test_redirect_uris_are_matched_exactly(http, documents, host):
    url = host.url("/c.json")
    host.serve_document("/c.json", document(url))
    _, challenge = pkce()
    response = await http.get("/authorize", params=authorize_params(url, challenge, redirect_uri=CALLBACK + "/"))
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "return address" in response.text  # the document was read: its redirect URIs refused this one
    assert host.hits("/c.json") == 1


async def test_without_the_relaxation_a_loopback_host_is_never_fetched(http, fd, host, caplog):
    """CIMD §6.5: localhost resolves to loopback, refused before any connection."""
    url = host.url("/c.json")
    host.serve_document("/c.json", document(url))
    _, challenge = pkce()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        response = await http.get("/authorize", params=authorize_params(url, challenge))
    assert "special-use address" in caplog.text
    assert response.status_code == 400
    assert host.hits("/c.json") == 0


async def test_with_metadata_documents_off_a_url_is_an_unknown_client(http, documents, host):
    documents.settings = replace(
        documents.settings, registration=replace(documents.settings.registration, metadata_documents=False)
    )
    url = host.url("/c.json")
    host.serve_document("/c.json", document(url))
    _, challenge = pkce()
    response = await http.get("/authorize", params=authorize_params(url, challenge))
    assert response.status_code == 400
    assert host.hits("/c.json") == 0
    assert (await http.get("/.well-known/openid-configuration")).json()[
        "client_id_metadata_document_supported"
    ] is False


def test_an_operator_client_with_a_url_id_is_never_fetched(documents, host):
    """A client registered by hand under an https client_id is that client; no document replaces it."""
    url = host.url("/c.json")
    register(documents, name="Operator's", client_id=url, auth_method="none", redirect_uris=[CALLBACK])
    host.serve_document("/c.json", document(url))
    client = find_client(documents, url)
    assert client is not None
    assert client.registered_by == "operator"
    assert client.name == "Operator's"
    assert host.hits("/c.json") == 0


# Freshness (CIMD §4.4) -----------------------------------------------------------------------------------------


def test_a_fresh_copy_is_used_and_an_expired_one_refetched(documents, host, clock: Clock):
    url = host.url("/c.json")
    host.serve_document("/c.json", document(url), Cache_Control="max-age=60")  # below the minimum: 300 s
    assert find_client(documents, url) is not None
    clock.advance(240)  # well within the 300 s, however slow this test runs
    assert find_client(documents, url) is not None
    assert host.hits("/c.json") == 1
    host.serve_document("/c.json", document(url, redirect_uris=["https://agent.example/new"]))
    clock.advance(61)
    client = find_client(documents, url)
    assert host.hits("/c.json") == 2
    assert client is not None
    assert client.redirect_uris == ("https://agent.example/new",)


def test_a_failing_refetch_keeps_the_stored_copy_until_it_is_too_stale(documents, host, clock, caplog):
    url = host.url("/c.json")
    host.serve_document("/c.json", document(url, client_name="Secretive Agent Name"))
    assert find_client(documents, url) is not None
    host.serve("/c.json", Reply(503, b'{"client_name": "body text"}'))
    clock.advance(LIMITS.metadata_min_cache + 1)
    with caplog.at_level(logging.WARNING, logger="frontdesk.client_metadata_document"):
        client = find_client(documents, url)
    assert client is not None
    assert client.name == "Secretive Agent Name"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings
    assert all("body text" not in r.getMessage() for r in caplog.records)
    clock.advance(LIMITS.metadata_stale_for)
    assert find_client(documents, url) is None


def test_without_fetching_only_a_usable_copy_counts(documents, host, clock):
    """The token endpoint's blocking step (fetch=False, after prepare_client) never fetches."""
    url = host.url("/c.json")
    assert find_client(documents, url, fetch=False) is None
    host.serve_document("/c.json", document(url))
    assert find_client(documents, url) is not None
    clock.advance(LIMITS.metadata_min_cache + 1)
    assert find_client(documents, url, fetch=False) is not None  # expired, may still stand in
    clock.advance(LIMITS.metadata_stale_for)
    assert find_client(documents, url, fetch=False) is None
    assert host.hits("/c.json") == 1


def test_one_fetch_per_url_at_a_time(documents, host):
    """Requests for the same new client at once cause one fetch; the others read what it stored."""
    url = host.url("/c.json")
    host.serve("/c.json", Reply(body=json.dumps(document(url)).encode(), chunks=5, pause=0.05))
    found: list[Any] = []
    threads = [threading.Thread(target=lambda: found.append(find_client(documents, url))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(found) == 6
    assert all(c is not None for c in found)
    assert host.hits("/c.json") == 1


async def test_a_client_too_stale_to_use_is_refused_at_the_token_endpoint(http, documents, host, clock):
    url = host.url("/c.json")
    host.serve_document("/c.json", document(url))
    assert find_client(documents, url) is not None
    host.serve("/c.json", Reply(404, b""))
    clock.advance(LIMITS.metadata_min_cache + LIMITS.metadata_stale_for + 1)
    response = await http.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": "fd_rt_nothing", "client_id": url}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_a_private_key_jwt_document_client_must_authenticate(http, documents, host):
    """CIMD §6.2: with keys in its document the client is confidential; a token request without an assertion is
    invalid_client."""
    key = {
        "kty": "EC",
        "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    }
    url = host.url("/c.json")
    host.serve_document("/c.json", document(url, token_endpoint_auth_method="private_key_jwt", jwks={"keys": [key]}))
    response = await http.post(
        "/token", data={"grant_type": "authorization_code", "code": "fd_ac_nothing", "client_id": url}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert host.hits("/c.json") == 1


def test_a_document_client_is_never_registered_for_a_restricted_scope(documents, host):
    """As for an open dynamic registration: scopes the operator restricted need an initial access token, which a
    metadata document cannot present; they are left out, the rest stays."""
    documents.create_scope("tools.admin", "Administer the tools")
    documents.create_scope("tools.read", "Use the tools")
    with documents.engine.begin() as conn:
        conn.execute(text("UPDATE scopes SET restricted = :yes WHERE name = 'tools.admin'"), {"yes": True})
    url = host.url("/c.json")
    host.serve_document("/c.json", document(url, scope="openid tools.admin tools.read"))
    client = find_client(documents, url)
    assert client is not None
    assert client.scope == ("openid", "tools.read")
