"""Signing in with an upstream provider, in the browser: the buttons on the sign-in page, the trip out, the way
back, and the page that asks a person to confirm linking the account their verified email points at.

start: boundInteraction → checkCsrf → findProvider → begin (a cookie binds the trip to this browser) → the provider
callback: findProvider → comeBack (state taken once, same browser, code exchanged, ID token validated against the
  provider's key set, cached for the process) → interaction
finish: boundInteraction → the trip that came back → sign in (a second factor if one is owed), or ask to link
"""

from __future__ import annotations

import logging

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..core import Frontdesk
from ..errors import OAuthError
from ..oauth.signin_throttle import record_failure, record_success, refusal
from ..protocol.forms import Params
from ..storage import audit
from ..storage.db import now, transaction
from ..storage.upstream import LoginRow, finish_login, login_of_interaction
from ..upstream import FED, ProviderKeys, Refused, begin, come_back, confirm_link, find_provider
from .authorize import (
    START_AGAIN,
    after_first_factor,
    bound_interaction,
    posted_form,
    problem,
    see_other,
    visit_of,
)
from .cookies import clear_upstream, set_upstream, upstream_browser
from .http import client_ip, read_params
from .pages import page
from .throttle import too_many_attempts

__all__ = ["callback", "finish", "start"]

log = logging.getLogger("frontdesk.upstream")
PWD = "pwd"  # RFC 8176 §2: the password that confirmed a link


async def start(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    bound = await bound_interaction(request, fd)
    if isinstance(bound, Response):
        return bound
    ix, binding = bound
    form = await posted_form(request, fd, fd.csrf_token(binding), START_AGAIN)
    if isinstance(form, Response):
        return form
    provider = await run_in_threadpool(find_provider, fd, request.path_params["name"])
    if provider is None:
        return problem("Unknown provider", "This way of signing in is not offered here.", 404)
    url, browser = await run_in_threadpool(begin, fd, provider, ix.id, now())
    # RFC 9700 §4.12: 303 after a POST. The provider's page is reached with a GET that carries no form data.
    response = RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
    set_upstream(response, fd, browser)
    return response


def _callback(
    fd: Frontdesk, keys: ProviderKeys, name: str, params: Params, browser: str | None, ip: str | None
) -> Response:
    provider = find_provider(fd, name)
    if provider is None:
        return problem("Unknown provider", "This way of signing in is not offered here.", 404)
    try:
        with httpx.Client(follow_redirects=False) as http:
            returned = come_back(fd, http, keys, provider, params, browser, ip, now())
    except Refused as exc:
        log.info("upstream sign-in refused", extra={"provider": name, "reason": exc.reason, "detail": exc.detail})
        with transaction(fd.engine) as conn:
            audit.record(conn, "upstream.signin", "refused", ip=ip, provider=name, reason=exc.reason)
        back = f"/interaction/{exc.interaction_id}/login" if exc.interaction_id else None
        return page(
            "done.html",
            400,
            title="Could not sign you in",
            message=exc.message,
            link=back,
            link_text="Back to sign-in",
        )
    return see_other(f"/interaction/{returned.interaction_id}/upstream")


async def callback(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    try:
        params = await read_params(request, fd.settings.max_body_bytes)
    except OAuthError:  # a malformed or repeated parameter: the same answer as any other broken link
        return problem("Could not sign you in", "This sign-in link is not valid.")
    browser = upstream_browser(request, fd)
    keys = request.app.state.upstream_keys
    response = await run_in_threadpool(
        _callback, fd, keys, request.path_params["name"], params, browser, client_ip(request)
    )
    clear_upstream(response, fd)
    return response


def _pending(fd: Frontdesk, ix_id: str) -> tuple[LoginRow, str, str] | None:
    """The interaction's trip that came back, with the account's username and the provider's display name."""
    with transaction(fd.engine, readonly=True) as conn:
        login = login_of_interaction(conn, ix_id, now())
        user = fd.users.by_id(conn, login.user_id) if login and login.user_id else None
    if login is None or user is None:
        return None
    provider = find_provider(fd, login.provider)
    return login, user.username, provider.display_name if provider else login.provider


def _link_page(
    ix_id: str, pending: tuple[LoginRow, str, str], csrf: str, status: int = 200, message: str | None = None
) -> Response:
    login, username, display_name = pending
    return page(
        "upstream_link.html",
        status,
        title="Link your account?",
        action=f"/interaction/{ix_id}/upstream",
        csrf=csrf,
        email=login.email,
        username=username,
        provider=display_name,
        message=message,
    )


def _finished(fd: Frontdesk, login: LoginRow) -> bool:
    with transaction(fd.engine) as conn:
        return finish_login(conn, login.id, login.status)


async def finish(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    bound = await bound_interaction(request, fd)
    if isinstance(bound, Response):
        return bound
    ix, binding = bound
    csrf = fd.csrf_token(binding)
    pending = await run_in_threadpool(_pending, fd, ix.id)
    if pending is None:
        return see_other(f"/interaction/{ix.id}/login")
    login, username, _ = pending
    assert login.user_id is not None
    visit = visit_of(request, fd)
    if login.status == "returned":
        if not await run_in_threadpool(_finished, fd, login):
            return see_other(f"/interaction/{ix.id}/login")
        return await run_in_threadpool(after_first_factor, fd, ix, login.user_id, (FED,), visit)
    if request.method == "GET":
        return _link_page(ix.id, pending, csrf)
    form = await posted_form(request, fd, csrf, START_AGAIN)
    if isinstance(form, Response):
        return form
    if form.get("decision") == "cancel":
        await run_in_threadpool(_finished, fd, login)
        return see_other(f"/interaction/{ix.id}/login")
    ip = client_ip(request)
    refused = await run_in_threadpool(refusal, fd, username, ip, now())
    if refused is not None:
        return too_many_attempts(refused)
    user = await run_in_threadpool(fd.users.authenticate, username, form.get("password", ""))
    if user is None or user.id != login.user_id:
        await run_in_threadpool(record_failure, fd, username, ip, now())
        return _link_page(ix.id, pending, csrf, 401, "Wrong password.")
    await run_in_threadpool(record_success, fd, username, ip)
    if not await run_in_threadpool(confirm_link, fd, login, ip, now()):
        return see_other(f"/interaction/{ix.id}/login")
    return await run_in_threadpool(after_first_factor, fd, ix, login.user_id, (FED, PWD), visit)
