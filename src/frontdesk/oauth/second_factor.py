"""The second factor: TOTP (RFC 6238) enrolment with a QR code, one-time recovery codes, the check at sign-in, and
the operator's policy of who must have one.

The TOTP secret must be recovered to check a code, so it is sealed under the master key with the person's id as
associated data (a sealed secret copied to another row does not open). Recovery codes are only ever compared, so they
are kept as HMAC digests under a key derived from the master key: a copy of the database alone cannot test guesses.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

import segno
from markupsafe import Markup
from sqlalchemy import Connection

from ..config import SecondFactorPolicy
from ..core import Frontdesk
from ..protocol import rfc6238
from ..secret import Secret
from ..storage import audit
from ..storage.db import now, transaction
from ..storage.people import UserRecord
from ..storage.second_factor import (
    confirm_totp,
    remove_second_factor,
    replace_recovery_codes,
    start_totp,
    totp_for,
    use_recovery_code,
    use_totp_step,
)
from .rate_limits import Limit, check, count_failure
from .security_notices import Change, tell
from .tokens import ACR_MFA

__all__ = [
    "RECOVERY_CODES",
    "Enrolment",
    "attempt_limits",
    "begin_enrolment",
    "check_code",
    "confirm_enrolment",
    "enrol",
    "has_second_factor",
    "mfa_required",
    "new_recovery_codes",
    "renew_recovery_codes",
    "start_enrolment",
    "turn_off",
]

RECOVERY_CODES = 10
# Ten characters from 31 that cannot be mistaken for one another (no 0/o, 1/l/i): about 49 bits each.
_RECOVERY_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
_RECOVERY_LENGTH = 10


@dataclass(frozen=True, slots=True)
class Enrolment:
    """What the enrolment page shows: the secret for typing in, and the QR code of its ``otpauth://`` URI."""

    secret: Secret
    qr_svg: Markup

    @property
    def grouped(self) -> str:
        value = self.secret.value
        return " ".join(value[i : i + 4] for i in range(0, len(value), 4))


def mfa_required(policy: SecondFactorPolicy, client_id: str | None, acr_values: tuple[str, ...]) -> bool:
    """Whether this sign-in needs a second factor beyond the person's own choice: the operator's policy, or a client
    asking for the multi-factor acr (OpenID Connect Core §3.1.2.1 ``acr_values``). Pure: ``signin.next_step`` is
    the one place that asks."""
    return (
        policy.required == "all"
        or (client_id is not None and client_id in policy.required_for_clients)
        or ACR_MFA in acr_values
    )


def attempt_limits(fd: Frontdesk, user_id: str) -> list[Limit]:
    """Wrong codes (from the app, recovery codes, or confirming an enrolment) counted per person: with the password
    known, a million six-digit codes must not be a guessing game."""
    return [Limit("second_factor_account", user_id, *fd.settings.rate_limits.second_factor_per_account)]


def _aad(user_id: str) -> bytes:
    return b"frontdesk totp:" + user_id.encode()


def _secret_of(fd: Frontdesk, user_id: str, sealed: bytes) -> str:
    return fd.master.open(sealed, _aad(user_id)).decode()


def _qr(uri: str) -> Markup:
    # An inline SVG drawn here: no image request, nothing sent to a QR service, allowed by the page's strict CSP.
    svg = segno.make(uri, error="m").svg_inline(
        scale=1,
        border=4,
        dark="#000",
        light="#fff",  # a quiet zone of its own: scannable on a dark page too
        omitsize=True,
        title="QR code for your authenticator app",
        svgclass="qr",
        lineclass=None,
    )
    return Markup(svg)  # noqa: S704 — segno's own markup; the only input is our URI, which it encodes as modules


def _issuer_name(fd: Frontdesk) -> str:
    return fd.settings.second_factor.totp_issuer or urlsplit(fd.issuer).hostname or fd.issuer


def begin_enrolment(fd: Frontdesk, conn: Connection, user: UserRecord, at: int) -> Enrolment | None:
    """The pending secret (made now, or kept from a page shown before, so a reload does not change the QR code);
    None when the person already has a confirmed one."""
    row = totp_for(conn, user.id)
    if row is not None and row.confirmed_at is not None:
        return None
    if row is not None:
        secret = _secret_of(fd, user.id, row.sealed)
    else:
        secret = rfc6238.new_secret()
        start_totp(conn, user.id, fd.master.seal(secret.encode(), _aad(user.id)), at)
    uri = rfc6238.provisioning_uri(secret, user.username, _issuer_name(fd))
    return Enrolment(Secret(secret), _qr(uri))


def confirm_enrolment(fd: Frontdesk, conn: Connection, user_id: str, code: str, at: int) -> list[str] | None:
    """A first code from the app confirms the secret; the answer is the person's recovery codes, shown once."""
    row = totp_for(conn, user_id)
    if row is None or row.confirmed_at is not None:
        return None
    step = rfc6238.matching_step(_secret_of(fd, user_id, row.sealed), code, at)
    if step is None or not confirm_totp(conn, user_id, step, at):
        return None
    return new_recovery_codes(fd, conn, user_id, at)


def has_second_factor(conn: Connection, user_id: str) -> bool:
    row = totp_for(conn, user_id)
    return row is not None and row.confirmed_at is not None


def _recovery_key(fd: Frontdesk) -> bytes:
    return hmac.new(fd.master.key, b"frontdesk recovery codes", hashlib.sha256).digest()


def _normalised(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch not in " -")


def _recovery_digest(fd: Frontdesk, user_id: str, code: str) -> str:
    return hmac.new(_recovery_key(fd), f"{user_id}:{_normalised(code)}".encode(), hashlib.sha256).hexdigest()


def new_recovery_codes(fd: Frontdesk, conn: Connection, user_id: str, at: int) -> list[str]:
    """A fresh set (the old one stops working), formatted ``xxxxx-xxxxx``."""
    raw = ["".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH)) for _ in range(RECOVERY_CODES)]
    replace_recovery_codes(conn, user_id, [_recovery_digest(fd, user_id, c) for c in raw], at)
    return [f"{c[:5]}-{c[5:]}" for c in raw]


def check_code(fd: Frontdesk, conn: Connection, user_id: str, code: str, at: int) -> str | None:
    """Which second factor ``code`` proves — ``"totp"`` or ``"recovery_code"`` — using it up; None if neither."""
    row = totp_for(conn, user_id)
    if row is None or row.confirmed_at is None:
        return None
    secret = _secret_of(fd, user_id, row.sealed)
    step = rfc6238.matching_step(secret, code, at, after=row.last_used_step)
    if step is not None:
        return "totp" if use_totp_step(conn, user_id, step) else None
    normalised = _normalised(code)
    if len(normalised) == _RECOVERY_LENGTH and use_recovery_code(
        conn, user_id, _recovery_digest(fd, user_id, normalised), at
    ):
        return "recovery_code"
    return None


# --- the account's changes: one transaction and one audit event each ---------------------------------------------


def start_enrolment(fd: Frontdesk, user: UserRecord) -> Enrolment | None:
    """``begin_enrolment`` on its own: the secret to show, or None when the second step is on already."""
    with transaction(fd.engine) as conn:
        return begin_enrolment(fd, conn, user, now())


def enrol(fd: Frontdesk, user_id: str, code: str, ip: str | None) -> list[str] | None:
    """The first code from the app turns the second step on, audited as ``second_factor.enrolled``; the answer is the
    person's recovery codes, shown once. None for a wrong code, counted in ``attempt_limits``; raises RateLimited
    when they are used up."""
    limits = attempt_limits(fd, user_id)
    check(fd, limits)
    with transaction(fd.engine) as conn:
        codes = confirm_enrolment(fd, conn, user_id, code, now())
        if codes is not None:
            audit.record(conn, "second_factor.enrolled", "success", user_id=user_id, ip=ip)
    if codes is None:
        count_failure(fd, limits)
    else:
        tell(fd, user_id, Change.SECOND_FACTOR_ON, ip=ip)
    return codes


def turn_off(fd: Frontdesk, user_id: str, ip: str | None) -> bool:
    """Remove the person's second factor and recovery codes, audited as ``second_factor.removed``; False if there
    was none."""
    with transaction(fd.engine) as conn:
        removed = remove_second_factor(conn, user_id)
        if removed:
            audit.record(conn, "second_factor.removed", "success", user_id=user_id, ip=ip)
    if removed:
        tell(fd, user_id, Change.SECOND_FACTOR_OFF, ip=ip)
    return removed


def renew_recovery_codes(fd: Frontdesk, user_id: str, ip: str | None) -> list[str] | None:
    """A new set of recovery codes (the old set stops working), audited as ``recovery_codes.created``; None when the
    person has no second factor."""
    with transaction(fd.engine) as conn:
        if not has_second_factor(conn, user_id):
            return None
        codes = new_recovery_codes(fd, conn, user_id, now())
        audit.record(conn, "recovery_codes.created", "success", user_id=user_id, ip=ip)
    return codes
