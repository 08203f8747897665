"""The vault's seams: the composition root attaches it to the core, and its rooms' named store operations keep the
single-use and re-sealing rules on their own."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest

from frontdesk.asgi import open_frontdesk
from frontdesk.core import Frontdesk, open_core
from frontdesk.crypto.aead import MasterKey
from frontdesk.storage.db import transaction
from frontdesk.vault import integration_store, session_store
from frontdesk.vault.refresh import BackingOff
from frontdesk.vault.service import Vault, vault_of

from .fake_provider import CLIENT_ID, CLIENT_SECRET


def test_the_composition_root_attaches_the_vault_and_closes_it_with_the_core(fd: Frontdesk) -> None:
    opened = open_frontdesk(fd.settings, run_migrations=False, ensure_keys=False)
    vault = vault_of(opened)
    assert isinstance(vault, Vault)
    assert vault.engine is opened.engine
    opened.close()
    assert vault.http.is_closed


def test_the_core_alone_carries_no_vault(fd: Frontdesk) -> None:
    """``open_core`` opens the authorization server only: asking it for the vault is an error, not None."""
    core = open_core(fd.settings, run_migrations=False, ensure_keys=False)
    try:
        assert core.vault is None
        with pytest.raises(RuntimeError, match="no vault is attached"):
            vault_of(core)
    finally:
        core.close()


def _session(conn: Any, link: str, at: int) -> None:
    session_store.create_session(
        conn, session_id="cs_test", link=link, user="u-1", integration_name="cal", scopes=["calendar.read"],
        params={}, return_url=None, display_name=None, subject=None, created_at=at, expires_at=at + 600,
    )  # fmt: skip


def test_a_connect_session_opens_once_and_is_consumed_once(vault: Vault) -> None:
    """The compare-and-set steps of a connect link: a second browser cannot open it, a second callback cannot
    use it."""
    at = int(time.time())
    with transaction(vault.engine) as conn:
        _session(conn, "fd_vc_link", at)
        assert session_store.session_for_link(conn, "fd_vc_link").id == "cs_test"
        assert session_store.open_session(conn, "cs_test", at, browser="b1", state="s1", sealed=b"x")
        assert not session_store.open_session(conn, "cs_test", at, browser="b2", state="s2", sealed=b"y")
        assert session_store.session_for_state(conn, "s1").id == "cs_test"
        assert session_store.session_for_state(conn, "s2") is None
        assert tuple(session_store.owner_of_state(conn, "s1")) == ("cal", "u-1")
        assert session_store.consume_session(conn, "cs_test", at)
        assert not session_store.consume_session(conn, "cs_test", at)


def test_client_secrets_are_resealed_under_the_active_key_once(vault: Vault) -> None:
    """Rotation re-seals what the old key sealed, and a second pass finds nothing left."""
    rotated = vault.keys.rotated(MasterKey(secrets.token_bytes(32)))
    with transaction(vault.engine) as conn:
        assert integration_store.reseal_secrets(conn, rotated, 100) == 1
    with transaction(vault.engine) as conn:
        assert integration_store.reseal_secrets(conn, rotated, 100) == 0
    found = integration_store.integration(vault.engine, rotated, "cal")
    assert found is not None
    assert found.client_id == CLIENT_ID
    assert found.client_secret is not None
    assert found.client_secret.value == CLIENT_SECRET


def test_backing_off_says_retry_after_at_least_a_second() -> None:
    """RFC 9110 §10.2.3: a Retry-After in whole seconds; a retry time already past still says one."""
    assert BackingOff(int(time.time()) - 60, "server_error").retry_after() == 1
    assert 25 <= BackingOff(int(time.time()) + 30, "server_error").retry_after() <= 30
