"""DPoP (RFC 9449) at the token endpoint, introspection and discovery, over HTTP on both databases; and the proof
check this server's own resources use (``oauth.dpop.verify_resource_proof``)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import httpx
import pytest
from starlette.datastructures import Headers

from conftest import ISSUER, RS1, Clock, Registered, basic, code_for, pkce, query
from dpop_proofs import ath_of, claims_of, jkt_of, new_key, proof
from frontdesk.asgi import open_frontdesk
from frontdesk.cli import clients as client_cli
from frontdesk.cli import main
from frontdesk.config import Dpop
from frontdesk.core import Frontdesk
from frontdesk.errors import InvalidDpopProof
from frontdesk.oauth.dpop import (
    ResourceProofRefused,
    require_for_client,
    require_for_resource,
    spend_proof,
    token_proof,
    verify_resource_proof,
)
from frontdesk.oauth.resources import create as create_resource

RESOURCE_URL = f"{ISSUER}/vault/proxy/calendar/events"


async def client_credentials(http: httpx.AsyncClient, client: Registered, *dpop: str, **extra: str) -> httpx.Response:
    headers = [("DPoP", value) for value in dpop]
    data = {"grant_type": "client_credentials", **extra}
    return await http.post("/token", auth=basic(client), data=data, headers=headers)


def require_nonces(fd: Frontdesk, lifetime: int = 300) -> None:
    fd.settings = dataclasses.replace(fd.settings, dpop=Dpop(require_nonce=True, nonce_lifetime=lifetime))


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256", "PS256"])
async def test_a_proof_binds_the_access_token_to_its_key(
    http: httpx.AsyncClient, confidential: Registered, alg: str
) -> None:
    key = new_key("RS256" if alg == "PS256" else alg)
    response = await client_credentials(http, confidential, proof(key, alg=alg))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "DPoP"
    assert claims_of(body["access_token"])["cnf"] == {"jkt": jkt_of(key)}


async def test_without_a_proof_the_token_is_a_bearer_token(http: httpx.AsyncClient, confidential: Registered) -> None:
    body = (await client_credentials(http, confidential)).json()
    assert body["token_type"] == "Bearer"
    assert "cnf" not in claims_of(body["access_token"])


@pytest.mark.parametrize(
    "spoil",
    [
        {"drop": ("typ",)},
        {"header": {"typ": "JWT"}},
        {"drop": ("jwk",)},
        {"drop": ("jti",)},
        {"drop": ("htm",)},
        {"drop": ("htu",)},
        {"drop": ("iat",)},
        {"htm": "GET"},
        {"htu": f"{ISSUER}/introspect"},
        {"htu": "https://other.example/token"},
        {"iat": "yesterday"},
    ],
    ids=repr,
)
async def test_a_malformed_proof_is_invalid_dpop_proof(
    http: httpx.AsyncClient, confidential: Registered, spoil: dict[str, Any]
) -> None:
    response = await client_credentials(http, confidential, proof(new_key(), **spoil))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_dpop_proof"


async def test_a_proof_signed_by_another_key_than_its_jwk_is_refused(
    http: httpx.AsyncClient, confidential: Registered
) -> None:
    other = new_key().as_dict(private=False)
    response = await client_credentials(http, confidential, proof(new_key(), header={"jwk": other}))
    assert response.json()["error"] == "invalid_dpop_proof"


async def test_a_proof_that_is_no_jwt_is_refused(http: httpx.AsyncClient, confidential: Registered) -> None:
    response = await client_credentials(http, confidential, "not.a-jwt")
    assert (response.status_code, response.json()["error"]) == (400, "invalid_dpop_proof")


async def test_the_htu_compares_after_normalisation(http: httpx.AsyncClient, confidential: Registered) -> None:
    response = await client_credentials(http, confidential, proof(new_key(), htu="HTTPS://AS.EXAMPLE:443/token?x=1#f"))
    assert response.status_code == 200, response.text


async def test_a_replayed_proof_is_refused(http: httpx.AsyncClient, confidential: Registered) -> None:
    once = proof(new_key())
    assert (await client_credentials(http, confidential, once)).status_code == 200
    again = await client_credentials(http, confidential, once)
    assert (again.status_code, again.json()["error"]) == (400, "invalid_dpop_proof")


async def test_a_replay_is_refused_by_another_process(fd: Frontdesk) -> None:
    """The jti is spent in the shared store: a second frontdesk on the same database refuses the same proof."""
    once = proof(new_key())
    spend_proof(fd, token_proof(fd, [once]))
    other = open_frontdesk(fd.settings, run_migrations=False, ensure_keys=False)
    try:
        with pytest.raises(InvalidDpopProof, match="used already"):
            spend_proof(other, token_proof(other, [once]))
    finally:
        other.close()


async def test_a_proof_outside_the_window_is_refused(
    http: httpx.AsyncClient, confidential: Registered, clock: Clock
) -> None:
    stale = proof(new_key())
    clock.advance(fd_window := 61)
    assert fd_window > Dpop().proof_window
    response = await client_credentials(http, confidential, stale)
    assert response.json()["error"] == "invalid_dpop_proof"


async def test_a_nonce_is_required_when_configured(
    http: httpx.AsyncClient, fd: Frontdesk, confidential: Registered
) -> None:
    require_nonces(fd)
    key = new_key()
    first = await client_credentials(http, confidential, proof(key))
    assert (first.status_code, first.json()["error"]) == (400, "use_dpop_nonce")
    assert len(first.headers.get_list("dpop-nonce")) == 1
    nonce = first.headers["dpop-nonce"]
    second = await client_credentials(http, confidential, proof(key, nonce=nonce))
    assert second.status_code == 200, second.text
    assert second.headers["dpop-nonce"] == nonce


async def test_a_stale_nonce_earns_a_fresh_one(
    http: httpx.AsyncClient, fd: Frontdesk, confidential: Registered, clock: Clock
) -> None:
    require_nonces(fd, lifetime=60)
    key = new_key()
    nonce = (await client_credentials(http, confidential, proof(key))).headers["dpop-nonce"]
    clock.advance(121)
    response = await client_credentials(http, confidential, proof(key, now=clock(), nonce=nonce))
    assert response.json()["error"] == "use_dpop_nonce"
    assert response.headers["dpop-nonce"] != nonce


async def test_without_the_setting_a_proof_needs_no_nonce_but_a_wrong_one_is_refused(
    http: httpx.AsyncClient, confidential: Registered
) -> None:
    assert (await client_credentials(http, confidential, proof(new_key()))).status_code == 200
    response = await client_credentials(http, confidential, proof(new_key(), nonce="made-up"))
    assert response.json()["error"] == "use_dpop_nonce"


async def public_tokens(http: httpx.AsyncClient, browser: Any, client: Registered, key: Any) -> dict[str, Any]:
    code, verifier = await code_for(browser, client, scope="openid offline_access")
    data = {"grant_type": "authorization_code", "client_id": client.client_id, "code": code, "code_verifier": verifier}
    response = await http.post("/token", data=data, headers={"DPoP": proof(key)})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refresh(http: httpx.AsyncClient, client: Registered, token: str, *dpop: str) -> httpx.Response:
    data = {"grant_type": "refresh_token", "client_id": client.client_id, "refresh_token": token}
    return await http.post("/token", data=data, headers=[("DPoP", v) for v in dpop])


async def test_a_public_clients_refresh_token_is_bound_to_the_key(
    http: httpx.AsyncClient, browser: Any, public: Registered
) -> None:
    key = new_key()
    tokens = await public_tokens(http, browser, public, key)
    assert tokens["token_type"] == "DPoP"
    other = await refresh(http, public, tokens["refresh_token"], proof(new_key()))
    assert (other.status_code, other.json()["error"]) == (400, "invalid_grant")
    bare = await refresh(http, public, tokens["refresh_token"])
    assert bare.json()["error"] == "invalid_grant"
    same = await refresh(http, public, tokens["refresh_token"], proof(key))
    assert same.status_code == 200, same.text
    assert claims_of(same.json()["access_token"])["cnf"]["jkt"] == jkt_of(key)


async def test_a_confidential_clients_refresh_token_is_not_bound(
    http: httpx.AsyncClient, browser: Any, confidential: Registered
) -> None:
    code, verifier = await code_for(browser, confidential, scope="openid offline_access")
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    tokens = (await http.post("/token", auth=basic(confidential), data=data, headers={"DPoP": proof(new_key())})).json()
    data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    response = await http.post("/token", auth=basic(confidential), data=data)
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "Bearer"


async def test_dpop_jkt_at_authorize_must_match_the_proof(
    http: httpx.AsyncClient, browser: Any, public: Registered
) -> None:
    key = new_key()
    code, verifier = await code_for(browser, public, scope="openid", dpop_jkt=jkt_of(key))
    data = {"grant_type": "authorization_code", "client_id": public.client_id, "code": code, "code_verifier": verifier}
    wrong = await http.post("/token", data=data, headers={"DPoP": proof(new_key())})
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    missing = await http.post("/token", data=data)
    assert missing.json()["error"] == "invalid_grant"
    right = await http.post("/token", data=data, headers={"DPoP": proof(key)})
    assert right.status_code == 200, right.text


async def test_a_malformed_dpop_jkt_is_an_error_redirect(browser: Any, public: Registered) -> None:
    _verifier, challenge = pkce()
    response = await browser.authorize(
        response_type="code",
        client_id=public.client_id,
        redirect_uri=public.redirect_uri,
        code_challenge=challenge,
        code_challenge_method="S256",
        dpop_jkt="not-a-thumbprint",
    )
    assert query(response.headers["location"]).get("error") == "invalid_request", response.headers["location"]


async def test_a_client_that_requires_dpop_is_refused_without_a_proof(
    http: httpx.AsyncClient, fd: Frontdesk, confidential: Registered
) -> None:
    require_for_client(fd, confidential.client_id, True)
    response = await client_credentials(http, confidential)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_dpop_proof")
    assert (await client_credentials(http, confidential, proof(new_key()))).status_code == 200


async def test_a_resource_that_requires_dpop_gets_only_bound_tokens(
    http: httpx.AsyncClient, fd: Frontdesk, confidential: Registered
) -> None:
    create_resource(fd, RS1, "Resource server one")
    require_for_resource(fd, RS1, True)
    bare = await client_credentials(http, confidential, resource=RS1)
    assert bare.json()["error"] == "invalid_dpop_proof"
    bound = await client_credentials(http, confidential, proof(new_key()), resource=RS1)
    assert bound.status_code == 200, bound.text


async def test_introspection_returns_cnf(http: httpx.AsyncClient, confidential: Registered) -> None:
    key = new_key()
    token = (await client_credentials(http, confidential, proof(key))).json()["access_token"]
    answer = (await http.post("/introspect", auth=basic(confidential), data={"token": token})).json()
    assert answer["active"] is True
    assert answer["token_type"] == "DPoP"
    assert answer["cnf"] == {"jkt": jkt_of(key)}


async def test_discovery_lists_the_proof_algorithms(http: httpx.AsyncClient) -> None:
    document = (await http.get("/.well-known/openid-configuration")).json()
    assert document["dpop_signing_alg_values_supported"] == ["ES256", "EdDSA", "RS256", "PS256"]


def _headers(token: str, *dpop: str, scheme: str = "DPoP") -> Headers:
    raw = [(b"authorization", f"{scheme} {token}".encode())] + [(b"dpop", v.encode()) for v in dpop]
    return Headers(raw=raw)


BOUND = "eyJ.bound.token"


def test_a_resource_accepts_a_bound_token_with_its_proof(fd: Frontdesk) -> None:
    key = new_key()
    claims = {"cnf": {"jkt": jkt_of(key)}}
    good = proof(key, "GET", RESOURCE_URL, ath=ath_of(BOUND))
    verify_resource_proof(fd, "GET", RESOURCE_URL, _headers(BOUND, good), claims)


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("as bearer", "invalid_token"),
        ("no proof", "invalid_dpop_proof"),
        ("wrong ath", "invalid_dpop_proof"),
        ("other key", "invalid_dpop_proof"),
        ("other method", "invalid_dpop_proof"),
        ("replayed", "invalid_dpop_proof"),
    ],
)
def test_a_resource_refuses_a_bound_token_without_its_proof(fd: Frontdesk, case: str, error: str) -> None:
    key = new_key()
    claims = {"cnf": {"jkt": jkt_of(key)}}
    good = proof(key, "GET", RESOURCE_URL, ath=ath_of(BOUND))
    headers = {
        "as bearer": _headers(BOUND, good, scheme="Bearer"),
        "no proof": _headers(BOUND),
        "wrong ath": _headers(BOUND, proof(key, "GET", RESOURCE_URL, ath=ath_of("another"))),
        "other key": _headers(BOUND, proof(new_key(), "GET", RESOURCE_URL, ath=ath_of(BOUND))),
        "other method": _headers(BOUND, proof(key, "POST", RESOURCE_URL, ath=ath_of(BOUND))),
        "replayed": _headers(BOUND, good),
    }[case]
    if case == "replayed":
        verify_resource_proof(fd, "GET", RESOURCE_URL, headers, claims)
    with pytest.raises(ResourceProofRefused) as refused:
        verify_resource_proof(fd, "GET", RESOURCE_URL, headers, claims)
    assert refused.value.error == error
    assert refused.value.headers()["WWW-Authenticate"].startswith('DPoP algs="ES256 EdDSA RS256 PS256"')


def test_a_bearer_token_is_not_accepted_as_dpop(fd: Frontdesk) -> None:
    key = new_key()
    with pytest.raises(ResourceProofRefused):
        verify_resource_proof(fd, "GET", RESOURCE_URL, _headers(BOUND, proof(key, "GET", RESOURCE_URL)), {})
    verify_resource_proof(fd, "GET", RESOURCE_URL, _headers(BOUND, scheme="Bearer"), {})


def test_a_resource_asks_for_the_nonce_when_required(fd: Frontdesk) -> None:
    require_nonces(fd)
    key = new_key()
    claims = {"cnf": {"jkt": jkt_of(key)}}
    headers = _headers(BOUND, proof(key, "GET", RESOURCE_URL, ath=ath_of(BOUND)))
    with pytest.raises(ResourceProofRefused) as refused:
        verify_resource_proof(fd, "GET", RESOURCE_URL, headers, claims)
    assert refused.value.error == "use_dpop_nonce"
    assert refused.value.headers()["DPoP-Nonce"]


async def test_userinfo_needs_the_proof_of_a_bound_token(
    http: httpx.AsyncClient, browser: Any, public: Registered
) -> None:
    key = new_key()
    access = (await public_tokens(http, browser, public, key))["access_token"]
    as_bearer = await http.get("/userinfo", headers={"Authorization": f"Bearer {access}"})
    assert as_bearer.status_code == 401
    assert as_bearer.headers["www-authenticate"].startswith("DPoP algs=")
    url = f"{ISSUER}/userinfo"
    with_proof = {"Authorization": f"DPoP {access}", "DPoP": proof(key, "GET", url, ath=ath_of(access))}
    response = await http.get("/userinfo", headers=with_proof)
    assert response.status_code == 200, response.text


def test_client_create_and_update_set_dpop_bound_access_tokens(
    fd: Frontdesk, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """RFC 9449 §5.2 on the command line: create --dpop-bound-access-tokens, update --no-dpop-bound-access-tokens."""
    monkeypatch.setattr(client_cli, "open_for", lambda args: fd)
    argv = ["client", "create", "--name", "Agent", "--public", "--redirect-uri", "http://127.0.0.1/cb"]
    assert main([*argv, "--client-id", "agent", "--dpop-bound-access-tokens", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["dpop_bound_access_tokens"] is True
    assert main(["client", "update", "agent", "--no-dpop-bound-access-tokens", "--json"]) == 0
    assert "dpop_bound_access_tokens" not in json.loads(capsys.readouterr().out)
    client = fd.clients.get("agent", cached=False)
    assert client is not None
    assert client.dpop_bound_access_tokens is False


async def test_dynamic_registration_takes_dpop_bound_access_tokens(http: httpx.AsyncClient) -> None:
    body = {"client_name": "Agent", "redirect_uris": ["https://agent.example/cb"], "dpop_bound_access_tokens": True}
    response = await http.post("/register", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["dpop_bound_access_tokens"] is True
    bad = await http.post("/register", json={**body, "dpop_bound_access_tokens": "yes"})
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_client_metadata")
