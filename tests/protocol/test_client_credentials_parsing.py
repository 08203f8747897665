"""Property tests for the parsers of client credentials: Basic headers (RFC 6749 §2.3.1) and JWT client
assertions (RFC 7523)."""

from __future__ import annotations

import base64
import contextlib
from urllib.parse import quote_plus

from hypothesis import given
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey

from frontdesk.errors import InvalidClient, InvalidRequest
from frontdesk.oauth.client_auth import presented_credentials
from frontdesk.protocol.forms import Params
from frontdesk.protocol.rfc7523 import unverified_subject, verify_assertion

KEY = ECKey.generate_key("P-256", parameters={"kid": "k1", "alg": "ES256"}, private=True)
JWKS = {"keys": [KEY.as_dict(private=False)]}
AUDIENCES = ("https://as.example", "https://as.example/token")


# Text a client can send: any UTF-8-encodable character (no lone surrogates) but NUL.
NO_NUL = st.characters(codec="utf-8", exclude_characters="\x00")


@given(
    st.text(NO_NUL, min_size=1, max_size=40).filter(lambda s: s.strip() != ""), st.text(NO_NUL, min_size=1, max_size=60)
)
def test_basic_credentials_round_trip(client_id: str, secret: str):
    """Form-encoded then Base64-encoded id and secret come back exactly, whatever characters they hold but NUL."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    presented = presented_credentials("Basic " + base64.b64encode(raw).decode(), Params())
    assert presented.method == "client_secret_basic"
    assert presented.client_id == client_id
    assert presented.secret is not None
    assert presented.secret.value == secret


@given(st.text(NO_NUL, max_size=20), st.text(NO_NUL, max_size=20), st.sampled_from(["id", "secret", "both"]))
def test_basic_credentials_carrying_a_nul_are_invalid_client(client_id: str, secret: str, where: str):
    """A NUL, raw or percent-encoded, in the id or the secret is invalid_client: it names no client, and PostgreSQL
    cannot look one up."""
    client_id = client_id + "\x00" if where in ("id", "both") else client_id or "c"
    secret = "%00" + secret if where in ("secret", "both") else secret
    raw = f"{quote_plus(client_id)}:{secret}".encode()
    try:
        presented_credentials("Basic " + base64.b64encode(raw).decode(), Params())
    except InvalidClient:
        return
    raise AssertionError("Basic credentials with a NUL were accepted")


@given(st.text(max_size=200))
def test_any_authorization_header_parses_or_fails_as_invalid_client(header: str):
    """No Authorization header, however malformed, raises anything but invalid_client or invalid_request."""
    with contextlib.suppress(InvalidClient, InvalidRequest):
        presented_credentials(header, Params())


@given(st.text(max_size=300))
def test_unverified_subject_never_raises(assertion: str):
    """Reading the subject of any string gives a string or None."""
    assert unverified_subject(assertion) is None or isinstance(unverified_subject(assertion), str)


@given(st.text(max_size=300))
def test_any_assertion_string_is_invalid_client(assertion: str):
    """A string that is not a valid assertion fails as invalid_client, never otherwise."""
    try:
        verify_assertion(assertion, JWKS, "client", AUDIENCES, 1_800_000_000, 3600)
    except InvalidClient:
        return
    raise AssertionError("a random string was accepted as a client assertion")


@given(
    st.dictionaries(
        st.sampled_from(["iss", "sub", "aud", "exp", "jti", "nbf", "iat"]),
        st.one_of(
            st.text(max_size=20),
            st.integers(),
            st.lists(st.one_of(st.sampled_from(AUDIENCES), st.text(max_size=10)), max_size=3),
            st.sampled_from(AUDIENCES),
            st.none(),
        ),
    )
)
def test_signed_assertions_with_arbitrary_claims_pass_only_when_complete(claims):
    """A correctly signed assertion is accepted only with iss = sub = client, one of our audiences as a single
    string, a live exp and a jti."""
    token = jwt.encode({"alg": "ES256", "kid": "k1"}, claims, KEY)
    now = 1_800_000_000
    try:
        verify_assertion(token, JWKS, "client", AUDIENCES, now, 3600)
    except InvalidClient:
        return
    aud = claims.get("aud")
    assert claims.get("iss") == claims.get("sub") == "client"
    # draft-ietf-oauth-rfc7523bis-09: one string, never an array, even one holding an accepted value.
    assert isinstance(aud, str)
    assert aud in AUDIENCES
    assert isinstance(claims.get("exp"), int)
    assert now < claims["exp"] <= now + 3600
    assert isinstance(claims.get("jti"), str)
    assert claims["jti"]
