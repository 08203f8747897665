"""The upstream provider peer on its own: node-oidc-provider v9 started by ``running_op`` and driven by hand with httpx
(discovery, the code flow with PKCE through its sign-in and consent pages, refresh rotation, the protected API, access
token expiry, and the admin surface the vault tests rely on)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from .oidc_provider import Op, OpAccount, OpClient, PeerError, SignInError, running_op, sign_in_and_consent

pytestmark = pytest.mark.interop

REDIRECT_URI = "http://127.0.0.1:9/callback"  # never fetched: sign_in_and_consent stops at the redirect
BASIC = OpClient("vault", "vault-secret-" + "x" * 32, [REDIRECT_URI])
POST = OpClient(
    "vault-post", "post-secret-" + "y" * 32, [REDIRECT_URI], token_endpoint_auth_method="client_secret_post"
)
ALICE = OpAccount("alice", "alice@example.com", "alice password", name="Alice Example")
BOB = OpAccount("bob", "bob@example.com", "bob password")
CAROL = OpAccount("carol", "carol@example.com", "carol password")
SCOPE = "openid email profile offline_access calendar.read"


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Op]:
    with running_op(
        tmp_path_factory.mktemp("op"), clients=[BASIC, POST], accounts=[ALICE, BOB, CAROL], access_token_ttl=300
    ) as running:
        yield running


@pytest.fixture(scope="module")
def short_op(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Op]:
    """Access tokens that live 2 s, and no admin surface."""
    with running_op(
        tmp_path_factory.mktemp("short-op"), clients=[BASIC], accounts=[ALICE], access_token_ttl=2, admin=False
    ) as running:
        yield running


def _b64url_json(segment: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return data


def _authorize(
    op: Op, client: OpClient, *, scope: str = SCOPE, pkce: bool = True, prompt: str | None = None
) -> tuple[str, dict[str, str]]:
    """An authorization URL at the provider and the values the client keeps (state, nonce, code_verifier)."""
    verifier = secrets.token_urlsafe(48)
    kept = {"state": secrets.token_urlsafe(16), "nonce": secrets.token_urlsafe(16), "code_verifier": verifier}
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "state": kept["state"],
        "nonce": kept["nonce"],
    }
    if prompt is not None:
        params["prompt"] = prompt
    if pkce:
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    endpoint = op.metadata()["authorization_endpoint"]
    return str(httpx.URL(endpoint, params=params)), kept


def _callback(op: Op, location: str, kept: dict[str, str]) -> dict[str, str]:
    assert location.startswith(REDIRECT_URI + "?"), location
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert params["state"] == kept["state"]
    assert params["iss"] == op.issuer  # RFC 9207
    return params


def _token(op: Op, client: OpClient, form: dict[str, str]) -> httpx.Response:
    endpoint = op.metadata()["token_endpoint"]
    if client.token_endpoint_auth_method == "client_secret_post":
        form = {**form, "client_id": client.client_id, "client_secret": client.client_secret}
        return op.http.post(endpoint, data=form)
    return op.http.post(endpoint, data=form, auth=(client.client_id, client.client_secret))


def _code_flow(
    op: Op, client: OpClient, account: OpAccount, *, scope: str = SCOPE, prompt: str | None = None
) -> dict[str, Any]:
    url, kept = _authorize(op, client, scope=scope, prompt=prompt)
    params = _callback(op, sign_in_and_consent(url, account.email, account.password), kept)
    response = _token(
        op,
        client,
        {
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": kept["code_verifier"],
        },
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    claims = _b64url_json(tokens["id_token"].split(".")[1])
    assert claims["iss"] == op.issuer
    assert claims["aud"] == client.client_id
    assert claims["nonce"] == kept["nonce"]
    assert claims["sub"] == account.id
    return tokens


def _refresh(op: Op, client: OpClient, refresh_token: str) -> httpx.Response:
    return _token(op, client, {"grant_type": "refresh_token", "refresh_token": refresh_token})


def _me(op: Op, access_token: str) -> httpx.Response:
    return op.http.get("/api/me", headers={"Authorization": f"Bearer {access_token}"})


def _assert_invalid_grant(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"


def test_discovery(op: Op):
    metadata = op.metadata()
    assert metadata["issuer"] == op.issuer == f"http://127.0.0.1:{op.port}"
    for endpoint in ("authorization", "token", "userinfo", "revocation", "introspection"):
        assert metadata[f"{endpoint}_endpoint"].startswith(op.issuer + "/")
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["response_types_supported"] == ["code"]
    assert {"authorization_code", "refresh_token"} <= set(metadata["grant_types_supported"])
    assert {"openid", "email", "profile", "offline_access", "calendar.read"} <= set(metadata["scopes_supported"])
    assert {"client_secret_basic", "client_secret_post"} <= set(metadata["token_endpoint_auth_methods_supported"])
    jwks = op.http.get(metadata["jwks_uri"]).json()
    assert [key["kty"] for key in jwks["keys"]] == ["RSA"]
    assert "d" not in jwks["keys"][0]


def test_code_flow_with_pkce_and_client_secret_basic(op: Op):
    tokens = _code_flow(op, BASIC, ALICE)
    assert tokens["token_type"] == "Bearer"
    assert tokens["access_token"]
    assert tokens["refresh_token"]  # offline_access without prompt=consent: the peer adds the prompt
    assert tokens["expires_in"] == 300
    assert set(tokens["scope"].split()) == set(SCOPE.split())
    assert _b64url_json(tokens["id_token"].split(".")[1])["email"] == ALICE.email
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    userinfo = op.http.get(op.metadata()["userinfo_endpoint"], headers=bearer)
    assert userinfo.status_code == 200, userinfo.text
    assert userinfo.json() == {
        "sub": "alice",
        "email": ALICE.email,
        "email_verified": True,
        "name": "Alice Example",
    }


def test_code_flow_with_client_secret_post(op: Op):
    tokens = _code_flow(op, POST, BOB, scope="openid email offline_access")
    assert tokens["refresh_token"]
    assert _refresh(op, POST, tokens["refresh_token"]).status_code == 200


def test_pkce_is_required_and_checked(op: Op):
    url, kept = _authorize(op, BASIC, pkce=False)
    location = op.http.get(url).headers["location"]
    params = _callback(op, location, kept)
    assert params["error"] == "invalid_request"
    assert "PKCE" in params["error_description"]

    url, kept = _authorize(op, BASIC)
    params = _callback(op, sign_in_and_consent(url, ALICE.id, ALICE.password), kept)
    form = {"grant_type": "authorization_code", "code": params["code"], "redirect_uri": REDIRECT_URI}
    _assert_invalid_grant(_token(op, BASIC, {**form, "code_verifier": secrets.token_urlsafe(48)}))


def test_no_offline_access_no_refresh_token(op: Op):
    tokens = _code_flow(op, BASIC, ALICE, scope="openid email")
    assert "refresh_token" not in tokens
    assert tokens["scope"] == "openid email"


def test_sign_in_refused_and_consent_denied(op: Op):
    url, _ = _authorize(op, BASIC)
    with pytest.raises(SignInError, match="Invalid email or password"):
        sign_in_and_consent(url, ALICE.email, "wrong password")

    url, kept = _authorize(op, BASIC)
    params = _callback(op, sign_in_and_consent(url, ALICE.email, ALICE.password, consent=False), kept)
    assert params["error"] == "access_denied"


def test_refresh_rotates_and_reuse_fails(op: Op):
    first = _code_flow(op, BASIC, ALICE)
    response = _refresh(op, BASIC, first["refresh_token"])
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert _me(op, second["access_token"]).status_code == 200

    third = _refresh(op, BASIC, second["refresh_token"]).json()
    assert third["refresh_token"] not in (first["refresh_token"], second["refresh_token"])

    # The rotated-out token is refused; oidc-provider then treats the reuse as theft and revokes the whole grant,
    # so the newest refresh token dies with it.
    _assert_invalid_grant(_refresh(op, BASIC, second["refresh_token"]))
    _assert_invalid_grant(_refresh(op, BASIC, third["refresh_token"]))


def test_protected_api(op: Op):
    tokens = _code_flow(op, BASIC, ALICE)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}

    me = _me(op, tokens["access_token"])
    assert me.status_code == 200, me.text
    assert me.json() == {
        "sub": "alice",
        "client_id": "vault",
        "scope": tokens["scope"],
        "email": ALICE.email,
        "email_verified": True,
    }
    calendar = op.http.get("/api/calendar", headers=bearer)
    assert calendar.status_code == 200
    assert calendar.json()["events"]

    echo = op.http.post("/api/echo/things?x=1&y=two", headers={**bearer, "X-Custom": "kept"}, json={"hello": "world"})
    assert echo.status_code == 200, echo.text
    body = echo.json()
    assert (body["method"], body["path"], body["query"]) == ("POST", "/api/echo/things", {"x": "1", "y": "two"})
    assert body["json"] == {"hello": "world"}
    assert body["headers"]["x-custom"] == "kept"
    assert "authorization" not in body["headers"]

    for value in ("not-a-token", tokens["access_token"] + "x"):
        refused = _me(op, value)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith('Bearer realm="api", error="invalid_token"')
    anonymous = op.http.get("/api/me")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="api"'

    narrow = _code_flow(op, BASIC, ALICE, scope="openid email")
    forbidden = op.http.get("/api/calendar", headers={"Authorization": f"Bearer {narrow['access_token']}"})
    assert forbidden.status_code == 403
    assert 'error="insufficient_scope"' in forbidden.headers["www-authenticate"]


def test_access_token_expires_after_its_ttl(short_op: Op):
    tokens = _code_flow(short_op, BASIC, ALICE)
    assert tokens["expires_in"] == 2
    issued = time.monotonic()
    assert _me(short_op, tokens["access_token"]).status_code == 200
    while (response := _me(short_op, tokens["access_token"])).status_code == 200:
        assert time.monotonic() - issued < 4.0, "the access token outlived its 2 s lifetime"
        time.sleep(0.1)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]

    refreshed = _refresh(short_op, BASIC, tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert _me(short_op, refreshed.json()["access_token"]).status_code == 200


def test_revoke_all_ends_the_grants_of_that_account_only(op: Op):
    carol = _code_flow(op, BASIC, CAROL)
    carol_again = _code_flow(op, POST, CAROL)
    bob = _code_flow(op, BASIC, BOB)

    assert op.revoke_all("carol") == 2
    _assert_invalid_grant(_refresh(op, BASIC, carol["refresh_token"]))
    _assert_invalid_grant(_refresh(op, POST, carol_again["refresh_token"]))
    assert _me(op, carol["access_token"]).status_code == 401
    assert op.revoke_all("carol") == 0

    assert _refresh(op, BASIC, bob["refresh_token"]).status_code == 200
    # Signing in again afterwards asks for consent again and works.
    fresh = _code_flow(op, BASIC, CAROL)
    assert _refresh(op, BASIC, fresh["refresh_token"]).status_code == 200


def test_counts(op: Op):
    op.reset_counts()
    assert op.refresh_count() == 0
    tokens = _code_flow(op, BASIC, BOB)
    assert op.refresh_count() == 0
    rotated = _refresh(op, BASIC, tokens["refresh_token"]).json()
    _refresh(op, BASIC, rotated["refresh_token"])
    _assert_invalid_grant(_refresh(op, BASIC, "no-such-refresh-token"))
    assert op.refresh_count() == 3
    counts = op.counts()
    assert counts["refresh_token"] == {"requests": 3, "succeeded": 2}
    assert counts["authorization_code"] == {"requests": 1, "succeeded": 1}
    op.reset_counts()
    assert op.counts() == {}


def test_admin_surface_needs_the_secret(op: Op, short_op: Op):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {op.admin_secret}x"}):
        assert op.http.get("/__test__/counts", headers=headers).status_code == 404
    assert op.http.get("/__test__/counts", headers={"Authorization": f"Bearer {op.admin_secret}"}).status_code == 200
    assert short_op.admin_secret is None
    assert short_op.http.get("/__test__/counts", headers={"Authorization": "Bearer anything"}).status_code == 404
    with pytest.raises(PeerError, match="without an admin secret"):
        short_op.refresh_count()


def test_strict_offline_access_needs_prompt_consent(tmp_path_factory: pytest.TempPathFactory):
    """oidc-provider's stock rule, kept with strict_offline_access: offline_access without prompt=consent is dropped
    (so no refresh token); with prompt=consent it is granted."""
    with running_op(
        tmp_path_factory.mktemp("strict-op"), clients=[BASIC], accounts=[ALICE], strict_offline_access=True
    ) as strict:
        assert "refresh_token" not in _code_flow(strict, BASIC, ALICE)
        assert "refresh_token" in _code_flow(strict, BASIC, ALICE, prompt="consent")
