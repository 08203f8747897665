"""What the storage tests share: a grant with a code and a refresh token, and a race between separate engines."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from sqlalchemy import Engine

from frontdesk.core import Frontdesk
from frontdesk.storage.db import now, open_engine, transaction
from frontdesk.storage.grants import GrantRow, insert_code, insert_grant, insert_refresh


def stored_grant(
    fd: Frontdesk, scope: Sequence[str] = ("openid",), *, at: int | None = None, life: int = 3600
) -> tuple[GrantRow, str, str]:
    """A grant of client ``c`` to person ``u`` made at ``at`` (now) for ``life`` seconds, with an unused code (a
    minute at most) and refresh token: (grant, code, refresh)."""
    at = now() if at is None else at
    with transaction(fd.engine) as conn:
        grant = insert_grant(
            conn,
            client_id="c",
            user_id="u",
            scope=tuple(scope),
            resource=(),
            auth_time=at,
            amr=("pwd",),
            at=at,
            expires_at=at + life,
        )
        code = insert_code(
            conn,
            grant_id=grant.id,
            client_id="c",
            redirect_uri="https://app.example/cb",
            code_challenge="x" * 43,
            nonce=None,
            expires_at=at + min(life, 60),
        )
        refresh = insert_refresh(conn, grant=grant, at=at, idle=life)
    return grant, code, refresh


def race(fd: Frontdesk, attempt: Callable[[Engine], bool], contenders: int = 8) -> list[bool]:
    """``attempt`` by ``contenders`` threads at once, each on an engine (a connection pool) of its own, as separate
    processes would; what each returned."""
    engines = [open_engine(fd.settings.db_url) for _ in range(contenders)]
    barrier = threading.Barrier(contenders)
    results: list[bool] = []
    lock = threading.Lock()

    def contend(engine: Engine) -> None:
        barrier.wait()
        won = attempt(engine)
        with lock:
            results.append(won)

    threads = [threading.Thread(target=contend, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for e in engines:
        e.dispose()
    return results
