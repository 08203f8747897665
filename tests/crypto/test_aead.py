"""AES-256-GCM envelopes under the master key."""

from __future__ import annotations

import os
import stat

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frontdesk.crypto.aead import DecryptionFailed, MasterKey, load_master_key

KEY = MasterKey(bytes(range(32)))


@given(st.binary(max_size=4096), st.binary(max_size=64))
def test_seal_then_open_round_trips(plaintext: bytes, aad: bytes):
    """What is sealed opens again with the same associated data."""
    assert KEY.open(KEY.seal(plaintext, aad), aad) == plaintext


def test_envelope_moved_to_another_row_does_not_open():
    """The associated data binds a ciphertext to its row."""
    with pytest.raises(DecryptionFailed):
        KEY.open(KEY.seal(b"secret", b"row:1"), b"row:2")


def test_tampered_envelope_does_not_open():
    """One flipped bit fails authentication."""
    envelope = bytearray(KEY.seal(b"secret", b"row"))
    envelope[-1] ^= 1
    with pytest.raises(DecryptionFailed):
        KEY.open(bytes(envelope), b"row")


def test_another_master_key_does_not_open():
    """An envelope sealed under one master key names it and refuses another."""
    with pytest.raises(DecryptionFailed):
        MasterKey(os.urandom(32)).open(KEY.seal(b"secret", b"row"), b"row")


def test_repr_never_shows_the_key():
    """The key's repr shows only its identifier."""
    assert bytes(range(32)).hex() not in repr(KEY)


def test_generated_master_key_is_private_to_its_owner(tmp_path):
    """On the embedded default the generated key file is mode 0600 and reused on the next start."""
    first = load_master_key("", "", tmp_path)
    mode = stat.S_IMODE((tmp_path / "master.key").stat().st_mode)
    assert mode == 0o600
    assert load_master_key("", "", tmp_path).key == first.key
