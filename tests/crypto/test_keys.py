"""The signing key ring under concurrent rotation."""

from __future__ import annotations

import threading
from collections import Counter

from frontdesk.crypto.keys import SIGNING_ALGS, KeyRing
from frontdesk.storage.db import open_engine


def test_concurrent_rotations_take_turns_and_keep_one_active_key_per_algorithm(fd):
    """Two processes rotating at once both succeed, one after the other, and the ring stays well-formed."""
    errors: list[BaseException] = []

    def rotate() -> None:
        engine = open_engine(fd.settings.db_url)
        try:
            KeyRing(engine, fd.master, retire_for=lambda: 600).rotate()
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
