"""Sign-in throttling that slows a guesser down without letting anyone lock a person out.

The policy (settings in ``[signin_throttle]``, shared by every process through the database):

Every failed password is remembered three times — for the account at that address, for the account, and for the
address — and each memory is forgotten once its subject stays quiet for ``forget_after`` seconds.

- **Account at an address.** An address may get an account's password wrong ``free_per_account_and_ip`` times.
  After that each try must wait ``base_delay`` seconds after the last failure, doubling with every further failure,
  up to ``max_delay``. This is what slows a guesser at one address, and all that a person who mistypes ever meets.
- **Address.** Across all accounts the same growth sets in after ``free_per_ip`` failures: it slows one address
  trying many accounts.
- **Account.** Failures from everywhere never refuse a try by themselves: that would let anyone lock a person out
  by guessing wrong on purpose. Past ``account_under_attack`` failures they only shrink the free tries every address
  has for that account to ``free_under_attack``, so a guesser spread over many addresses gets one try per address
  before the delays start, while an address that has not failed — the person's own — is answered at once.

A refused try is answered before the password is checked (429 with Retry-After), counts as no failure (waiting is
the only way out, so the delay stays capped) and is audited. A correct password clears the failures of that account
at that address. Passkeys and upstream providers never pass through here: wrong passwords cannot delay them.

Every function takes the moment ``at`` from its caller, so the policy is tested with a clock of the test's own.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import SigninThrottle
from ..core import Frontdesk
from ..storage import audit
from ..storage.db import transaction
from ..storage.throttle import Failures, add_failure, clear_failures, failures_of

__all__ = ["Refusal", "delay_after", "record_failure", "record_success", "refusal", "wait_for"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """A try refused for now: how long until the next one is answered, and which memory refused it."""

    retry_after: int
    reason: str  # account_at_address | address


def delay_after(failures: int, free: int, settings: SigninThrottle) -> int:
    """Seconds a subject with ``failures`` remembered failures waits after its last one (0 while tries are free)."""
    if failures < free:
        return 0
    # Doubling from the first failure past the free ones; the exponent is bounded so the number stays small.
    return min(settings.max_delay, settings.base_delay << min(failures - free, 32))


def _subjects(account: str, ip: str | None) -> tuple[str, str, str]:
    name = account.lower()
    return f"pair\x00{name}\x00{ip}", f"account\x00{name}", f"ip\x00{ip}"


def wait_for(settings: SigninThrottle, pair: Failures, account: Failures, address: Failures, at: int) -> Refusal | None:
    """The policy itself, on remembered failures: how long this try must still wait, if at all."""
    free = settings.free_per_account_and_ip
    if account.count >= settings.account_under_attack:
        free = min(free, settings.free_under_attack)
    waits = [
        (pair.last_at + delay_after(pair.count, free, settings) - at, "account_at_address"),
        (address.last_at + delay_after(address.count, settings.free_per_ip, settings) - at, "address"),
    ]
    retry_after, reason = max(waits)
    return Refusal(retry_after, reason) if retry_after > 0 else None


def refusal(fd: Frontdesk, account: str, ip: str | None, at: int) -> Refusal | None:
    """Whether a password try for ``account`` from ``ip`` must wait; a refusal is audited."""
    settings = fd.settings.signin_throttle
    if not settings.enabled:
        return None
    with transaction(fd.engine, readonly=True) as conn:
        pair, whole, address = failures_of(conn, _subjects(account, ip), at)
    refused = wait_for(settings, pair, whole, address, at)
    if refused is not None:
        with transaction(fd.engine) as conn:
            audit.record(
                conn,
                "signin",
                "throttled",
                user_id=fd.users.id_of(conn, account),
                ip=ip,
                username=account[:64],
                reason=refused.reason,
                retry_after=refused.retry_after,
            )
    return refused


def record_failure(fd: Frontdesk, account: str, ip: str | None, at: int) -> None:
    settings = fd.settings.signin_throttle
    if not settings.enabled:
        return
    with transaction(fd.engine) as conn:
        for subject in _subjects(account, ip):
            add_failure(conn, subject, at, settings.forget_after)


def record_success(fd: Frontdesk, account: str, ip: str | None) -> None:
    """The right password: this address's failures for the account are forgiven (the others stay remembered)."""
    if not fd.settings.signin_throttle.enabled:
        return
    with transaction(fd.engine) as conn:
        clear_failures(conn, _subjects(account, ip)[0])
