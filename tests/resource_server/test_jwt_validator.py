"""The kit's RFC 9068 validator against a real frontdesk issuing real tokens (client_credentials with
``resource``), on both databases."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx
import pytest
from joserfc.jwk import ECKey

from conftest import ISSUER, Clock
from frontdesk.core import Frontdesk
from frontdesk.resource_server import (
    LEEWAY,
    AuthorizationServerUnavailable,
    InvalidToken,
    JWTValidator,
)

from .conftest import OTHER_RESOURCE, READ, RESOURCE, WRITE, Caller, jwks_fetches


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(token: str) -> tuple[dict[str, object], dict[str, object]]:
    header, payload, _ = token.split(".")
    return (
        json.loads(base64.urlsafe_b64decode(header + "==")),
        json.loads(base64.urlsafe_b64decode(payload + "==")),
    )


async def test_a_token_for_this_resource_is_accepted(caller: Caller, validator: JWTValidator) -> None:
    """A client_credentials token frontdesk issued for this resource validates, and says who and what."""
    verified = await validator.validate(await caller.token(f"{READ} {WRITE}"))
    assert verified.client_id == "agent-backend"
    assert verified.subject == "agent-backend"
    assert verified.scopes == {READ, WRITE}
    assert verified.issuer == ISSUER
    assert verified.audience == (RESOURCE,)
    assert verified.expires_at > time.time()
    assert verified.claims["jti"]
    assert verified.act is None


async def test_a_token_for_another_resource_is_refused(caller: Caller, validator: JWTValidator) -> None:
    """RFC 8707 / MCP: a token frontdesk minted for another MCP server is not good here."""
    with pytest.raises(InvalidToken, match="another resource"):
        await validator.validate(await caller.token(resource=OTHER_RESOURCE))


async def test_a_token_of_another_issuer_is_refused(caller: Caller, http: httpx.AsyncClient) -> None:
    """RFC 9068 §4: ``iss`` must be the trusted issuer exactly, even when the signing key verifies."""
    async with JWTValidator("https://elsewhere.example", RESOURCE, http=http, jwks_uri=f"{ISSUER}/jwks") as other:
        with pytest.raises(InvalidToken, match="another authorization server"):
            await other.validate(await caller.token())


async def test_an_expired_token_is_refused(caller: Caller, http: httpx.AsyncClient, clock: Clock) -> None:
    """Past ``exp`` and the leeway, the token is refused."""
    token = await caller.token()
    _, claims = segments(token)
    async with JWTValidator(ISSUER, RESOURCE, http=http, clock=clock) as validator:
        await validator.validate(token)
        clock.advance(int(str(claims["exp"])) - time.time() + LEEWAY + 1)
        with pytest.raises(InvalidToken, match="expired"):
            await validator.validate(token)


async def test_a_small_clock_skew_is_tolerated(caller: Caller, http: httpx.AsyncClient, clock: Clock) -> None:
    """Within the leeway after ``exp`` (clocks differ a little), the token still validates."""
    token = await caller.token()
    _, claims = segments(token)
    async with JWTValidator(ISSUER, RESOURCE, http=http, clock=clock) as validator:
        clock.advance(int(str(claims["exp"])) - time.time() + LEEWAY - 5)
        assert (await validator.validate(token)).client_id == "agent-backend"


async def test_a_token_issued_in_the_future_is_refused(fd: Frontdesk, validator: JWTValidator) -> None:
    """An ``iat`` beyond the leeway ahead means a wrong clock or a forged token."""
    at = int(time.time()) + 10 * LEEWAY
    claims = {"iss": ISSUER, "aud": RESOURCE, "sub": "s", "client_id": "c", "iat": at, "exp": at + 60, "jti": "j"}
    with pytest.raises(InvalidToken, match="future"):
        await validator.validate(fd.keys.sign(claims, "ES256", typ="at+jwt"))


async def test_a_changed_signature_is_refused(caller: Caller, validator: JWTValidator) -> None:
    header, payload, signature = (await caller.token()).split(".")
    middle = len(signature) // 2
    flipped = signature[:middle] + ("A" if signature[middle] != "A" else "B") + signature[middle + 1 :]
    with pytest.raises(InvalidToken, match="signature"):
        await validator.validate(f"{header}.{payload}.{flipped}")


async def test_changed_claims_are_refused(caller: Caller, validator: JWTValidator) -> None:
    """Claims widened after signing (a scope added) no longer match the signature."""
    header, _, signature = (await caller.token()).split(".")
    _, claims = segments(await caller.token())
    claims["scope"] = f"{READ} {WRITE}"
    with pytest.raises(InvalidToken, match="signature"):
        await validator.validate(f"{header}.{b64(json.dumps(claims).encode())}.{signature}")


async def test_alg_none_is_refused(caller: Caller, validator: JWTValidator) -> None:
    """RFC 8725 §3.1: an unsigned token is never accepted, whatever its header says."""
    header, claims = segments(await caller.token())
    header["alg"] = "none"
    forged = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."
    with pytest.raises(InvalidToken, match="algorithm"):
        await validator.validate(forged)


async def test_hs256_signed_with_the_public_key_is_refused(
    caller: Caller, validator: JWTValidator, http: httpx.AsyncClient
) -> None:
    """The algorithm confusion attack: HMAC keyed with the issuer's public JWK is refused before any check."""
    header, claims = segments(await caller.token())
    jwk = next(k for k in (await http.get("/jwks")).json()["keys"] if k["kid"] == header["kid"])
    header["alg"] = "HS256"
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    mac = hmac.new(json.dumps(jwk).encode(), signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidToken, match="algorithm"):
        await validator.validate(f"{signing_input}.{b64(mac)}")


@pytest.mark.parametrize("algorithms", [["HS256"], ["none"], []])
def test_symmetric_or_no_algorithms_cannot_be_configured(algorithms: list[str]) -> None:
    with pytest.raises(ValueError, match="asymmetric"):
        JWTValidator(ISSUER, RESOURCE, jwks={"keys": []}, algorithms=algorithms)


@pytest.mark.parametrize("typ", ["JWT", "id_token", None])
async def test_a_jwt_of_the_issuer_not_typed_at_jwt_is_refused(
    fd: Frontdesk, validator: JWTValidator, typ: str | None
) -> None:
    """RFC 9068 §2.1, §4: an ID token or any other JWT signed by the same issuer is not an access token."""
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": RESOURCE, "sub": "s", "client_id": "c", "iat": now, "exp": now + 60, "jti": "j"}
    token = fd.keys.sign(claims, "ES256", typ=typ or "at+jwt")
    if typ is None:  # the same signed token, its header rewritten without typ: the signature no longer holds either
        header, _ = segments(token)
        del header["typ"]
        token = b64(json.dumps(header).encode()) + token[token.index(".") :]
    with pytest.raises(InvalidToken, match="at\\+jwt"):
        await validator.validate(token)


async def test_an_unknown_kid_refetches_the_key_set_once(
    fd: Frontdesk, caller: Caller, validator: JWTValidator, http: httpx.AsyncClient
) -> None:
    """After a key rotation the token names a kid the cached set lacks: the set is fetched again, once."""
    fetches = jwks_fetches(http)
    await validator.validate(await caller.token())
    assert len(fetches) == 1
    fd.keys.rotate()
    fd.keys.rotate()  # the active key is now one published after the set was cached
    token = await caller.token()
    assert (await validator.validate(token)).client_id == "agent-backend"
    assert len(fetches) == 2
    await validator.validate(token)
    assert len(fetches) == 2


async def test_made_up_kids_do_not_make_the_kit_hammer_the_issuer(
    caller: Caller, validator: JWTValidator, http: httpx.AsyncClient
) -> None:
    """A token signed by a stranger's key is refused after one refetch; the next within the floor fetches nothing."""
    fetches = jwks_fetches(http)
    await validator.validate(await caller.token())
    _, claims = segments(await caller.token())
    stranger = ECKey.generate_key("P-256", parameters={"kid": "stranger"})
    from joserfc import jws

    forged = jws.serialize_compact({"alg": "ES256", "typ": "at+jwt", "kid": "stranger"}, json.dumps(claims), stranger)
    for _ in range(3):
        with pytest.raises(InvalidToken, match="not signed by a key of the issuer"):
            await validator.validate(forged)
    assert len(fetches) == 2


async def test_the_act_claim_of_a_delegated_token_is_exposed(fd: Frontdesk, validator: JWTValidator) -> None:
    """RFC 8693 §4.1: the agent acting for the person is on the verified token."""
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": RESOURCE,
        "sub": "person-1",
        "client_id": "agent",
        "iat": now,
        "exp": now + 60,
        "jti": "j",
        "act": {"sub": "agent-7"},
    }
    verified = await validator.validate(fd.keys.sign(claims, "ES256", typ="at+jwt"))
    assert verified.subject == "person-1"
    assert verified.act == {"sub": "agent-7"}


async def test_the_issuer_must_be_the_one_its_metadata_names(http: httpx.AsyncClient, caller: Caller) -> None:
    """RFC 8414 §3.3: metadata fetched for another spelling of the issuer is not trusted for keys."""
    async with JWTValidator(ISSUER + "/", RESOURCE, http=http) as validator:
        with pytest.raises(AuthorizationServerUnavailable, match="names issuer"):
            await validator.validate(await caller.token())


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c", "é.é.é", "x" * 9000, "eyJhbGciOiJFUzI1NiJ9.e30.AA"])
async def test_garbage_is_an_invalid_token(validator: JWTValidator, token: str) -> None:
    with pytest.raises(InvalidToken):
        await validator.validate(token)
