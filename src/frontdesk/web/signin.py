"""The sign-in steps after (or instead of) the password: the second factor — a code from the authenticator app, a
recovery code, or enrolling an app when one is owed — and signing in with a passkey. The work is
``oauth.signin_steps``'s; these handlers read the forms and render what it decided."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..core import Frontdesk
from ..errors import RateLimited
from ..oauth.interactions import InteractionRow
from ..oauth.outcomes import Expired
from ..oauth.passkeys import PasskeyError
from ..oauth.signin import Visit, after_first_factor
from ..oauth.signin_steps import Proved, passkey_challenge, passkey_signin, prove_second_factor, second_step
from .authorize import (
    EXPIRED,
    START_AGAIN,
    bound_interaction,
    login_page,
    posted_form,
    problem,
    render,
    see_other,
    too_many,
    visit_of,
)
from .cookies import set_session
from .http import json_response
from .pages import page

__all__ = ["passkey", "passkey_options", "second_factor"]


def _step_page(fd: Frontdesk, ix: InteractionRow, csrf: str, status: int = 200, message: str | None = None) -> Response:
    """The code form for a person with an app; the enrolment page for one who owes a second factor but has none."""
    assert ix.pending_user_id is not None
    step = second_step(fd, ix.pending_user_id)
    if step is None:
        return problem(*EXPIRED)
    if step.has_app:
        return page(
            "second_factor.html", status, title="Enter your code", csrf=csrf, action=_action(ix), message=message
        )
    return page(
        "enrol_totp.html",
        status,
        title="Set up a second step",
        csrf=csrf,
        action=_action(ix),
        enrolment=step.enrolment,
        message=message,
        during_signin=True,
    )


def _action(ix: InteractionRow) -> str:
    return f"/interaction/{ix.id}/second-factor"


def _prove(fd: Frontdesk, ix: InteractionRow, binding: str, code: str, visit: Visit) -> Response:
    """Check the code (or confirm the enrolment), then sign the person in with both factors in their amr."""
    user_id = ix.pending_user_id
    assert user_id is not None
    try:
        proved = prove_second_factor(fd, ix.id, binding, user_id, code, visit)
    except RateLimited as exc:
        return too_many(exc)
    if isinstance(proved, Expired):
        return problem(*EXPIRED)
    if not isinstance(proved, Proved):
        wrong = "That code is not right. Type the 6-digit code your authenticator app shows now."
        return _step_page(fd, ix, fd.csrf_token(binding), 401, wrong)
    response: Response
    if proved.recovery_codes is not None:
        response = page(
            "recovery_codes.html",
            title="Save your recovery codes",
            codes=proved.recovery_codes,
            next=f"/interaction/{ix.id}",
        )
    else:
        response = see_other(f"/interaction/{ix.id}")
    set_session(response, fd, proved.token)
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
    return json_response(await run_in_threadpool(passkey_challenge, fd, ix.id))


def _passkey(fd: Frontdesk, ix: InteractionRow, binding: str, credential: str, visit: Visit) -> Response:
    try:
        done = passkey_signin(fd, ix.id, binding, credential, visit.ip)
    except PasskeyError as exc:
        return login_page(fd, ix, binding, 400, message=str(exc))
    if isinstance(done, Expired):
        return problem(*EXPIRED)
    return render(fd, after_first_factor(fd, ix.id, ix.params, done.user_id, done.amr, visit))


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
