"""The sign-in steps after (or instead of) the password: the second factor — a code from the authenticator app, a
recovery code, or enrolling an app when one is owed — and signing in with a passkey."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..core import Frontdesk
from ..errors import RateLimited
from ..oauth.passkeys import PasskeyError, authentication_options
from ..oauth.passkeys import sign_in as passkey_sign_in
from ..oauth.rate_limits import check, count_failure
from ..oauth.second_factor import attempt_limits, begin_enrolment, check_code, confirm_enrolment, has_second_factor
from ..oauth.signin import Visit, signed_in
from ..protocol.rfc8176 import MFA, OTP
from ..storage import audit
from ..storage.db import now, transaction
from ..storage.interactions import InteractionRow, interaction_for
from .authorize import (
    EXPIRED,
    START_AGAIN,
    after_first_factor,
    bound_interaction,
    login_page,
    posted_form,
    problem,
    see_other,
    too_many,
    visit_of,
)
from .cookies import set_session
from .http import json_response
from .pages import page

__all__ = ["passkey", "passkey_options", "second_factor"]


@dataclass(frozen=True, slots=True)
class Proof:
    method: str  # totp | recovery_code
    recovery_codes: list[str] | None  # the set made by confirming an enrolment, shown once


def _step_page(fd: Frontdesk, ix: InteractionRow, csrf: str, status: int = 200, message: str | None = None) -> Response:
    """The code form for a person with an app; the enrolment page for one who owes a second factor but has none."""
    assert ix.pending_user_id is not None
    at = now()
    with transaction(fd.engine) as conn:
        user = fd.users.by_id(conn, ix.pending_user_id)
        if user is None:
            return problem(*EXPIRED)
        if has_second_factor(conn, user.id):
            return page(
                "second_factor.html", status, title="Enter your code", csrf=csrf, action=_action(ix), message=message
            )
        enrolment = begin_enrolment(fd, conn, user, at)
    return page(
        "enrol_totp.html",
        status,
        title="Set up a second step",
        csrf=csrf,
        action=_action(ix),
        enrolment=enrolment,
        message=message,
        during_signin=True,
    )


def _action(ix: InteractionRow) -> str:
    return f"/interaction/{ix.id}/second-factor"


def _proof(fd: Frontdesk, conn: Connection, user_id: str, code: str, ip: str | None, at: int) -> Proof | None:
    """The code checked against the person's app or recovery codes, or confirming the app being enrolled."""
    if has_second_factor(conn, user_id):
        method = check_code(fd, conn, user_id, code, at)
        if method == "recovery_code":
            audit.record(conn, "recovery_code.used", "success", user_id=user_id, ip=ip)
        return Proof(method, None) if method else None
    codes = confirm_enrolment(fd, conn, user_id, code, at)
    if codes is None:
        return None
    audit.record(conn, "second_factor.enrolled", "success", user_id=user_id, ip=ip)
    return Proof("totp", codes)


def _prove(fd: Frontdesk, ix: InteractionRow, binding: str, code: str, visit: Visit) -> Response:
    """Check the code (or confirm the enrolment), then sign the person in with both factors in their amr."""
    user_id = ix.pending_user_id
    assert user_id is not None
    limits = attempt_limits(fd, user_id)
    try:
        check(fd, limits)
    except RateLimited as exc:
        return too_many(exc)
    at = now()
    with transaction(fd.engine) as conn:
        current = interaction_for(conn, ix.id, binding, at)
        if current is None or current.pending_user_id != user_id:
            return problem(*EXPIRED)
        proof = _proof(fd, conn, user_id, code, visit.ip, at)
        if proof is not None:
            # The methods held on the interaction as it stands now, in this transaction: the ones proved for it.
            amr = tuple(dict.fromkeys((*current.pending_amr, OTP, MFA)))
            token = signed_in(fd, conn, ix.id, user_id, amr, visit, at)
    if proof is None:
        count_failure(fd, limits)
        with transaction(fd.engine) as conn:
            audit.record(conn, "second_factor", "failure", user_id=user_id, ip=visit.ip)
        wrong = "That code is not right. Type the 6-digit code your authenticator app shows now."
        return _step_page(fd, ix, fd.csrf_token(binding), 401, wrong)
    response: Response
    if proof.recovery_codes is not None:
        response = page(
            "recovery_codes.html",
            title="Save your recovery codes",
            codes=proof.recovery_codes,
            next=f"/interaction/{ix.id}",
        )
    else:
        response = see_other(f"/interaction/{ix.id}")
    set_session(response, fd, token)
    return response


async def second_factor(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    bound = await bound_interaction(request, fd)
    if isinstance(bound, Response):
        return bound
    ix, binding = bound
    if ix.pending_user_id is None:
        return see_other(f"/interaction/{ix.id}")
    csrf = fd.csrf_token(binding)
    if request.method == "GET":
        return await run_in_threadpool(_step_page, fd, ix, csrf)
    form = await posted_form(request, fd, csrf, START_AGAIN)
    if isinstance(form, Response):
        return form
    return await run_in_threadpool(_prove, fd, ix, binding, form.get("code", ""), visit_of(request, fd))


def _options(fd: Frontdesk, ix_id: str) -> dict[str, Any]:
    with transaction(fd.engine) as conn:
        options: dict[str, Any] = json.loads(authentication_options(fd, conn, ix_id, now()))
    return options


async def passkey_options(request: Request) -> Response:
    """The challenge for signing in with a passkey (fetched by the page's script, with the form's CSRF token)."""
    fd: Frontdesk = request.app.state.fd
    bound = await bound_interaction(request, fd)
    if isinstance(bound, Response):
        return json_response({"message": "This sign-in has expired. Go back to the application."}, 403)
    ix, binding = bound
    form = await posted_form(request, fd, fd.csrf_token(binding), START_AGAIN)
    if isinstance(form, Response):
        return json_response({"message": "This page has expired. Reload it and try again."}, 403)
    return json_response(await run_in_threadpool(_options, fd, ix.id))


def _passkey(fd: Frontdesk, ix: InteractionRow, binding: str, credential: str, visit: Visit) -> Response:
    at = now()
    try:
        with transaction(fd.engine) as conn:
            if interaction_for(conn, ix.id, binding, at) is None:
                return problem(*EXPIRED)
            done = passkey_sign_in(fd, conn, ix.id, credential, at)
    except PasskeyError as exc:
        with transaction(fd.engine) as conn:
            audit.record(conn, "signin", "failure", ip=visit.ip, method="passkey")
        return login_page(fd, ix, binding, 400, message=str(exc))
    return after_first_factor(fd, ix, done.user_id, done.amr, visit)


async def passkey(request: Request) -> Response:
    """The browser's signed answer: signed in (or on to the second step) as the passkey's owner."""
    fd: Frontdesk = request.app.state.fd
    bound = await bound_interaction(request, fd)
    if isinstance(bound, Response):
        return bound
    ix, binding = bound
    form = await posted_form(request, fd, fd.csrf_token(binding), START_AGAIN)
    if isinstance(form, Response):
        return form
    return await run_in_threadpool(_passkey, fd, ix, binding, form.get("credential", ""), visit_of(request, fd))
