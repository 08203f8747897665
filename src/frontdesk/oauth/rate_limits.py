"""Abuse limits on client authentication, user code entry and the authorization endpoint.

A limit is checked before the guessable step (a secret comparison, a code lookup) and an attempt is counted when it
fails; a limit that is reached answers 429 with Retry-After until its window ends. Wrong passwords are not limited
here: ``frontdesk.oauth.signin_throttle`` answers them with growing delays.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from ..core import Frontdesk
from ..errors import RateLimited
from ..storage.db import now, transaction
from ..storage.notify import RATE_LIMIT, announce
from ..storage.ratelimit import counts, hit, key
from .memory import memory_of

__all__ = [
    "Limit",
    "authorize_limits",
    "check",
    "client_auth_limits",
    "count_and_check",
    "count_failure",
    "user_code_limits",
]


@dataclass(frozen=True, slots=True)
class Limit:
    name: str
    subject: str
    attempts: int
    window: int


def client_auth_limits(fd: Frontdesk, client_id: str, ip: str | None) -> list[Limit]:
    rl = fd.settings.rate_limits
    return list(_client_auth_limits(client_id, ip, rl.client_auth_per_client_and_ip, rl.client_auth_per_ip))


@functools.lru_cache(maxsize=4096)  # the same client from the same address, request after request
def _client_auth_limits(
    client_id: str, ip: str | None, per_client_and_ip: tuple[int, int], per_ip: tuple[int, int]
) -> tuple[Limit, ...]:
    # Per client *and* address: a client guessed at from one address still authenticates from its own.
    return (
        Limit("client_auth_client_ip", f"{client_id}\x00{ip}", *per_client_and_ip),
        Limit("client_auth_ip", str(ip), *per_ip),
    )


def user_code_limits(fd: Frontdesk, ip: str | None) -> list[Limit]:
    return [Limit("user_code_ip", str(ip), *fd.settings.rate_limits.user_code_per_ip)]


def authorize_limits(fd: Frontdesk, ip: str | None) -> list[Limit]:
    return [Limit("authorize_ip", str(ip), *fd.settings.rate_limits.authorize_per_ip)]


def _retry_after(limit: Limit, at: int) -> int:
    return limit.window - at % limit.window


def _used(fd: Frontdesk, limits: Sequence[Limit], at: int) -> list[int]:
    """The failures each limit has counted in its current window: from this process's memory where it keeps them
    (oauth/memory.py: dropped everywhere when a failure is counted anywhere), else in one read of the store. A client
    that authenticates request after request then costs no read at all, the thousandth as the first."""
    memory = memory_of(fd.engine)
    asked = [(limit.name, limit.subject, limit.window) for limit in limits]
    if memory is None:
        return counts(fd.engine, asked, at)
    windows = [(key(name, subject), at - at % window) for name, subject, window in asked]
    known = [n for n in (memory.failures.get(window) for window in windows) if n is not None]
    if len(known) == len(windows):
        return known
    epoch = memory.failures.epoch()
    used = counts(fd.engine, asked, at)
    memory.failures.keep(epoch, dict(zip(windows, used, strict=True)))
    return used


def check(fd: Frontdesk, limits: Sequence[Limit]) -> None:
    """Raise RateLimited when any limit is used up."""
    if not fd.settings.rate_limits.enabled:
        return
    at = now()
    used = _used(fd, limits, at)
    for limit, n in zip(limits, used, strict=True):
        if n >= limit.attempts:
            raise RateLimited(
                "too many attempts; try again later",
                retry_after=_retry_after(limit, at),
                detail=f"limit {limit.name}",
            )


def count_failure(fd: Frontdesk, limits: Sequence[Limit]) -> None:
    if not fd.settings.rate_limits.enabled:
        return
    at = now()
    with transaction(fd.engine) as conn:
        for limit in limits:
            hit(conn, limit.name, limit.subject, limit.window, at)
        announce(conn, RATE_LIMIT)  # every process drops the counts it keeps (oauth/memory.py)
    memory = memory_of(fd.engine)
    if memory is not None:  # this one at once, not at its listener's next read
        memory.failures.drop()


def count_and_check(fd: Frontdesk, limits: Sequence[Limit]) -> None:
    """Count this attempt and refuse it when it is over a limit: for limits on every request, not on failures."""
    if not fd.settings.rate_limits.enabled:
        return
    at = now()
    with transaction(fd.engine) as conn:
        counts = [(limit, hit(conn, limit.name, limit.subject, limit.window, at)) for limit in limits]
    for limit, n in counts:
        if n > limit.attempts:
            raise RateLimited(
                "too many requests; try again later", retry_after=_retry_after(limit, at), detail=f"limit {limit.name}"
            )
