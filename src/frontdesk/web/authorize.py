"""The authorization endpoint and the interaction pages (sign-in, consent) it hands the person to.

authorize: parseParams → checkClient → checkRedirectUri (until here, errors are an HTML page, never a redirect:
RFC 9700 §4.11.2) → validate → decide (answer, or open an interaction for sign-in and consent).
Errors found after the redirect URI is trusted are sent back only once the person is signed in (OAuth 2.1
§7.12.2), except under ``prompt=none``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..authorization import (
    AuthorizationRequest,
    error_redirect,
    issue_code,
    needs_consent,
    parse_prompt,
    success_redirect,
    validate,
)
from ..core import Frontdesk
from ..errors import AccessDenied, ConsentRequired, InteractionRequired, LoginRequired, OAuthError, RateLimited
from ..limits import authorize_limits, count_and_check
from ..protocol.forms import Params
from ..protocol.redirect_uri import check_redirect_uri
from ..protocol.rfc8176 import PWD, is_multi_factor
from ..protocol.scope import OIDC_SCOPES
from ..second_factor import has_second_factor, mfa_required
from ..secret import same
from ..signin import Visit, first_factor_passed, signed_in
from ..storage import audit
from ..storage.db import now, transaction
from ..storage.interactions import (
    InteractionRow,
    attach_user,
    finish_interaction,
    hold_for_second_factor,
    interaction_for,
    open_interaction,
)
from ..storage.people import SessionRow, record_consent, session_for
from ..throttle import record_failure, record_success, refusal
from ..upstream import sign_in_buttons
from .cookies import interaction_binding, session_token, set_interaction, set_session
from .http import client_ip, read_form, read_params
from .pages import page
from .throttle import too_many_attempts

__all__ = [
    "EXPIRED",
    "START_AGAIN",
    "after_first_factor",
    "authorize",
    "bound_interaction",
    "consent",
    "login",
    "login_page",
    "resume",
    "scope_words",
    "visit_of",
]


def see_other(url: str) -> RedirectResponse:
    # RFC 9700 §4.12: 303, never 307, after a request that may carry credentials.
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def problem(title: str, message: str, status: int = 400) -> Response:
    return page("error.html", status, title=title, message=message)


def _open(
    fd: Frontdesk,
    conn: Connection,
    data: dict[str, Any],
    at: int,
    login: bool,
    signed_in: SessionRow | None = None,
    step_up: bool = False,
) -> Response:
    """An interaction for what the person still has to do: sign in; or, signed in already, the second factor a
    step-up asks for, else straight to consent."""
    ix_id, binding = open_interaction(conn, data, at, fd.settings.lifetimes.interaction)
    step = "login" if login else "consent"
    if signed_in is not None and step_up:
        hold_for_second_factor(conn, ix_id, signed_in.user_id, signed_in.amr)
        step = "second-factor"
    elif signed_in is not None:
        attach_user(conn, ix_id, signed_in.user_id, signed_in.auth_time)
    response = see_other(f"/interaction/{ix_id}/{step}")
    set_interaction(response, fd, ix_id, binding)
    return response


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
    client = fd.clients.get(client_id) if client_id else None
    if client is None:
        return problem("Unknown application", "The application that sent you here is not registered.")
    redirect_uri = check_redirect_uri(list(client.redirect_uris), params.get("redirect_uri"), client.public)
    if redirect_uri is None:
        return problem(
            "Invalid return address",
            "The application asked to send you back to an address it has not registered.",
        )
    state = params.get("state")
    at = now()
    try:
        req: AuthorizationRequest | None = validate(fd, client, redirect_uri, params)
        error: OAuthError | None = None
    except OAuthError as exc:
        req, error = None, exc
    try:
        silent = "none" in parse_prompt(params.get("prompt"))
    except OAuthError:
        silent = False
    with transaction(fd.engine) as conn:
        session = session_for(conn, token, at, fd.settings.lifetimes.session_idle) if token else None
        if error is not None:
            if silent or session is not None:
                return see_other(error_redirect(fd, redirect_uri, state, error.error, error.description))
            data = {
                "kind": "error",
                "redirect_uri": redirect_uri,
                "state": state,
                "error": error.error,
                "error_description": error.description,
                "client_id": client.client_id,
            }
            return _open(fd, conn, data, at, login=True)
        assert req is not None
        # Whole seconds: an age equal to max_age may really exceed it, and max_age=0 must act as prompt=login
        # (OIDC Core §3.1.2.1) even within the second of the sign-in.
        stale = session is not None and req.max_age is not None and at - session.auth_time >= req.max_age
        must_login = session is None or "login" in req.prompt or stale
        # A session of one factor meets a request that needs two: the person adds the second (a step-up).
        step_up = (
            session is not None
            and not must_login
            and not is_multi_factor(session.amr)
            and mfa_required(fd, req.client_id, req.acr_values)
        )
        if silent:
            if must_login:
                return see_other(error_redirect(fd, redirect_uri, state, LoginRequired.error, "sign-in is required"))
            assert session is not None
            if step_up:
                # OIDC Core §3.1.2.6: a code to type is sign-in; enrolling a second factor is a page of its own.
                enrolled = has_second_factor(conn, session.user_id)
                error_code = LoginRequired.error if enrolled else InteractionRequired.error
                description = "a second factor is required" if enrolled else "enrolling a second factor is required"
                return see_other(error_redirect(fd, redirect_uri, state, error_code, description))
            if needs_consent(conn, req, session.user_id):
                return see_other(error_redirect(fd, redirect_uri, state, ConsentRequired.error, "consent is required"))
        if not must_login and not step_up:
            assert session is not None
            if not needs_consent(conn, req, session.user_id):
                code = issue_code(
                    fd, conn, req, session.user_id, session.auth_time, session.amr, at, ip, sid=session.id
                )
                return see_other(success_redirect(fd, req, code))
        pending = {"kind": "authorize", "request": req.as_json()}
        signed_in_session = None if must_login else session
        return _open(fd, conn, pending, at, login=must_login, signed_in=signed_in_session, step_up=step_up)


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


def _resume(fd: Frontdesk, ix_id: str, binding: str | None, token: str | None, ip: str | None) -> Response:
    """Where an interaction goes next: sign-in, consent, or the answer to the client."""
    at = now()
    with transaction(fd.engine) as conn:
        ix = interaction_for(conn, ix_id, binding, at)
        if ix is None:
            return problem(*EXPIRED)
        if ix.user_id is None:
            return see_other(f"/interaction/{ix_id}/{'second-factor' if ix.pending_user_id else 'login'}")
        kind = ix.params["kind"]
        if kind == "account":
            finish_interaction(conn, ix_id, at)
            back = str(ix.params.get("return_to") or "")
            return see_other(back if back.startswith("/account") else "/account")
        if kind == "device":
            finish_interaction(conn, ix_id, at)
            code = ix.params.get("user_code")
            return see_other("/device" + (f"?user_code={code}" if code else ""))
        if kind == "error":
            finish_interaction(conn, ix_id, at)
            p = ix.params
            return see_other(error_redirect(fd, p["redirect_uri"], p["state"], p["error"], p["error_description"]))
        req = AuthorizationRequest.from_json(ix.params["request"])
        if needs_consent(conn, req, ix.user_id):
            return see_other(f"/interaction/{ix_id}/consent")
        if not finish_interaction(conn, ix_id, at):
            return problem(*EXPIRED)
        session = session_for(conn, token, at, fd.settings.lifetimes.session_idle) if token else None
        amr = session.amr if session else (PWD,)
        code = issue_code(
            fd, conn, req, ix.user_id, ix.auth_time or at, amr, at, ip, sid=session.id if session else None
        )
        return see_other(success_redirect(fd, req, code))


async def resume(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    ix_id = request.path_params["ix"]
    return await run_in_threadpool(
        _resume, fd, ix_id, interaction_binding(request), session_token(request, fd), client_ip(request)
    )


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
    ix = await run_in_threadpool(_load, fd, request.path_params["ix"], binding)
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
        hint = (ix.params.get("request") or {}).get("login_hint") or ix.params.get("login_hint")
        return login_page(fd, ix, binding, username=hint)
    form = await posted_form(request, fd, csrf, START_AGAIN)
    if isinstance(form, Response):
        return form
    username, password = form.get("username", ""), form.get("password", "")
    ip = client_ip(request)
    refused = await run_in_threadpool(refusal, fd, username, ip, now())  # audited when refused
    if refused is not None:
        return too_many_attempts(refused)
    user = await run_in_threadpool(fd.users.authenticate, username, password)
    if user is None:
        await run_in_threadpool(record_failure, fd, username, ip, now())
        await run_in_threadpool(_audit_signin, fd, ip, username, "failure")
        return login_page(fd, ix, binding, 401, username=username, message="Wrong username or password.")
    await run_in_threadpool(record_success, fd, username, ip)
    return await run_in_threadpool(after_first_factor, fd, ix, user.id, (PWD,), visit_of(request, fd))


def visit_of(request: Request, fd: Frontdesk) -> Visit:
    return Visit(session_token(request, fd), client_ip(request), request.headers.get("user-agent"))


def after_first_factor(fd: Frontdesk, ix: InteractionRow, user_id: str, amr: tuple[str, ...], visit: Visit) -> Response:
    """On to the second-factor step when one is owed; otherwise signed in, with a new session."""
    at = now()
    with transaction(fd.engine) as conn:
        if first_factor_passed(fd, conn, ix.id, ix.params, user_id, amr):
            return see_other(f"/interaction/{ix.id}/second-factor")
        token = signed_in(fd, conn, ix.id, user_id, amr, visit, at)
    response = see_other(f"/interaction/{ix.id}")
    set_session(response, fd, token)
    return response


def _load(fd: Frontdesk, ix_id: str, binding: str | None) -> InteractionRow | None:
    with transaction(fd.engine, readonly=True) as conn:
        return interaction_for(conn, ix_id, binding, now())


def _audit_signin(fd: Frontdesk, ip: str | None, username: str, outcome: str) -> None:
    with transaction(fd.engine) as conn:
        # A known account's owner sees the failed attempt among their own activity.
        user_id = fd.users.id_of(conn, username)
        audit.record(conn, "signin", outcome, user_id=user_id, ip=ip, username=username[:64])


def scope_words(fd: Frontdesk, scope: tuple[str, ...]) -> list[str]:
    """What a scope lets an app do, in the words of the consent screen (also the account page's)."""
    known = fd.scopes()
    return [known.get(s, s) for s in scope if s != "openid"] or [OIDC_SCOPES["openid"]]


def _consent_page(fd: Frontdesk, ix_id: str, req: AuthorizationRequest, user_id: str, csrf: str) -> Response:
    client = fd.clients.get(req.client_id)
    with transaction(fd.engine, readonly=True) as conn:
        user = fd.users.by_id(conn, user_id)
    descriptions = scope_words(fd, req.scope)
    return page(
        "consent.html",
        title="Allow access?",
        action=f"/interaction/{ix_id}/consent",
        csrf=csrf,
        client_name=client.name if client else req.client_id,
        scopes=descriptions,
        resources=req.resource,
        redirect_host=req.redirect_host,
        username=user.username if user else "",
        hidden=[],
    )


def _decide(fd: Frontdesk, ix_id: str, binding: str, allow: bool, token: str | None, ip: str | None) -> Response:
    at = now()
    with transaction(fd.engine) as conn:
        ix = interaction_for(conn, ix_id, binding, at)
        if ix is None or ix.user_id is None or ix.params.get("kind") != "authorize":
            return problem(*EXPIRED)
        if not finish_interaction(conn, ix_id, at):
            return problem(*EXPIRED)
        req = AuthorizationRequest.from_json(ix.params["request"])
        audit.record(
            conn,
            "consent",
            "granted" if allow else "denied",
            client_id=req.client_id,
            user_id=ix.user_id,
            ip=ip,
            scope=" ".join(req.scope),
        )
        if not allow:
            return see_other(
                error_redirect(fd, req.redirect_uri, req.state, AccessDenied.error, "the person denied the request")
            )
        record_consent(conn, ix.user_id, req.client_id, req.scope, at)
        session = session_for(conn, token, at, fd.settings.lifetimes.session_idle) if token else None
        amr = session.amr if session else (PWD,)
        code = issue_code(
            fd, conn, req, ix.user_id, ix.auth_time or at, amr, at, ip, sid=session.id if session else None
        )
        return see_other(success_redirect(fd, req, code))


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
    req = AuthorizationRequest.from_json(ix.params["request"])
    if request.method == "GET":
        return await run_in_threadpool(_consent_page, fd, ix_id, req, ix.user_id, csrf)
    form = await posted_form(request, fd, csrf, START_AGAIN)
    if isinstance(form, Response):
        return form
    decision = form.get("decision")
    if decision not in ("allow", "deny"):
        return problem("Invalid request", "Choose Allow or Deny.")
    return await run_in_threadpool(
        _decide, fd, ix_id, binding, decision == "allow", session_token(request, fd), client_ip(request)
    )
