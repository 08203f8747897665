"""Unit tests of frontdesk.protocol.rfc7636: S256-only challenges (OAuth 2.1 §4.1.1) and verifier checks
(RFC 7636 §4.1, §4.6)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frontdesk.errors import InvalidGrant, InvalidRequest
from frontdesk.protocol import rfc7636

# RFC 7636 Appendix B.
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
verifiers = st.text(alphabet=UNRESERVED, min_size=43, max_size=128)


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def test_rfc_appendix_b_vector_verifies():
    """The worked example of RFC 7636 Appendix B is accepted end to end."""
    assert rfc7636.check_challenge(RFC_CHALLENGE, "S256") == RFC_CHALLENGE
    rfc7636.verify(RFC_VERIFIER, RFC_CHALLENGE)


def test_missing_challenge_is_invalid_request():
    """OAuth 2.1 §4.1.1: code_challenge is required."""
    with pytest.raises(InvalidRequest) as info:
        rfc7636.check_challenge(None, "S256")
    assert info.value.error == "invalid_request"


def test_missing_method_is_invalid_request():
    """Without a method RFC 7636 would default to plain, which is refused."""
    with pytest.raises(InvalidRequest):
        rfc7636.check_challenge(RFC_CHALLENGE, None)


@pytest.mark.parametrize("method", ["plain", "S512", "s256", "S256 ", "", "SHA256"])
def test_other_methods_are_invalid_request(method):
    """Only the exact method name S256 is supported (RFC 9700 §2.1.1)."""
    with pytest.raises(InvalidRequest):
        rfc7636.check_challenge(RFC_CHALLENGE, method)


@pytest.mark.parametrize(
    "challenge",
    [
        "abc",
        RFC_CHALLENGE[:-1],
        RFC_CHALLENGE + "A",
        RFC_CHALLENGE + "=",
        "A" * 128,
        "A" * 129,
        "+" * 43,
        "/" * 43,
        "~" * 43,
        "." * 43,
        " " * 43,
        "é" * 43,
        "",
    ],
)
def test_malformed_challenge_is_invalid_request(challenge):
    """An S256 challenge is exactly 43 base64url characters without padding."""
    with pytest.raises(InvalidRequest):
        rfc7636.check_challenge(challenge, "S256")


def test_missing_verifier_is_invalid_grant():
    """RFC 7636 §4.6: a code bound to a challenge needs its verifier."""
    with pytest.raises(InvalidGrant) as info:
        rfc7636.verify(None, RFC_CHALLENGE)
    assert info.value.error == "invalid_grant"


@pytest.mark.parametrize("verifier", ["a" * 42, "a" * 129, "a" * 42 + "+", "a" * 42 + "/", "a" * 42 + "é", ""])
def test_malformed_verifier_is_invalid_grant(verifier):
    """RFC 7636 §4.1: 43..128 unreserved characters; anything else is refused before hashing."""
    with pytest.raises(InvalidGrant):
        rfc7636.verify(verifier, s256(verifier))


def test_wrong_verifier_is_invalid_grant():
    """A well-formed verifier that does not hash to the challenge is refused."""
    with pytest.raises(InvalidGrant):
        rfc7636.verify("x" * 43, RFC_CHALLENGE)


def test_plain_verifier_equal_to_challenge_is_refused():
    """Sending the challenge itself as the verifier (a plain-method downgrade) does not verify."""
    with pytest.raises(InvalidGrant):
        rfc7636.verify(RFC_CHALLENGE, RFC_CHALLENGE)


@settings(database=None, max_examples=200)
@given(verifier=verifiers)
def test_any_valid_verifier_round_trips(verifier):
    """Every RFC 7636 verifier yields a challenge that check_challenge accepts and verify matches."""
    challenge = s256(verifier)
    assert rfc7636.check_challenge(challenge, "S256") == challenge
    rfc7636.verify(verifier, challenge)


@settings(database=None, max_examples=200)
@given(verifier=verifiers, other=verifiers)
def test_other_verifier_never_matches(verifier, other):
    """A different verifier never verifies against another verifier's challenge."""
    if other == verifier:
        return
    with pytest.raises(InvalidGrant):
        rfc7636.verify(other, s256(verifier))


@settings(database=None, max_examples=300)
@given(challenge=st.one_of(st.none(), st.text(max_size=140)), method=st.one_of(st.none(), st.text(max_size=10)))
def test_check_challenge_raises_only_invalid_request(challenge, method):
    """check_challenge returns the challenge unchanged or raises InvalidRequest, for any input."""
    try:
        assert rfc7636.check_challenge(challenge, method) == challenge
    except InvalidRequest:
        return
    assert method == "S256"


@settings(database=None, max_examples=300)
@given(verifier=st.one_of(st.none(), st.text(max_size=140)), challenge=st.text(max_size=60))
def test_verify_raises_only_invalid_grant(verifier, challenge):
    """verify accepts or raises InvalidGrant, for any verifier and any stored challenge."""
    try:
        rfc7636.verify(verifier, challenge)
    except InvalidGrant:
        return
    assert verifier is not None
    assert s256(verifier) == challenge
