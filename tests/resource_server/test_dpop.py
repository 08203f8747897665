"""The kit and DPoP-bound tokens (RFC 9449 §7) on the wire, with real frontdesk tokens and real proofs; and the kit's
copy of the proof checks held to the server's verdicts."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import remember
from dpop_proofs import TOKEN_URL, ath_of, new_key, proof
from frontdesk.errors import InvalidDpopProof as FrontdeskInvalidDpopProof
from frontdesk.protocol import rfc9449 as server
from frontdesk.resource_server import DpopVerifier, InvalidDpopProof, JWTValidator, ProtectedResource
from frontdesk.resource_server import rfc9449 as kit

from .conftest import READ, RESOURCE, Caller
from .test_asgi import guarded

URL = "https://tools.example/mcp"


async def bound_token(caller: Caller, key: Any) -> str:
    response = await caller.http.post(
        "/token",
        auth=(caller.client_id, caller.secret),
        data={"grant_type": "client_credentials", "scope": READ, "resource": RESOURCE},
        headers={"DPoP": proof(key)},
    )
    assert response.json()["token_type"] == "DPoP", response.text
    token: str = response.json()["access_token"]
    remember(caller.seen, token)
    return token


@pytest.fixture
def api(validator: JWTValidator, resource: ProtectedResource) -> httpx.AsyncClient:
    return guarded(validator, resource)


async def test_a_bound_token_with_its_proof_is_accepted(api: httpx.AsyncClient, caller: Caller) -> None:
    key = new_key()
    token = await bound_token(caller, key)
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof(key, "GET", URL, ath=ath_of(token))}
    response = await api.get("/mcp", headers=headers)
    assert response.status_code == 200, response.text


async def test_a_bound_token_as_bearer_is_401_with_a_dpop_challenge(api: httpx.AsyncClient, caller: Caller) -> None:
    token = await bound_token(caller, new_key())
    response = await api.get("/mcp", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('DPoP algs="ES256 EdDSA RS256 PS256", error="invalid_token"')


@pytest.mark.parametrize("case", ["no proof", "other key", "wrong ath", "other url", "other method", "stale"])
async def test_a_bound_token_without_a_good_proof_is_refused(api: httpx.AsyncClient, caller: Caller, case: str) -> None:
    key = new_key()
    token = await bound_token(caller, key)
    proofs = {
        "no proof": [],
        "other key": [proof(new_key(), "GET", URL, ath=ath_of(token))],
        "wrong ath": [proof(key, "GET", URL, ath=ath_of("other"))],
        "other url": [proof(key, "GET", "https://tools.example/other", ath=ath_of(token))],
        "other method": [proof(key, "POST", URL, ath=ath_of(token))],
        "stale": [proof(key, "GET", URL, ath=ath_of(token), now=time.time() - 600)],
    }[case]
    headers = [("Authorization", f"DPoP {token}"), *(("DPoP", p) for p in proofs)]
    response = await api.get("/mcp", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_dpop_proof"
    assert response.headers["www-authenticate"].startswith("DPoP algs=")


async def test_a_replayed_proof_is_refused(api: httpx.AsyncClient, caller: Caller) -> None:
    key = new_key()
    token = await bound_token(caller, key)
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof(key, "GET", URL, ath=ath_of(token))}
    assert (await api.get("/mcp", headers=headers)).status_code == 200
    again = await api.get("/mcp", headers=headers)
    assert (again.status_code, again.json()["error"]) == (401, "invalid_dpop_proof")


async def test_a_bearer_token_sent_as_dpop_is_refused(api: httpx.AsyncClient, caller: Caller) -> None:
    token = await caller.token()
    headers = {"Authorization": f"dpop {token}", "DPoP": proof(new_key(), "GET", URL, ath=ath_of(token))}
    response = await api.get("/mcp", headers=headers)
    assert (response.status_code, response.json()["error"]) == (401, "invalid_token")
    assert (await api.get("/mcp", headers={"Authorization": f"Bearer {token}"})).status_code == 200


def test_the_replay_cache_is_bounded() -> None:
    verifier = DpopVerifier(max_remembered=3)
    key = new_key()
    jkt = kit._thumbprint(key.as_dict(private=False))
    for _ in range(5):
        verifier.verify("GET", URL, "t", [proof(key, "GET", URL, ath=ath_of("t"))], jkt)
    assert len(verifier._seen) == 3


def test_a_public_url_replaces_the_origin_behind_a_proxy() -> None:
    verifier = DpopVerifier(public_url="https://tools.example")
    key = new_key()
    claims = {"cnf": {"jkt": kit._thumbprint(key.as_dict(private=False))}}
    good = proof(key, "GET", URL, ath=ath_of("t"))
    verifier.check("dpop", "t", claims, "GET", "http://10.0.0.7:8080/mcp", [good])
    with pytest.raises(InvalidDpopProof):
        DpopVerifier().check("dpop", "t", claims, "GET", "http://10.0.0.7:8080/mcp", [good])


_spellings = st.sampled_from(
    [
        "https://as.example/token",
        "HTTPS://AS.EXAMPLE:443/token",
        "https://as.example/token?q=1#f",
        "https://as.example:8443/token",
        "http://as.example:80/a/./b/../token",
        "https://as.example/%7Etoken",
        "https://as.example/%7etoken",
        "https://[::1]:443/token",
        "https://user@as.example/token",
        "ftp://as.example/token",
        "https://as.example:99999/token",
        "not a url",
    ]
)


@given(_spellings)
def test_the_kit_normalises_htu_as_the_server_does(url: str) -> None:
    try:
        expected: str | None = server.normalize_htu(url)
    except ValueError:
        expected = None
    try:
        got: str | None = kit.normalize_htu(url)
    except ValueError:
        got = None
    assert got == expected


@pytest.mark.parametrize(
    "spoil",
    [{}, {"drop": ("typ",)}, {"htm": "GET"}, {"jti": "x" * 300}, {"now": 1000}, {"header": {"alg": "HS256"}}],
    ids=repr,
)
def test_the_kit_checks_a_proof_as_the_server_does(spoil: dict[str, Any]) -> None:
    key = new_key()
    token = "an-access-token"
    made = proof(key, htu=TOKEN_URL, ath=ath_of(token), **spoil) if "header" not in spoil else _unsigned_alg()
    jkt = kit._thumbprint(key.as_dict(private=False))
    try:
        server.check_proof(made, method="POST", url=TOKEN_URL, now=int(time.time()), window=60, access_token=token)
        server_says = True
    except FrontdeskInvalidDpopProof:
        server_says = False
    try:
        DpopVerifier().verify("POST", TOKEN_URL, token, [made], jkt)
        kit_says = True
    except InvalidDpopProof:
        kit_says = False
    assert kit_says == server_says == (spoil == {})


def _unsigned_alg() -> str:
    head = base64.urlsafe_b64encode(json.dumps({"typ": "dpop+jwt", "alg": "HS256"}).encode()).rstrip(b"=").decode()
    return f"{head}.e30.c2ln"
