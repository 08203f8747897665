"""The sign-in steps after (or instead of) the password, as services for the interaction pages: the second factor
— a code from the authenticator app, a recovery code, or enrolling an app when one is owed (RFC 6238; the methods
recorded as RFC 8176 ``amr`` values) — and signing in with a passkey (WebAuthn Level 3 §7.2).

Each is one transaction with its audit event; the pages render the value it returns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from ..core import Frontdesk
from ..protocol.rfc8176 import MFA, OTP
from ..storage import audit
from ..storage.db import now, transaction
from ..storage.interactions import interaction_for
from ..storage.people_admin import person_disabled
from .outcomes import Expired
from .passkeys import PasskeyError, PasskeySignIn, authentication_options
from .passkeys import sign_in as passkey_sign_in
from .rate_limits import check, count_failure
from .second_factor import Enrolment, attempt_limits, begin_enrolment, check_code, confirm_enrolment, has_second_factor
from .security_notices import Change, tell
from .signin import Visit, signed_in

__all__ = [
    "Proved",
    "SecondStep",
    "WrongCode",
    "passkey_challenge",
    "passkey_signin",
    "prove_second_factor",
    "second_step",
]


@dataclass(frozen=True, slots=True)
class SecondStep:
    """The second step's page: the code form for a person with an app (``enrolment`` None), or the enrolment page
    for one who owes a second factor but has none."""

    has_app: bool
    enrolment: Enrolment | None = None


def second_step(fd: Frontdesk, user_id: str) -> SecondStep | None:
    """What the person who passed the first factor meets next; None when their account is gone."""
    at = now()
    with transaction(fd.engine) as conn:
        user = fd.users.by_id(conn, user_id)
        if user is None:
            return None
        if has_second_factor(conn, user.id):
            return SecondStep(has_app=True)
        return SecondStep(has_app=False, enrolment=begin_enrolment(fd, conn, user, at))


@dataclass(frozen=True, slots=True)
class Proved:
    """Signed in with both factors. ``recovery_codes``: the set made by confirming an enrolment, shown once."""

    token: str = field(repr=False)
    recovery_codes: list[str] | None = field(repr=False)


@dataclass(frozen=True, slots=True)
class WrongCode:
    """The code was not right: counted against the person's attempts and audited."""


@dataclass(frozen=True, slots=True)
class _Proof:
    method: str  # totp | recovery_code
    recovery_codes: list[str] | None


def _proof(fd: Frontdesk, conn: Connection, user_id: str, code: str, ip: str | None, at: int) -> _Proof | None:
    """The code checked against the person's app or recovery codes, or confirming the app being enrolled."""
    if has_second_factor(conn, user_id):
        method = check_code(fd, conn, user_id, code, at)
        if method == "recovery_code":
            audit.record(conn, "recovery_code.used", "success", user_id=user_id, ip=ip)
        return _Proof(method, None) if method else None
    codes = confirm_enrolment(fd, conn, user_id, code, at)
    if codes is None:
        return None
    audit.record(conn, "second_factor.enrolled", "success", user_id=user_id, ip=ip)
    return _Proof("totp", codes)


def prove_second_factor(
    fd: Frontdesk, ix_id: str, binding: str, user_id: str, code: str, visit: Visit
) -> Proved | WrongCode | Expired:
    """Check the code (or confirm the enrolment), then sign the person in with both factors in their amr. Raises
    ``RateLimited`` once the person's attempts are spent."""
    limits = attempt_limits(fd, user_id)
    check(fd, limits)
    at = now()
    proved: Proved | None = None
    with transaction(fd.engine) as conn:
        current = interaction_for(conn, ix_id, binding, at)
        # A person disabled since their first factor (admin.people) finishes no sign-in.
        if current is None or current.pending_user_id != user_id or person_disabled(conn, user_id):
            return Expired()
        proof = _proof(fd, conn, user_id, code, visit.ip, at)
        if proof is not None:
            # The methods held on the interaction as it stands now, in this transaction: the ones proved for it.
            amr = tuple(dict.fromkeys((*current.pending_amr, OTP, MFA)))
            proved = Proved(signed_in(fd, conn, ix_id, user_id, amr, visit, at), proof.recovery_codes)
    if proved is not None:
        if proved.recovery_codes is not None:  # the app was enrolled just now, as this sign-in asked
            tell(fd, user_id, Change.SECOND_FACTOR_ON, ip=visit.ip, where="sign-in")
        return proved
    count_failure(fd, limits)
    with transaction(fd.engine) as conn:
        audit.record(conn, "second_factor", "failure", user_id=user_id, ip=visit.ip)
    return WrongCode()


def passkey_challenge(fd: Frontdesk, ix_id: str) -> dict[str, Any]:
    """The options (with a fresh challenge) for signing in to this interaction with a passkey."""
    with transaction(fd.engine) as conn:
        options: dict[str, Any] = json.loads(authentication_options(fd, conn, ix_id, now()))
    return options


def passkey_signin(fd: Frontdesk, ix_id: str, binding: str, credential: str, ip: str | None) -> PasskeySignIn | Expired:
    """The browser's signed answer checked: whose passkey signed it. A refused one is audited and raises
    ``PasskeyError`` with words for the person."""
    at = now()
    try:
        with transaction(fd.engine) as conn:
            if interaction_for(conn, ix_id, binding, at) is None:
                return Expired()
            return passkey_sign_in(fd, conn, ix_id, credential, at)
    except PasskeyError:
        with transaction(fd.engine) as conn:
            audit.record(conn, "signin", "failure", ip=ip, method="passkey")
        raise
