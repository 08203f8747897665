"""The running authorization server: settings, store, key ring and scope registry, opened once per process."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine

from .config import ConfigError, Settings
from .crypto.aead import DecryptionFailed, MasterKey, load_master_key
from .crypto.key_ring import KeyRing
from .crypto.passwords import use_cost
from .protocol.scope import OIDC_SCOPES, parse_scope
from .storage.clients import ClientStore
from .storage.db import migrate, open_engine
from .storage.people import UserStore
from .storage.resources import longest_resource_ttl
from .storage.scopes import add_scope, scope_descriptions
from .storage.signing_keys import SigningKeyStore

__all__ = ["Attached", "Frontdesk", "ScopeError", "open_core", "prepare_home"]

log = logging.getLogger("frontdesk")
SCOPE_CACHE_SECONDS = 5.0


class ScopeError(ValueError):
    pass


class Attached(Protocol):
    """A service the composition root opens on the core and attaches to it: the token vault (DESIGN §2, §6). The
    core knows it only as something it closes with itself, so it imports no service; a service's users narrow it
    (``vault.service.vault_of``)."""

    def close(self) -> None: ...


@dataclass(slots=True)
class Frontdesk:
    settings: Settings
    engine: Engine
    master: MasterKey
    keys: KeyRing
    clients: ClientStore
    users: UserStore
    csrf_key: bytes = field(repr=False)
    # (monotonic time, scopes): like the client cache, safe to be stale for a few seconds across processes.
    _scopes: tuple[float, dict[str, str]] | None = field(default=None, repr=False)
    # The token vault on the same store (DESIGN §6), attached by the composition root (asgi.open_frontdesk), which
    # refuses to start without its keys.
    vault: Attached | None = field(default=None, repr=False)

    @property
    def issuer(self) -> str:
        return self.settings.issuer

    def url(self, path: str) -> str:
        return self.settings.issuer + path

    def scopes(self, fresh: bool = False) -> dict[str, str]:
        """Every scope a client may be registered for, with its plain-words description.

        Cached for a few seconds; a caller that misses a scope asks again with ``fresh=True``, so a scope created
        by another process is usable at once."""
        cached = self._scopes
        if not fresh and cached is not None and time.monotonic() - cached[0] < SCOPE_CACHE_SECONDS:
            return cached[1]
        out = dict(OIDC_SCOPES)
        out.update(self.settings.scopes)
        out.update(scope_descriptions(self.engine))
        self._scopes = (time.monotonic(), out)
        return out

    def create_scope(self, name: str, description: str) -> None:
        if parse_scope(name) != (name,):
            raise ScopeError("a scope name is one token of printable ASCII without spaces, quotes or backslashes")
        if name in OIDC_SCOPES:
            raise ScopeError(f"{name!r} is an OpenID Connect scope and cannot be redefined")
        if not description.strip():
            raise ScopeError("describe the scope in plain words; the consent screen shows it")
        if not add_scope(self.engine, name, description.strip()):
            raise ScopeError(f"scope {name!r} already exists")
        self._scopes = None

    def forget_scopes(self) -> None:
        """Drop this process's copy of the scope registry after a change (others see it within seconds)."""
        self._scopes = None

    def close(self) -> None:
        """Release the pools: the vault's connections to providers, then the database's."""
        if self.vault is not None:
            self.vault.close()
        self.engine.dispose()

    def csrf_token(self, binding: str) -> str:
        return hmac.new(self.csrf_key, b"csrf:" + binding.encode(), hashlib.sha256).hexdigest()

    def longest_token_life(self) -> int:
        """How long a retired signing key must stay published: the longest a token it signed can live."""
        lt = self.settings.lifetimes
        longest_client = max((c.access_token_ttl or 0 for c in self.clients.list()), default=0)
        # A resource's lifetime applies when the client sets none (oauth/resources.py token_ttl).
        longest_resource = longest_resource_ttl(self.engine)
        return max(lt.access_token, lt.id_token, longest_client, longest_resource) + 60


# Key files frontdesk generates in its home (crypto/aead.py, vault/keys.py), made 0600 at creation.
HOME_KEY_FILES = ("master.key", "vault.keys")


def _uses_home(settings: Settings) -> bool:
    """Whether anything lives in ``home``: the embedded database, or a key generated on first start."""
    return (
        not settings.database_url
        or not (settings.master_key or settings.master_key_file)
        or not (settings.vault_keys or settings.vault_key_file)
    )


def prepare_home(settings: Settings) -> None:
    """Make ``home`` ready before anything opens a file in it (DESIGN §3): created 0700 if missing, its key files
    tightened to 0600. A home that cannot be used is a ``ConfigError`` naming it, said once rather than as the
    traceback of whichever file was opened first.

    A home made by an older frontdesk is typically 0755 with 0644 files. The files are tightened at every start:
    they are frontdesk's own, and a readable master key or database needs nothing but a local account to exploit.
    The directory is left as it is, with a warning: it may be a directory the operator shares with other things
    (a backup group, a mount point), and with its secrets 0600 an open directory exposes names, not contents.
    """
    for configured, what in ((settings.master_key_file, "master key"), (settings.vault_key_file, "vault key")):
        if configured:
            _warn_if_open(Path(configured), f"the {what} file")
    if not _uses_home(settings):
        return
    home = settings.home
    try:
        # mode: the umask can only narrow it; parents made on the way get the usual mode.
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create FRONTDESK_HOME {home}: {exc.strerror or exc}") from None
    if not home.is_dir():
        raise ConfigError(f"FRONTDESK_HOME {home} is not a directory")
    if not os.access(home, os.W_OK | os.X_OK):
        raise ConfigError(f"FRONTDESK_HOME {home} is not writable; frontdesk keeps its database and keys there")
    _warn_if_open(home, "FRONTDESK_HOME")
    for name in HOME_KEY_FILES:
        tighten(home / name)


def tighten(path: Path) -> None:
    """Make an existing file of frontdesk's owner-only (0600); a file it cannot change is warned about."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(0o600)
            log.warning("%s was mode %04o; made it 0600", path, mode)
    except FileNotFoundError:
        return
    except OSError as exc:
        log.warning("%s is readable by others and could not be made 0600: %s", path, exc.strerror or exc)


def _warn_if_open(path: Path, what: str) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return  # a missing key file is refused where it is read, with its own message
    if mode & 0o077:
        log.warning("%s %s is mode %04o: others on this host may read or change it; chmod go-rwx", what, path, mode)


def open_core(settings: Settings, *, run_migrations: bool = True, ensure_keys: bool = True) -> Frontdesk:
    """The authorization server's core, without the services the composition root attaches to it: callers open
    frontdesk with ``asgi.open_frontdesk``."""
    prepare_home(settings)
    cost = settings.passwords
    use_cost(cost.time_cost, cost.memory_cost, cost.parallelism)
    engine = open_engine(settings.db_url, settings.database_pool_size)
    if run_migrations:
        migrate(engine)
    master = load_master_key(settings.master_key, settings.master_key_file, settings.home)
    csrf_key = hmac.new(master.key, b"frontdesk csrf", hashlib.sha256).digest()
    clients = ClientStore(engine)
    fd: Frontdesk
    keys = KeyRing(SigningKeyStore(engine), master, retire_for=lambda: fd.longest_token_life())
    fd = Frontdesk(settings, engine, master, keys, clients, UserStore(engine), csrf_key)
    if ensure_keys:
        _check_master_key(keys)  # before anything is sealed under a master key the other processes lack
        created = keys.ensure()
        if created:
            log.info("created signing keys", extra={"kids": created})
        _check_master_key(keys)  # another process may have made the first keys meanwhile, under its own
    return fd


def _check_master_key(keys: KeyRing) -> None:
    """Read the key ring now rather than at the first request: every stored private key must open under this master
    key. A process of a shared database given none makes one of its own in its home (crypto/aead.py), and would then
    seal keys no other process can open, or answer every request that signs with a 500. DESIGN §3, §9: every process
    shares the key ring, and invalid configuration fails at start."""
    try:
        keys.read()
    except DecryptionFailed:
        raise ConfigError(
            "the signing keys in the database do not open under this master key: every process and host of one "
            "database needs the same master key (FRONTDESK_MASTER_KEY or FRONTDESK_MASTER_KEY_FILE)"
        ) from None
