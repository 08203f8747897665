"""An access token's jti (RFC 9068 §2.2, RFC 7519 §4.1.7): unique across draws, threads and a fork, though its
random part is drawn from the operating system 256 at a time (oauth/tokens.py)."""

from __future__ import annotations

import os
import re
import threading

from frontdesk.oauth import tokens
from frontdesk.storage.grants import GrantRow

PART = re.compile(rf"[A-Za-z0-9_-]{{{tokens._JTI_CHARS}}}")


def test_parts_are_unique_and_base64url_across_draws() -> None:
    parts = [tokens._random_part() for _ in range(tokens._JTI_DRAW * 4 + 3)]
    assert len(set(parts)) == len(parts)
    assert all(PART.fullmatch(part) for part in parts)


def test_threads_never_share_a_part() -> None:
    found: list[list[str]] = [[] for _ in range(8)]
    start = threading.Barrier(len(found))

    def draw(mine: list[str]) -> None:
        start.wait()
        mine.extend(tokens._random_part() for _ in range(3_000))

    threads = [threading.Thread(target=draw, args=(mine,)) for mine in found]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [part for mine in found for part in mine]
    assert len(every) == 24_000
    assert len(set(every)) == len(every)


def test_a_forked_child_draws_its_own_parts() -> None:
    tokens._random_part()  # the parent holds parts not yet handed out
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        os.write(write, "".join(tokens._random_part() for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        child = pipe.read().decode()
    os.waitpid(pid, 0)
    size = tokens._JTI_CHARS
    theirs = {child[i : i + size] for i in range(0, len(child), size)}
    ours = {tokens._random_part() for _ in range(tokens._JTI_DRAW)}
    assert len(theirs) == 10
    assert not theirs & ours


def test_a_token_carries_the_grant_and_a_fresh_part() -> None:
    grant = GrantRow("g1", "client", "person", ("openid",), (), None, (), 2_000_000_000, None)
    first, second = tokens._jti(grant), tokens._jti(grant)
    assert first.startswith("g1.")
    assert second.startswith("g1.")
    assert first != second
    assert tokens.split_jti(first) == "g1"
    assert tokens.split_jti(tokens._jti(None)) is None
