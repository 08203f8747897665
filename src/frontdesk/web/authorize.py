"""The authorization endpoint and the interaction pages (sign-in, consent) it hands the person to.

authorize: parseParams → checkClient → checkRedirectUri (until here, errors are an HTML page, never a redirect:
RFC 9700 §4.11.2) → ``interactions.authorize`` (validate, then ``decision.decide``: answer, or open an interaction
for sign-in and consent) → render. Errors found after the redirect URI is trusted are sent back only once the
person is signed in (OAuth 2.1 §7.12.2), except under ``prompt=none``.

The decisions and their transactions are the services' (``frontdesk.oauth.interactions``, ``signin``); these
handlers parse HTTP, check CSRF and the binding cookie, and render what was decided (``render``).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..core import Frontdesk
from ..errors import OAuthError, RateLimited
from ..oauth.clients import find_client
from ..oauth.interactions import (
    ConsentView,
    InteractionRow,
    answer_consent,
    consent_view,
    load_interaction,
    login_hint,
)
from ..oauth.interactions import authorize as answer_request
from ..oauth.interactions import (
    resume as resume_interaction,
)
from ..oauth.outcomes import Expired, Redirect, SignedIn
from ..oauth.rate_limits import authorize_limits, count_and_check
from ..oauth.signin import Detour, Visit, after_first_factor, password_signin
from ..oauth.signin_throttle import Refusal
from ..oauth.signup import Unconfirmed
from ..protocol.forms import Params
from ..protocol.redirect_uri import check_redirect_uri
from ..protocol.rfc8176 import PWD
from ..protocol.scope import OIDC_SCOPES
from ..secret import same
from ..upstream import sign_in_buttons
from .cookies import interaction_binding, session_token, set_interaction, set_session
from .http import client_ip, read_form, read_params
from .pages import page
from .throttle import too_many_attempts

__all__ = [
    "EXPIRED",
    "START_AGAIN",
    "authorize",
    "bound_interaction",
    "consent",
    "detour",
    "login",
    "login_page",
    "render",
    "resume",
    "scope_words",
    "visit_of",
]


def see_other(url: str) -> RedirectResponse:
    # RFC 9700 §4.12: 303, never 307, after a request that may carry credentials.
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def problem(title: str, message: str, status: int = 400) -> Response:
    return page("error.html", status, title=title, message=message)


def detour(fd: Frontdesk, opened: Detour) -> Response:
    """To the interaction opened for what the person still has to do (``signin.open_for``), holding its binding
    cookie."""
    response = see_other(opened.path)
    set_interaction(response, fd, opened.interaction_id, opened.binding)
    return response


def render(fd: Frontdesk, outcome: Redirect | Detour | Expired | SignedIn) -> Response:
    """The response for what a service decided: a redirect (to the client or the next page), an interaction with
    its binding cookie, a new session cookie, or the page that says the sign-in expired."""
    if isinstance(outcome, Redirect):
        return see_other(outcome.url)
    if isinstance(outcome, Detour):
        return detour(fd, outcome)
    if isinstance(outcome, SignedIn):
        response = see_other(outcome.path)
        set_session(response, fd, outcome.token)
        return response
    return problem(*EXPIRED)


def too_many(exc: RateLimited) -> Response:
    minutes = max(1, round(exc.retry_after / 60))
    response = problem("Too many attempts", f"Wait {minutes} minute{'s' if minutes > 1 else ''} and try again.", 429)
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _authorize(fd: Frontdesk, params: Params, token: str | None, ip: str | None) -> Response:
    try:
        count_and_check(fd, authorize_limits(fd, ip))
    except RateLimited as exc:
        return too_many(exc)
    client_id = params.get("client_id")
    client = find_client(fd, client_id) if client_id else None
    if client is None:
        return problem("Unknown application", "The application that sent you here is not registered.")
    redirect_uri = check_redirect_uri(list(client.redirect_uris), params.get("redirect_uri"), client.public)
    if redirect_uri is None:
        return problem(
            "Invalid return address",
            "The application asked to send you back to an address it has not registered.",
        )
    return render(fd, answer_request(fd, client, redirect_uri, params, token, ip))


async def authorize(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    try:
        params = await read_params(request, fd.settings.max_body_bytes)
    except OAuthError as exc:
        # The client is not yet known to be genuine: explain to the person, never redirect.
        return problem("Invalid request", exc.description or "The request could not be read.")
    return await run_in_threadpool(_authorize, fd, params, session_token(request, fd), client_ip(request))


EXPIRED = (
    "This sign-in has expired",
    "This sign-in link has expired or was opened in another browser. Go back to the application and start again.",
)


async def resume(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    ix_id = request.path_params["ix"]
    outcome = await run_in_threadpool(
        resume_interaction, fd, ix_id, interaction_binding(request), session_token(request, fd), client_ip(request)
    )
    return render(fd, outcome)


def _client_name(fd: Frontdesk, params: dict[str, Any]) -> str | None:
    client_id = params.get("client_id") or (params.get("request") or {}).get("client_id")
    client = fd.clients.get(str(client_id)) if client_id else None
    return client.name if client else None


async def posted_form(request: Request, fd: Frontdesk, csrf: str, start_again: str) -> Params | Response:
    """A page's POST: the form, or the page that refuses it (unreadable, or a CSRF token that does not match)."""
    try:
        form = await read_form(request, fd.settings.max_body_bytes)
    except OAuthError:
        return problem("Invalid request", "The form could not be read.")
    if not same(form.get("csrf", ""), csrf):
        return problem("This form has expired", start_again, 403)
    return form


async def bound_interaction(request: Request, fd: Frontdesk) -> tuple[InteractionRow, str] | Response:
    """The interaction in the path, if this browser holds its binding cookie; with the binding."""
    binding = interaction_binding(request)
    ix = await run_in_threadpool(load_interaction, fd, request.path_params["ix"], binding)
    if ix is None or binding is None:
        return problem(*EXPIRED)
    return ix, binding


START_AGAIN = "Go back to the application and start again."


def login_page(
    fd: Frontdesk,
    ix: InteractionRow,
    binding: str,
    status: int = 200,
    *,
    username: str | None = None,
    message: str | None = None,
) -> Response:
    """The sign-in page: username and password, and (where the browser can) a passkey instead."""
    return page(
        "login.html",
        status,
        title="Sign in",
        action=f"/interaction/{ix.id}/login",
        passkey_action=f"/interaction/{ix.id}/passkey",
        csrf=fd.csrf_token(binding),
        client_name=_client_name(fd, ix.params),
        reauth=bool(ix.params.get("reauth")),
        upstreams=sign_in_buttons(fd, ix.id),
        forgot_password=bool(fd.settings.email.smtp_url),  # web/email_pages.py
        signup=fd.settings.signup.enabled,  # web/signup.py
        username=username,
        message=message,
        scripts=True,
    )


async def login(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    bound = await bound_interaction(request, fd)
    if isinstance(bound, Response):
        return bound
    ix, binding = bound
    csrf = fd.csrf_token(binding)
    if request.method == "GET":
        return login_page(fd, ix, binding, username=await run_in_threadpool(login_hint, fd, ix.params))
    form = await posted_form(request, fd, csrf, START_AGAIN)
    if isinstance(form, Response):
        return form
    username = form.get("username", "")
    signed = await run_in_threadpool(password_signin, fd, username, form.get("password", ""), client_ip(request))
    if isinstance(signed, Refusal):
        return too_many_attempts(signed)
    if signed is None:
        return login_page(fd, ix, binding, 401, username=username, message="Wrong username or password.")
    if isinstance(signed, Unconfirmed):
        return login_page(fd, ix, binding, 403, username=username, message=signed.message)
    outcome = await run_in_threadpool(after_first_factor, fd, ix.id, ix.params, signed, (PWD,), visit_of(request, fd))
    return render(fd, outcome)


def visit_of(request: Request, fd: Frontdesk) -> Visit:
    return Visit(session_token(request, fd), client_ip(request), request.headers.get("user-agent"))


def scope_words(fd: Frontdesk, scope: tuple[str, ...]) -> list[str]:
    """What a scope lets an app do, in the words of the consent screen (also the account page's)."""
    known = fd.scopes()
    return [known.get(s, s) for s in scope if s != "openid"] or [OIDC_SCOPES["openid"]]


def _consent_page(fd: Frontdesk, ix_id: str, csrf: str, view: ConsentView) -> Response:
    req = view.request
    # A request of authorization details alone asks for nothing but them (RFC 9396 §3.1).
    descriptions = scope_words(fd, req.scope) if req.scope or not view.details else []
    return page(
        "consent.html",
        title="Allow access?",
        action=f"/interaction/{ix_id}/consent",
        csrf=csrf,
        client_name=view.app.name,
        app=view.app,
        scopes=descriptions,
        details=view.details,
        resources=req.resource,
        redirect_host=req.redirect_host,
        redirect_to_device=view.redirect_to_device,
        username=view.username,
        hidden=[],
    )


async def consent(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    bound = await bound_interaction(request, fd)
    if isinstance(bound, Response):
        return bound
    ix, binding = bound
    ix_id = ix.id
    if ix.user_id is None or ix.params.get("kind") != "authorize":
        return see_other(f"/interaction/{ix_id}")
    csrf = fd.csrf_token(binding)
    if request.method == "GET":
        view = await run_in_threadpool(consent_view, fd, ix_id, binding, session_token(request, fd), client_ip(request))
        return _consent_page(fd, ix_id, csrf, view) if isinstance(view, ConsentView) else render(fd, view)
    form = await posted_form(request, fd, csrf, START_AGAIN)
    if isinstance(form, Response):
        return form
    decision = form.get("decision")
    if decision not in ("allow", "deny"):
        return problem("Invalid request", "Choose Allow or Deny.")
    outcome = await run_in_threadpool(
        answer_consent, fd, ix_id, binding, decision == "allow", session_token(request, fd), client_ip(request)
    )
    return render(fd, outcome)
