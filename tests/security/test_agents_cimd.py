"""Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document-01): one black-box test (or a few) per
item of the agents checklist's section 2 (/work/shared/reference/agents-checklist.md, AG-CIMD-01…08), named after
its ID and doing the **Test:** it names: over HTTP against the production app, the client's documents on the https
host of tests/metadata_host.py (loopback, so frontdesk runs with ``allow_private_metadata_hosts`` unless a test proves
the address guard), on both databases."""

from __future__ import annotations

import base64
import json
import logging
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from conftest import pkce
from frontdesk.core import Frontdesk
from metadata_host import MetadataHost, Reply
from test_client_metadata_document import CALLBACK, LOGGER, authorize_params, document

KEY = {
    "kty": "EC",
    "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
}
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def assertion_for(client_id: str) -> str:
    """An RFC 7523 client assertion naming ``client_id`` (its signature never checks out: the keys are what is at
    stake, and reading them is the request forgery these tests look for)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims = {"iss": client_id, "sub": client_id, "aud": "https://as.example/token", "exp": int(time.time()) + 60}
    return f"{part({'alg': 'ES256', 'kid': 'k1'})}.{part(claims)}.c2lnbmF0dXJl"


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MetadataHost]:
    with MetadataHost(tmp_path) as running:
        monkeypatch.setenv("SSL_CERT_FILE", str(running.cafile))
        yield running


def relax(fd: Frontdesk, **registration: Any) -> Frontdesk:
    fd.settings = replace(fd.settings, registration=replace(fd.settings.registration, **registration))
    return fd


@pytest.fixture
def documents(fd: Frontdesk) -> Frontdesk:
    """frontdesk allowed to fetch from loopback (the named relaxation), where the test host runs."""
    return relax(fd, allow_private_metadata_hosts=True)


class Canary:
    """A TCP listener on loopback that counts the connections it is offered: silent means never reached."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._socket.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._socket.close()


@pytest.fixture
def canary() -> Iterator[Canary]:
    listening = Canary()
    yield listening
    listening.close()


def document_client(fd: Frontdesk, url: str, jwks_uri: str) -> str:
    """A private_key_jwt client as a metadata document left it (its stored copy fresh: nothing is fetched)."""
    far = int(time.time()) + 86400
    fd.clients.insert(
        client_id=url,
        secret=None,
        name="Signed Agent",
        auth_method="private_key_jwt",
        redirect_uris=[CALLBACK],
        grant_types=["authorization_code", "refresh_token"],
        scope=["openid"],
        jwks=None,
        jwks_uri=jwks_uri,
        application_type="web",
        registered_by="document",
        metadata_expires_at=far,
        metadata_stale_until=far,
    )
    return url


async def authorize(http: httpx.AsyncClient, client_id: str, **extra: str) -> httpx.Response:
    _, challenge = pkce()
    return await http.get("/authorize", params=authorize_params(client_id, challenge, **extra))


def assert_error_page(response: httpx.Response) -> None:
    """CIMD §4.3: the redirect URI is not to be trusted, so the failure is a page here and nobody is sent away."""
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"])
async def test_AG_CIMD_01_support_is_advertised(http, path):
    assert (await http.get(path)).json()["client_id_metadata_document_supported"] is True


@pytest.mark.parametrize(
    "form",
    ["http://localhost:{port}/c.json", "https://localhost:{port}", "https://localhost:{port}/a/../c.json",
     "https://localhost:{port}/./c.json", "https://localhost:{port}/c.json#f", "https://u:p@localhost:{port}/c.json"],
    ids=["http", "no-path", "dot-dot", "dot", "fragment", "userinfo"],
)  # fmt: skip
async def test_AG_CIMD_01_a_bad_client_id_url_is_an_error_page_and_never_fetched(http, documents, host, form):
    """§3: https, a path, no dot segments, fragment or user information."""
    url = form.format(port=host.port)
    for path in ("/", "/c.json", "/a/../c.json", "/./c.json"):
        host.serve_document(path, document(url))
    assert_error_page(await authorize(http, url))
    assert sum(host.hits(p) for p in ("/", "/c.json", "/a/../c.json", "/./c.json")) == 0


@pytest.mark.parametrize(
    "reply",
    [
        Reply(302, b"", {"Location": "/real.json"}),
        Reply(404, b"missing", {"Content-Type": "text/plain"}),
        Reply(500, b"{}"),
        Reply(200, b"<html><body>client</body></html>", {"Content-Type": "text/html"}),
    ],
    ids=["302", "404", "500", "html"],
)
async def test_AG_CIMD_02_only_a_200_json_document_succeeds_and_failures_redirect_nobody(http, documents, host, reply):
    """§4: only 200 succeeds and redirects are not followed; §4.3: on failure abort, without redirecting."""
    url = host.url("/c.json")
    host.serve("/c.json", reply)
    host.serve_document("/real.json", document(url))
    assert_error_page(await authorize(http, url))
    assert host.hits("/real.json") == 0
    assert documents.clients.get(url, cached=False) is None


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"client_id": "{url}/"}, "does not equal the URL"),
        ({"token_endpoint_auth_method": "client_secret_basic"}, "none or private_key_jwt"),
        ({"redirect_uris": None}, "redirect_uris"),
    ],
    ids=["trailing-slash", "client_secret_basic", "no-redirect_uris"],
)
async def test_AG_CIMD_03_a_document_breaking_a_rule_is_rejected(http, documents, host, change, why, caplog):
    """§4.1: client_id string-equals the URL; no shared-secret method; redirect_uris required (MCP)."""
    url = host.url("/c.json")
    doc = document(url, **{k: v.format(url=url) if isinstance(v, str) else v for k, v in change.items()})
    doc = {k: v for k, v in doc.items() if v is not None}
    host.serve_document("/c.json", doc)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        response = await authorize(http, url)
    assert_error_page(response)
    assert why in caplog.text
    assert documents.clients.get(url, cached=False) is None


async def test_AG_CIMD_03_redirect_uris_match_exactly(http, documents, host):
    url = host.url("/c.json")
    host.serve_document("/c.json", document(url))
    for near in (CALLBACK + "/", CALLBACK.upper(), CALLBACK + "?x=1"):
        assert_error_page(await authorize(http, url, redirect_uri=near))
    assert (await authorize(http, url)).status_code == 303  # the exact one goes on to sign-in


async def test_AG_CIMD_04_an_invalid_document_is_not_cached(http, documents, host):
    """§4.4: errors and invalid documents are never cached: once the document is fixed, the next request works."""
    url = host.url("/c.json")
    host.serve_document("/c.json", document(url, redirect_uris=[]))
    assert_error_page(await authorize(http, url))
    host.serve_document("/c.json", document(url))
    response = await authorize(http, url)
    assert response.status_code == 303, response.text
    assert host.hits("/c.json") == 2


async def test_AG_CIMD_04_max_age_0_and_new_redirect_uris_give_the_new_list(http, documents, host, clock):
    """§4.4: HTTP caching is honoured within bounds (at least ``metadata_min_cache``): once that has passed, the
    document is read again and its new redirect URIs count, the old ones no longer."""
    url = host.url("/c.json")
    host.serve_document("/c.json", document(url), Cache_Control="max-age=0")
    assert (await authorize(http, url)).status_code == 303
    new = "https://agent.example/new-cb"
    host.serve_document("/c.json", document(url, redirect_uris=[new]), Cache_Control="max-age=0")
    clock.advance(documents.settings.registration.metadata_min_cache + 1)
    assert (await authorize(http, url, redirect_uri=new)).status_code == 303
    assert_error_page(await authorize(http, url))
    assert host.hits("/c.json") == 2


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.0.0.1", "192.168.1.1", "172.16.0.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "[::1]",
     "[fc00::1]", "[fe80::1]", "[::ffff:127.0.0.1]", "[::ffff:169.254.169.254]"],
)  # fmt: skip
async def test_AG_CIMD_05_special_use_addresses_are_never_fetched(http, fd, address, caplog):
    """§6.5 (RFC 6890): without the relaxation, a client_id on a special-use address is refused before connecting."""
    url = f"https://{address}/c.json"
    with caplog.at_level(logging.INFO, logger=LOGGER):
        response = await authorize(http, url)
    assert_error_page(response)
    assert "special-use address" in caplog.text


async def test_AG_CIMD_05_a_loopback_host_name_is_refused_and_the_canary_stays_silent(http, fd, host, canary):
    url = host.url("/c.json")
    host.serve_document("/c.json", document(url))
    assert_error_page(await authorize(http, url))
    assert_error_page(await authorize(http, f"https://localhost:{canary.port}/c.json"))
    assert host.hits("/c.json") == 0
    assert canary.connections == 0


async def test_AG_CIMD_05_dns_rebinding_never_reaches_loopback(http, fd, canary, monkeypatch):
    """A name that resolves to a public address when checked and to loopback afterwards: the connection goes to
    the address that was checked, so the rebound answer is never used."""
    real = socket.getaddrinfo
    answers: list[str] = []

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.example":
            return real(host, port, *args, **kwargs)
        address = "192.0.43.10" if not answers else "127.0.0.1"  # public first (never routed here), then loopback
        answers.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    relax(fd, metadata_timeout=1)
    assert_error_page(await authorize(http, f"https://rebind.example:{canary.port}/c.json"))
    assert answers[:1] == ["192.0.43.10"]
    assert canary.connections == 0


async def test_AG_CIMD_05_a_document_clients_jwks_uri_gets_the_same_guard(http, fd, host, canary):
    """§6.5: the jwks_uri of a client nobody vetted is not fetched from a special-use address either: the token
    request is invalid_client and nothing connects to the loopback canary."""
    jwks_uri = f"https://127.0.0.1:{canary.port}/jwks"
    url = document_client(fd, host.url("/signed.json"), jwks_uri)
    response = await http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": "fd_ac_nothing",
            "client_id": url,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion_for(url),
        },
    )
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert canary.connections == 0


async def test_AG_CIMD_05_a_guarded_jwks_uri_on_an_allowed_host_still_authenticates(http, documents, host):
    """The guard refuses addresses, not clients: with the relaxation (development) the keys at the document
    client's jwks_uri are read through it and a signed assertion authenticates (a bad code is then invalid_grant)."""
    key = ECKey.generate_key("P-256", parameters={"kid": "k1", "alg": "ES256"}, private=True)
    host.serve_document("/jwks", {"keys": [key.as_dict(private=False)]})
    url = document_client(documents, host.url("/signed.json"), host.url("/jwks"))
    claims = {"iss": url, "sub": url, "aud": "https://as.example", "jti": secrets.token_urlsafe(12),
              "iat": int(time.time()), "exp": int(time.time()) + 60}  # fmt: skip
    signed = jwt.encode({"alg": "ES256", "kid": "k1"}, claims, key)
    response = await http.post(
        "/token",
        data={"grant_type": "authorization_code", "code": "fd_ac_nothing", "client_assertion_type": ASSERTION_TYPE,
              "client_assertion": signed},
    )  # fmt: skip
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"
    assert host.hits("/jwks") == 1


async def test_AG_CIMD_05_a_self_registered_clients_jwks_uri_gets_the_same_guard(http, canary, secrets_seen):
    """RFC 7591 §5: a jwks_uri chosen through open registration is no way to make this server call loopback."""
    registered = await http.post(
        "/register",
        json={
            "client_name": "Signed",
            "redirect_uris": [CALLBACK],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": f"https://127.0.0.1:{canary.port}/jwks",
        },
    )
    assert registered.status_code == 201, registered.text
    response = await http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": "fd_ac_nothing",
            "client_id": registered.json()["client_id"],
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion_for(registered.json()["client_id"]),
        },
    )
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert canary.connections == 0


async def test_AG_CIMD_06_a_1_mb_document_is_an_error(http, documents, host):
    url = host.url("/c.json")
    big = json.dumps(document(url, client_name="x" * 1_000_000)).encode()
    host.serve("/c.json", Reply(body=big, length=False))
    assert_error_page(await authorize(http, url))


async def test_AG_CIMD_06_a_1_byte_per_second_document_is_an_error_within_the_timeout(http, documents, host):
    relax(documents, metadata_timeout=1)
    url = host.url("/c.json")
    body = json.dumps(document(url)).encode()
    host.serve("/c.json", Reply(body=body, chunks=len(body), pause=1.0))
    started = time.monotonic()
    assert_error_page(await authorize(http, url))
    assert time.monotonic() - started < 3.0


async def test_AG_CIMD_07_a_private_key_jwt_document_client_without_an_assertion_is_invalid_client(
    http, documents, host
):
    """§6.2: keys in the document make the client confidential; it always authenticates."""
    url = host.url("/c.json")
    host.serve_document("/c.json", document(url, token_endpoint_auth_method="private_key_jwt", jwks={"keys": [KEY]}))
    for grant in (
        {"grant_type": "authorization_code", "code": "fd_ac_x"},
        {"grant_type": "refresh_token", "refresh_token": "fd_rt_x"},
    ):
        response = await http.post("/token", data={**grant, "client_id": url})
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "invalid_client"


async def test_AG_CIMD_08_consent_shows_both_hosts(http, documents, host, browser):
    """§6.4, MCP security: the client_id's host and the redirect host are both on the page."""
    url = host.url("/c.json")
    host.serve_document("/c.json", document(url))
    page = await browser.authorize(consent=None, **authorize_params(url, pkce()[1]))
    assert page.status_code == 200, page.text
    assert f"App at localhost:{host.port}" in page.text
    assert "<strong>agent.example</strong>" in page.text
    assert "was not checked by the operator" in page.text
    assert "Any program on this device" not in page.text


async def test_AG_CIMD_08_consent_warns_when_the_redirect_is_localhost_only(http, documents, host, browser):
    """§6.7: every redirect URI on loopback means any program on the device can pose as this client."""
    url = host.url("/c.json")
    redirect = "http://127.0.0.1:53682/callback"
    host.serve_document("/c.json", document(url, redirect_uris=[redirect], application_type="native"))
    page = await browser.authorize(consent=None, **authorize_params(url, pkce()[1], redirect_uri=redirect))
    assert page.status_code == 200, page.text
    assert f"App at localhost:{host.port}" in page.text
    assert "<strong>127.0.0.1:53682</strong>" in page.text
    assert "Any program on this device could be using this app’s name" in page.text
