"""The signing key ring under concurrent rotation."""

from __future__ import annotations

import threading
from collections import Counter

from frontdesk.config import SIGNING_ALGS
from frontdesk.crypto.key_ring import KeyRing
from frontdesk.storage.db import open_engine
from frontdesk.storage.signing_keys import SigningKeyStore


def test_concurrent_rotations_take_turns_and_keep_one_active_key_per_algorithm(fd):
    """Two processes rotating at once both succeed, one after the other, and the ring stays well-formed."""
    errors: list[BaseException] = []

    def rotate() -> None:
        engine = open_engine(fd.settings.db_url)
        try:
            KeyRing(SigningKeyStore(engine), fd.master, retire_for=lambda: 600).rotate()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=rotate) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    states = Counter((k.alg, k.state) for k in fd.keys.list())
    for alg in SIGNING_ALGS:
        assert states[(alg, "active")] == 1
        assert states[(alg, "next")] == 1
        assert states[(alg, "retired")] == 2


def test_a_retired_key_leaves_the_published_keys_when_its_time_is_up(fd, clock):
    """A retired key stays in the JWKS for ``retire_for`` seconds after the rotation, then the store stops
    publishing it."""
    store = SigningKeyStore(fd.engine)
    ring = KeyRing(store, fd.master, retire_for=lambda: 600)
    ring.rotate()
    retired = {k.kid for k in ring.list() if k.state == "retired"}
    assert retired <= {k.kid for k in store.published()}
    clock.advance(601)
    assert retired.isdisjoint(k.kid for k in store.published())
