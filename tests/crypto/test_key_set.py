"""Signing key material without a database: keys generated and sealed, opened into a set that signs, verifies and
publishes (crypto/keys.py), and the key ring over a store that is a plain list (crypto/key_ring.py)."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from frontdesk.config import SIGNING_ALGS
from frontdesk.crypto.aead import MasterKey
from frontdesk.crypto.key_ring import KeyRing, NewKey
from frontdesk.crypto.keys import KeyInfo, StoredKey, _raw_p256, new_stored_key, read_key_set

MASTER = MasterKey(bytes(range(32)))


def _kids(jwks: bytes) -> set[str]:
    return {key["kid"] for key in json.loads(jwks)["keys"]}


def test_a_stored_key_is_sealed_under_the_master_key():
    """The private JWK is stored sealed: its private parameter is not in clear, nor in the public JWK."""
    key = new_stored_key(MASTER, "ES256", "active", 1000)
    assert (key.alg, key.state, key.created_at, key.publish_until) == ("ES256", "active", 1000, None)
    assert b'"d"' not in key.private_jwk
    assert "d" not in json.loads(key.public_jwk)


# crypto/keys.py silences this warning for the server; pytest's filters (warnings are errors) replace its filter.
@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
@pytest.mark.parametrize("alg", SIGNING_ALGS)
def test_the_active_key_signs_and_every_published_key_verifies(alg):
    """A token signed by the active key of an algorithm verifies, and names that key in its header."""
    keys = read_key_set([new_stored_key(MASTER, alg, "active", 1)], MASTER, 0.0)
    token = keys.sign({"sub": "alice"}, alg, typ="at+jwt")
    decoded = keys.verify(token)
    assert decoded.claims == {"sub": "alice"}
    assert decoded.header["typ"] == "at+jwt"
    assert decoded.header["kid"] in _kids(keys.jwks)


def test_a_next_key_is_published_but_does_not_sign():
    """The next key is in the JWKS ahead of use; only the active key signs."""
    active = new_stored_key(MASTER, "ES256", "active", 1)
    upcoming = new_stored_key(MASTER, "ES256", "next", 1)
    keys = read_key_set([active, upcoming], MASTER, 0.0)
    assert _kids(keys.jwks) == {active.kid, upcoming.kid}
    assert keys.verify(keys.sign({}, "ES256")).header["kid"] == active.kid


def test_a_token_of_an_unpublished_key_does_not_verify():
    """A key no longer among the published ones verifies nothing."""
    old = new_stored_key(MASTER, "ES256", "active", 1)
    token = read_key_set([old], MASTER, 0.0).sign({}, "ES256")
    fresh = read_key_set([new_stored_key(MASTER, "ES256", "active", 2)], MASTER, 0.0)
    with pytest.raises(ValueError, match="unknown signing key"):
        fresh.verify(token)


def test_a_key_opened_once_is_reused_by_the_next_read():
    """Parsed keys carry over from one read to the next, so a reload does not import every key again."""
    row = new_stored_key(MASTER, "RS256", "active", 1)
    first = read_key_set([row], MASTER, 0.0)
    second = read_key_set([row], MASTER, 1.0, first)
    assert second.verifying[row.kid] is first.verifying[row.kid]


class ListStore:
    """A ``KeyStore`` that is a list: what storage/signing_keys.py does, less the database."""

    def __init__(self) -> None:
        self.rows: list[StoredKey] = []
        self.at = 1000

    def add_missing(self, algs: Sequence[str], new_key: NewKey) -> list[str]:
        have = {(r.alg, r.state) for r in self.rows}
        added = [
            new_key(alg, state, self.at) for alg in algs for state in ("active", "next") if (alg, state) not in have
        ]
        self.rows += added
        return [r.kid for r in added]

    def rotate(self, algs: Sequence[str], retire_for: int, new_key: NewKey) -> list[str]:
        retired = {"active": "retired", "next": "active"}
        self.rows = [
            replace(r, state=retired[r.state], publish_until=self.at + retire_for if r.state == "active" else None)
            if r.state in retired and r.alg in algs
            else r
            for r in self.rows
        ]
        fresh = [new_key(alg, "next", self.at) for alg in algs]
        self.rows += fresh
        return [r.kid for r in fresh]

    def infos(self) -> list[KeyInfo]:
        return [KeyInfo(r.kid, r.alg, r.state, r.created_at, r.publish_until) for r in self.rows]

    def published(self) -> list[StoredKey]:
        return [r for r in self.rows if not (r.state == "retired" and (r.publish_until or 0) <= self.at)]


def test_the_ring_keeps_verifying_what_its_retired_key_signed():
    """After a rotation the next key signs, and a token of the retired key still verifies while it is published."""
    store = ListStore()
    ring = KeyRing(store, MASTER, retire_for=lambda: 600)
    assert len(ring.ensure()) == 2 * len(SIGNING_ALGS)
    assert ring.ensure() == []
    before = ring.sign({"n": 1}, "ES256")
    upcoming = {r.kid for r in store.rows if r.state == "next" and r.alg == "ES256"}
    ring.rotate()
    after = ring.sign({"n": 2}, "ES256")
    assert ring.verify(after).header["kid"] in upcoming
    assert ring.verify(before).claims == {"n": 1}
    retired = [k for k in ring.list() if k.state == "retired"]
    assert {k.publish_until for k in retired} == {store.at + 600}


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 2**256 - 1), st.integers(1, 2**256 - 1))
def test_a_p256_signature_is_read_off_its_der_as_the_asn1_decoder_reads_it(r: int, s: int) -> None:
    """RFC 7518 §3.4's R || S from OpenSSL's DER, short integers (fewer than 32 bytes) and those with a sign byte
    alike: the same 64 bytes as the ASN.1 decoder gives."""
    der = encode_dss_signature(r, s)
    assert _raw_p256(der) == r.to_bytes(32, "big") + s.to_bytes(32, "big")


def test_an_es256_signature_verifies_with_the_public_key() -> None:
    """The raw signature of a token (header.claims) checks out against the key's public half."""
    keys = read_key_set([new_stored_key(MASTER, "ES256", "active", 1)], MASTER, 0.0)
    for _ in range(50):
        token = keys.sign({"sub": "alice"}, "ES256")
        head, claims, signature = token.split(".")
        raw = base64.urlsafe_b64decode(signature + "==")
        public = keys.verifying[keys.signing["ES256"].kid].public_key
        assert isinstance(public, ec.EllipticCurvePublicKey)
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        public.verify(der, f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
