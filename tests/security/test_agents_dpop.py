"""RFC 9449 DPoP: one test per item of the agents checklist (../shared/reference/agents-checklist.md §7, AG-DPOP-01…09),
black-box over HTTP on both databases, with real proofs."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from typing import Any

import httpx
import pytest
from starlette.datastructures import Headers

from conftest import ISSUER, Browser, Clock, Registered, basic, code_for
from dpop_proofs import ath_of, claims_of, jkt_of, new_key, proof
from frontdesk.config import Dpop
from frontdesk.core import Frontdesk
from frontdesk.oauth.dpop import ResourceProofRefused, require_for_client, verify_resource_proof

VAULT_URL = f"{ISSUER}/vault/connections"


async def token(http: httpx.AsyncClient, client: Registered, *dpop: str) -> httpx.Response:
    data = {"grant_type": "client_credentials"}
    return await http.post("/token", auth=basic(client), data=data, headers=[("DPoP", v) for v in dpop])


def refused(response: httpx.Response, error: str = "invalid_dpop_proof") -> bool:
    return response.status_code == 400 and response.json()["error"] == error


@pytest.mark.parametrize("missing", ["typ", "alg", "jwk", "jti", "htm", "htu", "iat"])
async def test_AG_DPOP_01_each_required_member_missing_is_rejected(
    http: httpx.AsyncClient, confidential: Registered, missing: str
) -> None:
    made = proof(new_key(), drop=(missing,)) if missing != "alg" else _with_header(proof(new_key()), alg=None)
    assert refused(await token(http, confidential, made))
    document = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert set(document["dpop_signing_alg_values_supported"]) == {"ES256", "EdDSA", "RS256", "PS256"}


def _with_header(good: str, **members: Any) -> str:
    """``good`` with its header members changed (None: removed); the signature no longer matters, as the header
    checks come first."""
    head, body, sig = good.split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    for name, value in members.items():
        if value is None:
            header.pop(name, None)
        else:
            header[name] = value
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return f"{encoded}.{body}.{sig}"


@pytest.mark.parametrize("case", ["two headers", "alg none", "HS256", "private jwk"])
async def test_AG_DPOP_02_proofs_failing_a_check_are_invalid_dpop_proof(
    http: httpx.AsyncClient, confidential: Registered, case: str
) -> None:
    key = new_key()
    proofs = {
        "two headers": lambda: [proof(key), proof(key)],
        "alg none": lambda: [_with_header(proof(key), alg="none")],
        "HS256": lambda: [_with_header(proof(key), alg="HS256")],
        "private jwk": lambda: [proof(key, header={"jwk": key.as_dict(private=True)})],
    }[case]()
    assert refused(await token(http, confidential, *proofs))


async def test_AG_DPOP_03_htu_is_normalised(http: httpx.AsyncClient, confidential: Registered) -> None:
    response = await token(http, confidential, proof(new_key(), htu="HTTPS://AS.EXAMPLE:443/token"))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("case", ["replay", "iat -10 min", "8 KB jti"])
async def test_AG_DPOP_04_replays_and_stale_proofs_are_rejected(
    http: httpx.AsyncClient, confidential: Registered, case: str
) -> None:
    key = new_key()
    if case == "replay":
        made = proof(key)
        assert (await token(http, confidential, made)).status_code == 200
    elif case == "iat -10 min":
        made = proof(key, iat=int(time.time()) - 600)
    else:
        made = proof(key, jti="j" * 8192)
    assert refused(await token(http, confidential, made))


async def test_AG_DPOP_05_a_stale_nonce_gets_a_fresh_header(
    http: httpx.AsyncClient, fd: Frontdesk, confidential: Registered, clock: Clock
) -> None:
    fd.settings = dataclasses.replace(fd.settings, dpop=Dpop(require_nonce=True, nonce_lifetime=60))
    key = new_key()
    first = await token(http, confidential, proof(key))
    assert refused(first, "use_dpop_nonce")
    assert len(first.headers.get_list("dpop-nonce")) == 1
    clock.advance(125)
    stale = await token(http, confidential, proof(key, now=clock(), nonce=first.headers["dpop-nonce"]))
    assert refused(stale, "use_dpop_nonce")
    fresh = stale.headers["dpop-nonce"]
    assert fresh != first.headers["dpop-nonce"]
    assert (await token(http, confidential, proof(key, now=clock(), nonce=fresh))).status_code == 200
    # §9: a resource of this server answers 401 with the DPoP challenge's use_dpop_nonce.
    headers = Headers(
        raw=[
            (b"authorization", b"DPoP t"),
            (b"dpop", proof(key, "GET", VAULT_URL, now=clock(), ath=ath_of("t")).encode()),
        ]
    )
    with pytest.raises(ResourceProofRefused) as at_resource:
        verify_resource_proof(fd, "GET", VAULT_URL, headers, {"cnf": {"jkt": jkt_of(key)}})
    assert at_resource.value.status == 401
    assert at_resource.value.error == "use_dpop_nonce"


async def test_AG_DPOP_06_token_type_dpop_and_cnf_jkt_is_the_thumbprint(
    http: httpx.AsyncClient, confidential: Registered
) -> None:
    key = new_key()
    body = (await token(http, confidential, proof(key))).json()
    assert body["token_type"] == "DPoP"
    assert claims_of(body["access_token"])["cnf"]["jkt"] == jkt_of(key)
    answer = (await http.post("/introspect", auth=basic(confidential), data={"token": body["access_token"]})).json()
    assert answer["cnf"]["jkt"] == jkt_of(key)


async def test_AG_DPOP_07_refresh_with_another_key_is_invalid_grant(
    http: httpx.AsyncClient, browser: Browser, public: Registered, fd: Frontdesk
) -> None:
    key = new_key()
    code, verifier = await code_for(browser, public, scope="openid offline_access")
    data = {"grant_type": "authorization_code", "client_id": public.client_id, "code": code, "code_verifier": verifier}
    rt = (await http.post("/token", data=data, headers={"DPoP": proof(key)})).json()["refresh_token"]
    data = {"grant_type": "refresh_token", "client_id": public.client_id, "refresh_token": rt}
    assert refused(await http.post("/token", data=data, headers={"DPoP": proof(new_key())}), "invalid_grant")
    # §5.2: dpop_bound_access_tokens refuses a request without a proof.
    require_for_client(fd, public.client_id, True)
    assert refused(await http.post("/token", data=data))


async def test_AG_DPOP_08_dpop_jkt_must_match_the_proof_at_the_token_endpoint(
    http: httpx.AsyncClient, browser: Browser, public: Registered
) -> None:
    key = new_key()
    code, verifier = await code_for(browser, public, scope="openid", dpop_jkt=jkt_of(key))
    data = {"grant_type": "authorization_code", "client_id": public.client_id, "code": code, "code_verifier": verifier}
    assert refused(await http.post("/token", data=data, headers={"DPoP": proof(new_key())}), "invalid_grant")


async def test_AG_DPOP_09_a_bound_token_as_bearer_is_401(
    http: httpx.AsyncClient, fd: Frontdesk, confidential: Registered
) -> None:
    key = new_key()
    access = (await token(http, confidential, proof(key))).json()["access_token"]
    claims: dict[str, Any] = claims_of(access)
    good = proof(key, "GET", VAULT_URL, ath=ath_of(access))
    as_bearer = Headers(raw=[(b"authorization", f"Bearer {access}".encode()), (b"dpop", good.encode())])
    with pytest.raises(ResourceProofRefused) as bearer:
        verify_resource_proof(fd, "GET", VAULT_URL, as_bearer, claims)
    assert bearer.value.status == 401
    assert bearer.value.headers()["WWW-Authenticate"].startswith('DPoP algs="')
    as_dpop = Headers(raw=[(b"authorization", f"DPoP {access}".encode()), (b"dpop", good.encode())])
    verify_resource_proof(fd, "GET", VAULT_URL, as_dpop, claims)
