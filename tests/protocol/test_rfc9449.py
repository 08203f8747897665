"""RFC 9449 pure checks: htu normalisation (properties), thumbprints, and the proof checks that need no state."""

from __future__ import annotations

import base64
import json
import time
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st
from joserfc.errors import SecurityWarning
from joserfc.jwk import RSAKey

from dpop_proofs import TOKEN_URL, ath_of, jkt_of, new_key, proof
from frontdesk.errors import InvalidDpopProof
from frontdesk.protocol.rfc9449 import MAX_JTI, access_token_hash, check_proof, normalize_htu, thumbprint

_segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._~%2F", min_size=0, max_size=8)
_path = st.lists(_segment, max_size=5).map(lambda parts: "/" + "/".join(parts))
_host = st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z]{2,5}){1,2}", fullmatch=True)
_scheme = st.sampled_from(["http", "https"])


@given(_scheme, _host, _path)
def test_normalising_twice_changes_nothing(scheme: str, host: str, path: str) -> None:
    once = normalize_htu(f"{scheme}://{host}{path}")
    assert normalize_htu(once) == once


@given(_scheme, _host, _path, st.text(max_size=10), st.text(max_size=10))
def test_query_and_fragment_are_ignored(scheme: str, host: str, path: str, q: str, f: str) -> None:
    base = f"{scheme}://{host}{path}"
    assert normalize_htu(f"{base}?{q}#{f}".replace(" ", "")) == normalize_htu(base)


@given(_scheme, _host, _path)
def test_scheme_and_host_case_and_the_default_port_do_not_matter(scheme: str, host: str, path: str) -> None:
    port = {"http": 80, "https": 443}[scheme]
    assert normalize_htu(f"{scheme.upper()}://{host.upper()}:{port}{path}") == normalize_htu(f"{scheme}://{host}{path}")


@given(_host, _path, st.integers(min_value=1, max_value=65535).filter(lambda p: p != 443))
def test_another_port_is_another_url(host: str, path: str, port: int) -> None:
    assert normalize_htu(f"https://{host}:{port}{path}") != normalize_htu(f"https://{host}{path}")


def test_dot_segments_and_percent_encoding_normalise() -> None:
    assert normalize_htu("https://as.example/a/./b/../%7etoken") == "https://as.example/a/~token"
    assert normalize_htu("https://as.example/%2f") == "https://as.example/%2F"
    assert normalize_htu("https://as.example") == "https://as.example/"


@pytest.mark.parametrize("bad", ["ftp://as.example/token", "https://u@as.example/", "/token", "https://as.example:x/"])
def test_what_is_no_http_url_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011  # urllib's own messages differ per case
        normalize_htu(bad)


def test_the_thumbprint_is_rfc_7638s_example() -> None:
    """RFC 7638 §3.1's RSA key and its SHA-256 thumbprint."""
    jwk = {
        "kty": "RSA",
        "n": (
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjB"
            "ZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8"
            "KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_"
            "xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
        ),
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_the_access_token_hash_is_base64url_sha256() -> None:
    assert access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU") == ath_of(
        "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
    )


def _check(made: str, **kw: object) -> None:
    args: dict[str, object] = {"method": "POST", "url": TOKEN_URL, "now": int(time.time()), "window": 60}
    args.update(kw)
    check_proof(made, **args)  # type: ignore[arg-type]


def test_a_good_proof_names_its_key() -> None:
    key = new_key()
    assert check_proof(proof(key), method="POST", url=TOKEN_URL, now=int(time.time()), window=60).jkt == jkt_of(key)


@pytest.mark.parametrize(
    "made",
    [
        lambda k: proof(k, jti="x" * (MAX_JTI + 1)),
        lambda k: proof(k, header={"jwk": {**k.as_dict(private=True)}}),
        lambda k: proof(k, iat=int(time.time()) - 3600),
        lambda k: proof(k, iat=int(time.time()) + 3600),
        lambda k: _unsigned(k, "none"),
        lambda k: _unsigned(k, "HS256"),
        lambda k: proof(k, nonce=5),
    ],
)
def test_each_refusal_is_invalid_dpop_proof(made: object) -> None:
    with pytest.raises(InvalidDpopProof):
        _check(made(new_key()))  # type: ignore[operator]


def _unsigned(key: object, alg: str) -> str:
    header = {"typ": "dpop+jwt", "alg": alg, "jwk": key.as_dict(private=False)}  # type: ignore[attr-defined]
    claims = {"jti": "j", "htm": "POST", "htu": TOKEN_URL, "iat": int(time.time())}
    encode = lambda v: base64.urlsafe_b64encode(json.dumps(v).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{encode(header)}.{encode(claims)}.c2ln"


def test_a_short_rsa_key_is_refused() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        short = RSAKey.generate_key(1024)
    with pytest.raises(InvalidDpopProof, match="shorter"):
        _check(proof(short))


def test_iat_within_ten_seconds_is_accepted() -> None:
    key = new_key()
    _check(proof(key, iat=int(time.time()) - 10))
    _check(proof(key, iat=int(time.time()) + 10))


def test_ath_must_match_at_a_resource() -> None:
    key = new_key()
    _check(proof(key, ath=ath_of("t")), access_token="t")
    with pytest.raises(InvalidDpopProof, match="ath"):
        _check(proof(key), access_token="t")
