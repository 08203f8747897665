"""The end-session endpoint (OpenID Connect RP-Initiated Logout 1.0) and the page that asks before signing out.

end_session: readParams → parseLogoutRequest (a bad request is a page, never a redirect: BCP-31) → findSession →
no session: answer at once; a hint naming this person and session: signOut, answer; otherwise ask. The question's
form carries a CSRF token bound to the session, so another site can never sign a person out (§6).
"""

from __future__ import annotations

import logging

import anyio
import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..core import Frontdesk
from ..errors import OAuthError
from ..oauth.logout import LogoutRequest, deliver_due, end_sessions, parse_logout_request
from ..oauth.signin import SessionRow, browser_session, username_of
from ..protocol.forms import Params
from ..secret import same
from .authorize import problem, see_other
from .cookies import clear_session, session_token
from .http import client_ip, read_form, read_params
from .pages import page

__all__ = ["confirm", "deliver_forever", "end_session", "wake_outbox"]

log = logging.getLogger("frontdesk.logout")

_BAD = "This sign-out request is not valid"


def wake_outbox(app: Starlette) -> None:
    """Tell this process's outbox task that logout tokens are waiting (the others find them when they next look)."""
    wake = getattr(app.state, "logout_wake", None)
    if wake is not None:
        wake.set()


def _csrf(fd: Frontdesk, session: SessionRow) -> str:
    return fd.csrf_token("logout\x00" + session.digest)


def _answer(req: LogoutRequest, signed_out: bool) -> Response:
    """Back to the client's registered URI with its state, or a page saying where the person stands."""
    url = req.answer()
    if url is not None:
        return see_other(url)
    if signed_out:
        return page("done.html", title="Signed out", message="You have signed out.")
    return page("done.html", title="Still signed in", message="You are still signed in.")


def _signed_out(fd: Frontdesk, req: LogoutRequest, session: SessionRow, ip: str | None) -> Response:
    end_sessions(fd, session.user_id, [session.id], ip=ip)
    response = _answer(req, signed_out=True)
    clear_session(response, fd)
    return response


def _ask(fd: Frontdesk, req: LogoutRequest, session: SessionRow) -> Response:
    username = username_of(fd, session.user_id)
    hidden = [
        ("client_id", req.client.client_id if req.client else None),
        ("post_logout_redirect_uri", req.post_logout_redirect_uri),
        ("state", req.state),
    ]
    return page(
        "logout.html",
        title="Sign out?",
        csrf=_csrf(fd, session),
        username=username or "",
        client_name=req.client.name if req.client else None,
        hidden=[(name, value) for name, value in hidden if value is not None],
    )


def _end_session(fd: Frontdesk, params: Params, token: str | None, ip: str | None) -> Response:
    try:
        req = parse_logout_request(fd, params)
    except OAuthError as exc:
        return problem(_BAD, exc.description)
    session = browser_session(fd, token)
    if session is None:
        return _answer(req, signed_out=True)
    if req.tied_to(session.user_id, session.id):
        return _signed_out(fd, req, session, ip)
    return _ask(fd, req, session)


async def end_session(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    try:
        params = await read_params(request, fd.settings.max_body_bytes)
    except OAuthError as exc:
        return problem(_BAD, exc.description or "The request could not be read.")
    response = await run_in_threadpool(_end_session, fd, params, session_token(request, fd), client_ip(request))
    wake_outbox(request.app)
    return response


def _confirm(fd: Frontdesk, form: Params, token: str | None, ip: str | None) -> Response:
    form.pop("id_token_hint", None)  # the question was asked because the hint did not settle it
    try:
        req = parse_logout_request(fd, form)
    except OAuthError as exc:
        return problem(_BAD, exc.description)
    session = browser_session(fd, token)
    if session is None:
        return _answer(req, signed_out=True)
    if not same(form.get("csrf", ""), _csrf(fd, session)):
        return problem("This form has expired", "Open the sign-out link again.", 403)
    decision = form.get("decision")
    if decision == "logout":
        return _signed_out(fd, req, session, ip)
    if decision == "stay":
        return _answer(req, signed_out=False)
    return problem("Invalid request", "Choose Sign out or Stay signed in.")


async def confirm(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    try:
        form = await read_form(request, fd.settings.max_body_bytes)
    except OAuthError:
        return problem("Invalid request", "The form could not be read.")
    response = await run_in_threadpool(_confirm, fd, form, session_token(request, fd), client_ip(request))
    wake_outbox(request.app)
    return response


async def deliver_forever(app: Starlette) -> None:
    """The outbox task of the server's lifespan: deliver due logout tokens every ``poll`` seconds, or at once
    when this process queued some. One HTTP client for the server's life; no redirect is followed."""
    fd: Frontdesk = app.state.fd
    with httpx.Client(follow_redirects=False) as http:
        while True:
            wake = app.state.logout_wake = anyio.Event()
            with anyio.move_on_after(fd.settings.backchannel_logout.poll):
                await wake.wait()
            try:
                await run_in_threadpool(deliver_due, fd, http)
            except Exception:  # like the purge: never fatal; undelivered tokens stay in the outbox for the next round
                log.exception("back-channel logout delivery failed")
