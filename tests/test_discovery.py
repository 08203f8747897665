"""Authorization server metadata (RFC 8414), OpenID Connect Discovery 1.0 and the JWKS (RFC 7517), over HTTP:
complete, truthful, free of private key material, and a key rotation that publishes each key before it signs."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from conftest import ISSUER, Browser, Registered, basic, code_for

DOCUMENTS = ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]
# RFC 7518 §6.2.2, §6.3.2, §6.4: members that only a private or symmetric key has.
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
# Endpoints that answer only POST; the rest are fetched with GET.
POST_ONLY = {
    "token_endpoint",
    "introspection_endpoint",
    "revocation_endpoint",
    "device_authorization_endpoint",
    "registration_endpoint",
    "backchannel_authentication_endpoint",  # OpenID Connect CIBA Core 1.0 §7.1: POST only
}


async def metadata(http: Any, path: str) -> dict[str, Any]:
    response = await http.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


async def jwks(http: Any) -> list[dict[str, Any]]:
    response = await http.get("/jwks")
    assert response.status_code == 200
    return response.json()["keys"]


def jwt_header(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def kids_by_state(fd: Any, alg: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for info in fd.keys.list():
        if info.alg == alg:
            out.setdefault(info.state, []).append(info.kid)
    return out


async def client_credentials_token(http: Any, client: Registered) -> str:
    response = await http.post("/token", auth=basic(client), data={"grant_type": "client_credentials"})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


async def code_flow_tokens(http: Any, browser: Browser, client: Registered) -> dict[str, Any]:
    code, verifier = await code_for(browser, client)
    response = await http.post(
        "/token",
        auth=basic(client),
        data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier},
    )
    assert response.status_code == 200, response.text
    return response.json()


# --- metadata ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", DOCUMENTS)
async def test_issuer_equals_issuer_url(http, path):
    """RFC 8414 §3.3 / OIDC-13: issuer is exactly the issuer the document was fetched under."""
    assert (await metadata(http, path))["issuer"] == ISSUER


@pytest.mark.parametrize("path", DOCUMENTS)
async def test_required_members_are_present(http, path):
    """RFC 8414 §2 and OpenID Connect Discovery §3: every REQUIRED member, and the recommended ones, are there."""
    doc = await metadata(http, path)
    required = {
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
        "userinfo_endpoint",
        "scopes_supported",
        "claims_supported",
        "grant_types_supported",
        "code_challenge_methods_supported",
        "token_endpoint_auth_methods_supported",
    }
    assert required <= set(doc)
    assert "RS256" in doc["id_token_signing_alg_values_supported"]
    assert "openid" in doc["scopes_supported"]


async def test_both_documents_agree(http):
    """The RFC 8414 and OpenID Connect documents describe the same server."""
    assert await metadata(http, DOCUMENTS[0]) == await metadata(http, DOCUMENTS[1])


@pytest.mark.parametrize("path", DOCUMENTS)
async def test_pkce_is_s256_only(http, path):
    """BCP-06: code_challenge_methods_supported is exactly ["S256"], no plain."""
    assert (await metadata(http, path))["code_challenge_methods_supported"] == ["S256"]


@pytest.mark.parametrize("path", DOCUMENTS)
async def test_response_types_are_code_only(http, path):
    """BCP-17: response_types_supported is exactly ["code"], with query as the only response mode."""
    doc = await metadata(http, path)
    assert doc["response_types_supported"] == ["code"]
    assert doc["response_modes_supported"] == ["query"]


@pytest.mark.parametrize("path", DOCUMENTS)
async def test_iss_parameter_is_advertised(http, path):
    """BCP-29 / RFC 9207 §3: authorization_response_iss_parameter_supported is true."""
    assert (await metadata(http, path))["authorization_response_iss_parameter_supported"] is True


@pytest.mark.parametrize("path", DOCUMENTS)
async def test_no_password_or_implicit_grant(http, path):
    """BCP-17/18: grant_types_supported lists neither password nor implicit."""
    grants = (await metadata(http, path))["grant_types_supported"]
    assert "password" not in grants
    assert "implicit" not in grants
    assert "authorization_code" in grants


@pytest.mark.parametrize("path", DOCUMENTS)
async def test_request_objects_are_not_advertised(http, path):
    """OIDC-09: the document says request and request_uri are not supported, which the endpoint confirms."""
    doc = await metadata(http, path)
    assert doc["request_parameter_supported"] is False
    assert doc["request_uri_parameter_supported"] is False


@pytest.mark.parametrize("path", DOCUMENTS)
async def test_every_url_is_https_under_the_issuer(http, path):
    """BCP-46: every endpoint in the document is an https URL of this issuer."""
    doc = await metadata(http, path)
    urls = {k: v for k, v in doc.items() if k.endswith(("_endpoint", "_uri"))}
    assert urls
    for name, url in urls.items():
        assert url.startswith(ISSUER + "/"), (name, url)


@pytest.mark.parametrize("path", DOCUMENTS)
async def test_every_listed_endpoint_answers(http, path):
    """Every endpoint URL listed answers its method with something other than 404 or 405."""
    doc = await metadata(http, path)
    for name, url in doc.items():
        if not name.endswith(("_endpoint", "_uri")):
            continue
        method = "POST" if name in POST_ONLY else "GET"
        response = await http.request(method, url)
        assert response.status_code not in (404, 405), (name, url, response.status_code)


async def test_every_advertised_grant_type_is_known(http, confidential):
    """grant_types_supported is truthful: the token endpoint knows every grant type it lists."""
    grants = (await metadata(http, DOCUMENTS[0]))["grant_types_supported"]
    for grant in grants:
        response = await http.post("/token", auth=basic(confidential), data={"grant_type": grant})
        assert response.json().get("error") != "unsupported_grant_type", grant


async def test_unadvertised_grant_type_is_unsupported(http, confidential):
    """BCP-18: the password grant, not advertised, is unsupported_grant_type."""
    response = await http.post(
        "/token", auth=basic(confidential), data={"grant_type": "password", "username": "alice", "password": "x"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize("path", DOCUMENTS)
async def test_configured_scopes_are_advertised(http, path):
    """scopes_supported lists the OpenID Connect scopes and the operator's own."""
    scopes = (await metadata(http, path))["scopes_supported"]
    assert {"openid", "profile", "email", "offline_access", "calendar.read"} <= set(scopes)


# --- JWKS ----------------------------------------------------------------------------------------------------------


async def test_jwks_content_type(http):
    """RFC 7517 §8.5: the key set is served as JSON."""
    response = await http.get("/jwks")
    assert response.headers["content-type"].split(";")[0] in ("application/jwk-set+json", "application/json")


async def test_every_key_has_a_unique_kid(http):
    """OIDC-03: every published key carries a kid, and no two share one."""
    keys = await jwks(http)
    kids = [k.get("kid") for k in keys]
    assert keys
    assert all(kids)
    assert len(set(kids)) == len(kids)


async def test_jwks_has_no_private_members(http):
    """The JWKS carries public keys only: none of d, p, q, dp, dq, qi, oth or k."""
    for key in await jwks(http):
        assert not PRIVATE_MEMBERS & set(key), key


async def test_jwks_covers_advertised_signing_algs(http):
    """Every ID token signing algorithm advertised has a key with that alg in the JWKS."""
    algs = (await metadata(http, DOCUMENTS[1]))["id_token_signing_alg_values_supported"]
    published = {k["alg"] for k in await jwks(http)}
    assert set(algs) <= published


async def test_access_token_kid_is_published(http, confidential):
    """An access token's kid names a key in the JWKS."""
    token = await client_credentials_token(http, confidential)
    assert jwt_header(token)["kid"] in {k["kid"] for k in await jwks(http)}


# --- rotation: OIDC-14 ---------------------------------------------------------------------------------------------


async def test_rotation_keeps_old_active_key_as_retired(http, fd):
    """OIDC-14: after rotation the old active key is retired but still published."""
    old_active = kids_by_state(fd, "ES256")["active"][0]
    fd.keys.rotate()
    assert old_active in kids_by_state(fd, "ES256")["retired"]
    assert old_active in {k["kid"] for k in await jwks(http)}


async def test_rotation_publishes_a_new_next_key(http, fd):
    """OIDC-14: rotation publishes a fresh next key, with a kid never seen before."""
    before = {k["kid"] for k in await jwks(http)}
    fd.keys.rotate()
    new_next = kids_by_state(fd, "ES256")["next"]
    assert len(new_next) == 1
    assert new_next[0] not in before
    assert new_next[0] in {k["kid"] for k in await jwks(http)}


async def test_access_token_after_rotation_uses_previous_next_key(http, fd, confidential):
    """A token minted after rotation is signed by the key that was published as next before it, never the new one."""
    published_before = {k["kid"] for k in await jwks(http)}
    old_next = kids_by_state(fd, fd.settings.access_token_alg)["next"][0]
    fd.keys.rotate()
    kid = jwt_header(await client_credentials_token(http, confidential))["kid"]
    assert kid == old_next
    assert kid in published_before
    assert kid not in kids_by_state(fd, fd.settings.access_token_alg)["next"]


async def test_id_token_after_rotation_uses_previous_next_key(http, fd, browser, confidential):
    """An ID token minted after rotation is signed by the key that was published as next before rotation."""
    old_next = kids_by_state(fd, fd.settings.id_token_alg)["next"][0]
    fd.keys.rotate()
    tokens = await code_flow_tokens(http, browser, confidential)
    assert jwt_header(tokens["id_token"])["kid"] == old_next


async def test_token_from_before_rotation_still_verifies(http, fd, browser, confidential):
    """A token signed by the now-retired key is still accepted (UserInfo) after rotation."""
    tokens = await code_flow_tokens(http, browser, confidential)
    fd.keys.rotate()
    response = await http.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert response.status_code == 200, response.text
