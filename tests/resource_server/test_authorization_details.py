"""The kit exposes what the person approved (RFC 9396 §9): ``VerifiedToken.authorization_details`` from the JWT's
claim and from introspection, for real tokens frontdesk issued after a person's consent; malformed details make the
token invalid rather than guessed at."""

from __future__ import annotations

import json
from types import MappingProxyType

import pytest

from conftest import ISSUER, basic, remember
from frontdesk.oauth.registration import register
from frontdesk.resource_server import IntrospectionValidator, InvalidToken, JWTValidator
from frontdesk.resource_server.tokens import authorization_details_of
from rar import PAYMENT, PAYMENTS_API, code_with, register_payments


@pytest.fixture
async def payment_token(fd, http, browser, confidential, secrets_seen) -> str:
    """An access token for the payments API carrying the payment the person approved."""
    register_payments(fd)
    code, verifier = await code_with(browser, confidential, [PAYMENT], resource=PAYMENTS_API)
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    response = await http.post("/token", auth=basic(confidential), data=data)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    remember(secrets_seen, token)
    return token


async def test_the_jwt_validator_exposes_the_details(http, payment_token):
    """From the JWT's top-level claim, by type too."""
    async with JWTValidator(ISSUER, PAYMENTS_API, http=http) as validator:
        verified = await validator.validate(payment_token)
    assert [dict(d) for d in verified.authorization_details] == [PAYMENT]
    assert verified.details_of("payment_initiation")[0]["creditorName"] == "Merchant A"
    assert verified.details_of("account_information") == ()


async def test_the_introspection_validator_exposes_the_details(fd, http, payment_token, secrets_seen):
    """From the introspection answer, for a resource server registered for the payments API."""
    _, secret = register(
        fd, name="Payments API", redirect_uris=[], grant_types=["client_credentials"], resources=[PAYMENTS_API]
    )
    assert secret is not None
    remember(secrets_seen, secret)
    clients = [c for c in fd.clients.list() if c.name == "Payments API"]
    async with IntrospectionValidator(ISSUER, PAYMENTS_API, clients[0].client_id, secret, http=http) as validator:
        verified = await validator.validate(payment_token)
    assert [dict(d) for d in verified.authorization_details] == [PAYMENT]


@pytest.mark.parametrize("value", ["payment", {"type": "x"}, [{"actions": ["read"]}], [{"type": 7}], ["x"]])
def test_malformed_details_make_the_token_invalid(value):
    """Anything but an array of objects with a string type (RFC 9396 §2) is refused, never half-read."""
    with pytest.raises(InvalidToken, match="authorization_details"):
        authorization_details_of(value)


def test_absent_details_are_none_and_present_ones_read_only():
    assert authorization_details_of(None) == ()
    details = authorization_details_of(json.loads(json.dumps([PAYMENT])))
    assert isinstance(details[0], MappingProxyType)
