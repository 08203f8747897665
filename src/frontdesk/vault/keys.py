"""The vault's own encryption keys: AES-256-GCM envelopes with a key id, so keys rotate while serving.

The vault keeps what it must give back (people's tokens at other services, the platform's client secrets), so it
encrypts rather than digests. Its keys are apart from the master key that seals signing keys: an operator can rotate
one without touching the other, and a leaked vault key exposes no signing key.

Keys come, in this order, from ``FRONTDESK_VAULT_KEYS`` (comma-separated, base64url, the first one seals), from the
file ``vault_key_file``, or on the embedded default from ``{home}/vault.keys``, one key a line, generated at first
start. Every envelope names the key that sealed it; any listed key opens. An envelope whose key is not listed is a
configuration error found at start (:func:`check_keys`), not a surprise at the first proxied call.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

from ..config import ConfigError, Settings
from ..crypto.aead import DecryptionFailed, MasterKey
from ..storage.db import transaction
from . import integration_store, store

__all__ = ["VaultKeys", "check_keys", "generate_key", "key_file", "load_vault_keys"]

log = logging.getLogger("frontdesk.vault")


def generate_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def _decode(text: str, source: str) -> MasterKey:
    text = text.strip()
    try:
        return MasterKey(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except ValueError:
        raise ConfigError(f"vault key from {source} must be 32 bytes, base64url-encoded") from None


class VaultKeys:
    """The active key seals; every listed key opens what it sealed.

    ``reload`` (set for file-based keys) is tried once when an envelope names a key this process has not loaded:
    ``frontdesk keys rotate-vault --new-key`` adds a key to the file and re-seals while servers keep running, and
    each server picks the new key up the first time it meets it."""

    def __init__(
        self, keys: tuple[MasterKey, ...], source: str = "", reload: Callable[[], tuple[MasterKey, ...]] | None = None
    ) -> None:
        if not keys:
            raise ConfigError("the vault needs at least one key")
        self._keys = keys
        self.source = source
        self._reload = reload
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"VaultKeys(active={self.active_id}, count={len(self._keys)})"

    @property
    def active_id(self) -> str:
        return self._keys[0].key_id.hex()

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(k.key_id.hex() for k in self._keys)

    def seal(self, plaintext: bytes, aad: bytes) -> tuple[bytes, str]:
        """A fresh nonce per call; ``aad`` binds the envelope to its row (the connection id)."""
        key = self._keys[0]
        return key.seal(plaintext, aad), key.key_id.hex()

    def _find(self, kid: bytes) -> MasterKey | None:
        return next((k for k in self._keys if k.key_id == kid), None)

    def open(self, envelope: bytes, aad: bytes) -> bytes:
        kid = envelope[1:9]
        key = self._find(kid)
        if key is None and self._reload is not None:
            with self._lock:
                self._keys = self._reload() or self._keys
            key = self._find(kid)
        if key is None:
            raise DecryptionFailed(f"envelope was sealed under vault key {kid.hex()}, which is not configured")
        return key.open(envelope, aad)

    def rotated(self, new: MasterKey) -> VaultKeys:
        return VaultKeys((new, *(k for k in self._keys if k.key_id != new.key_id)), self.source, self._reload)


def _read_file(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def _sealed_rows(engine: Engine) -> int:
    with transaction(engine, readonly=True) as conn:
        return store.sealed_connections(conn) + integration_store.sealed_secrets(conn)


def load_vault_keys(settings: Settings, engine: Engine) -> VaultKeys:
    """The configured keys; on the embedded default a key file is made, but only while the vault is empty: a new
    key cannot open what an old one sealed, so a missing key with sealed rows is a refusal, not a fresh start."""
    if settings.vault_keys:
        parts = [p for p in settings.vault_keys.split(",") if p.strip()]
        return VaultKeys(tuple(_decode(p, "FRONTDESK_VAULT_KEYS") for p in parts), "FRONTDESK_VAULT_KEYS")
    if settings.vault_key_file:
        path = Path(settings.vault_key_file)
        if not path.is_file():
            raise ConfigError(f"cannot read vault key file {path}")
        return _from_file(path)
    path = settings.home / "vault.keys"
    if not path.exists():
        sealed = _sealed_rows(engine)
        if sealed:
            raise ConfigError(
                f"the vault holds {sealed} sealed records but no vault key is configured and {path} does not exist; "
                "restore the key file or set FRONTDESK_VAULT_KEYS — a new key could not open them"
            )
        settings.home.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process starting beside this one made it first: use theirs
            return _from_file(path)
        with os.fdopen(fd, "w") as fh:
            fh.write(generate_key() + "\n")
        log.warning(
            "generated a vault key at %s; production wants its own keys in FRONTDESK_VAULT_KEYS or "
            "FRONTDESK_VAULT_KEY_FILE, kept apart from the database",
            path,
        )
    return _from_file(path)


def key_file(settings: Settings) -> Path | None:
    """The file the keys live in, when they live in a file (a new key can then be added by the CLI)."""
    if settings.vault_keys:
        return None
    return Path(settings.vault_key_file) if settings.vault_key_file else settings.home / "vault.keys"


def _from_file(path: Path) -> VaultKeys:
    def load() -> tuple[MasterKey, ...]:
        return tuple(_decode(line, str(path)) for line in _read_file(path))

    return VaultKeys(load(), str(path), load)


def check_keys(keys: VaultKeys, engine: Engine) -> None:
    """Refuse to start when a sealed record names a key that is not configured."""
    with transaction(engine, readonly=True) as conn:
        used = store.sealing_key_ids(conn) | integration_store.secret_key_ids(conn)
    missing = sorted(used - keys.ids)
    if missing:
        raise ConfigError(
            f"vault records are sealed under key(s) {', '.join(missing)}, which {keys.source or 'the configuration'} "
            "does not hold; add the old key after the new one until `frontdesk keys rotate-vault` has re-sealed them"
        )
