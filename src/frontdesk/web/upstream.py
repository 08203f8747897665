"""Signing in with an upstream provider, in the browser: the buttons on the sign-in page, the trip out, the way
back, and the page that asks a person to confirm linking the account their verified email points at.

start: boundInteraction → checkCsrf → findProvider → begin (a cookie binds the trip to this browser) → the provider
callback: findProvider → comeBack (state taken once, same browser, code exchanged, ID token validated against the
  provider's key set, cached for the process) → interaction
finish: boundInteraction → the trip that came back → sign in (a second factor if one is owed), or ask to link
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..core import Frontdesk
from ..errors import OAuthError
from ..oauth.signin import after_first_factor
from ..oauth.signin_throttle import Refusal
from ..upstream import FED, Refused
from ..upstream.arrival import Link, Pending, close_trip, leave_for, link_with_password, pending
from ..upstream.arrival import callback as come_back
from .authorize import (
    START_AGAIN,
    bound_interaction,
    posted_form,
    problem,
    render,
    see_other,
    visit_of,
)
from .cookies import clear_upstream, set_upstream, upstream_browser
from .http import client_ip, read_params
from .pages import page
from .throttle import too_many_attempts

__all__ = ["callback", "finish", "start"]

PWD = "pwd"  # RFC 8176 §2: the password that confirmed a link


def _unknown_provider() -> Response:
    return problem("Unknown provider", "This way of signing in is not offered here.", 404)


async def start(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    bound = await bound_interaction(request, fd)
    if isinstance(bound, Response):
        return bound
    ix, binding = bound
    form = await posted_form(request, fd, fd.csrf_token(binding), START_AGAIN)
    if isinstance(form, Response):
        return form
    trip = await run_in_threadpool(leave_for, fd, request.path_params["name"], ix.id)
    if trip is None:
        return _unknown_provider()
    url, browser = trip
    # RFC 9700 §4.12: 303 after a POST. The provider's page is reached with a GET that carries no form data.
    response = RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
    set_upstream(response, fd, browser)
    return response


async def callback(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    try:
        params = await read_params(request, fd.settings.max_body_bytes)
    except OAuthError:  # a malformed or repeated parameter: the same answer as any other broken link
        return problem("Could not sign you in", "This sign-in link is not valid.")
    browser = upstream_browser(request, fd)
    keys = request.app.state.upstream_keys
    returned = await run_in_threadpool(
        come_back, fd, keys, request.path_params["name"], params, browser, client_ip(request)
    )
    response: Response
    if returned is None:
        response = _unknown_provider()
    elif isinstance(returned, Refused):
        back = f"/interaction/{returned.interaction_id}/login" if returned.interaction_id else None
        response = page(
            "done.html",
            400,
            title="Could not sign you in",
            message=returned.message,
            link=back,
            link_text="Back to sign-in",
        )
    else:
        response = see_other(f"/interaction/{returned.interaction_id}/upstream")
    clear_upstream(response, fd)
    return response


def _link_page(ix_id: str, trip: Pending, csrf: str, status: int = 200, message: str | None = None) -> Response:
    return page(
        "upstream_link.html",
        status,
        title="Link your account?",
        action=f"/interaction/{ix_id}/upstream",
        csrf=csrf,
        email=trip.login.email,
        username=trip.username,
        provider=trip.provider,
        message=message,
    )


async def finish(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    bound = await bound_interaction(request, fd)
    if isinstance(bound, Response):
        return bound
    ix, binding = bound
    csrf = fd.csrf_token(binding)
    trip = await run_in_threadpool(pending, fd, ix.id)
    if trip is None:
        return see_other(f"/interaction/{ix.id}/login")
    login = trip.login
    assert login.user_id is not None
    visit = visit_of(request, fd)
    if login.status == "returned":
        if not await run_in_threadpool(close_trip, fd, login):
            return see_other(f"/interaction/{ix.id}/login")
        return render(
            fd, await run_in_threadpool(after_first_factor, fd, ix.id, ix.params, login.user_id, (FED,), visit)
        )
    if request.method == "GET":
        return _link_page(ix.id, trip, csrf)
    form = await posted_form(request, fd, csrf, START_AGAIN)
    if isinstance(form, Response):
        return form
    if form.get("decision") == "cancel":
        await run_in_threadpool(close_trip, fd, login)
        return see_other(f"/interaction/{ix.id}/login")
    linked = await run_in_threadpool(link_with_password, fd, trip, form.get("password", ""), client_ip(request))
    if isinstance(linked, Refusal):
        return too_many_attempts(linked)
    if linked is Link.WRONG_PASSWORD:
        return _link_page(ix.id, trip, csrf, 401, "Wrong password.")
    if linked is Link.GONE:
        return see_other(f"/interaction/{ix.id}/login")
    outcome = await run_in_threadpool(after_first_factor, fd, ix.id, ix.params, login.user_id, (FED, PWD), visit)
    return render(fd, outcome)
