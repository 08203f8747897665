"""What the tests of a process's memory (oauth/memory.py) share: its start and stop, and waiting for what it sees."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from frontdesk.core import Frontdesk
from frontdesk.oauth import memory


def eventually(seen: Callable[[], bool], bound: float) -> float:
    """Seconds until ``seen()`` holds; fails past ``bound``."""
    started = time.monotonic()
    while not seen():
        assert time.monotonic() - started <= bound, f"not seen within {bound} s"
        time.sleep(0.01)
    return time.monotonic() - started


@pytest.fixture
def kept(fd: Frontdesk) -> Iterator[memory.Memory]:
    """This process's memory of ``fd``'s store, as a served process keeps it, its listener reading."""
    started = memory.start(fd)
    assert started is not None
    eventually(started.listener.fresh, 5.0)
    yield started
    memory.stop(fd)
