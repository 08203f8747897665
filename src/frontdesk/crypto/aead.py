"""AES-256-GCM envelopes under the master key, for what must be recovered (signing keys, vault tokens).

Envelope: ``version(1) || key id(8) || nonce(12) || ciphertext+tag``. The associated data binds a ciphertext to
the row it belongs to, so a blob copied into another row does not decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["DecryptionFailed", "MasterKey", "load_master_key"]

log = logging.getLogger("frontdesk.crypto")
_VERSION = b"\x01"


class DecryptionFailed(Exception):
    """The envelope was altered, belongs to another row, or was sealed under another master key."""


@dataclass(frozen=True, slots=True, repr=False)
class MasterKey:
    key: bytes

    def __post_init__(self) -> None:
        if len(self.key) != 32:
            raise ValueError("the master key must be 32 bytes (AES-256)")

    def __repr__(self) -> str:
        return f"MasterKey(id={self.key_id.hex()})"

    @property
    def key_id(self) -> bytes:
        return hashlib.sha256(b"frontdesk master key id" + self.key).digest()[:8]

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + self.key_id + nonce + AESGCM(self.key).encrypt(nonce, plaintext, aad)

    def open(self, envelope: bytes, aad: bytes) -> bytes:
        if envelope[:1] != _VERSION or envelope[1:9] != self.key_id:
            raise DecryptionFailed("envelope was sealed under another master key")
        try:
            return AESGCM(self.key).decrypt(envelope[9:21], envelope[21:], aad)
        except InvalidTag:
            raise DecryptionFailed("envelope failed authentication") from None


def _decode(text: str, source: str) -> MasterKey:
    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
        return MasterKey(raw)
    except ValueError:
        raise ValueError(f"master key from {source} must be 32 bytes, base64url-encoded") from None


def load_master_key(value: str, file: str, home: Path) -> MasterKey:
    """From the environment, a named file, or, on the embedded default, a file generated in ``home``."""
    if value:
        return _decode(value, "FRONTDESK_MASTER_KEY")
    if file:
        return _decode(Path(file).read_text(), file)
    path = home / "master.key"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("="))
        log.warning(
            "generated a master key at %s; production wants its own key from FRONTDESK_MASTER_KEY or "
            "FRONTDESK_MASTER_KEY_FILE, kept apart from the database",
            path,
        )
    return _decode(path.read_text(), str(path))
