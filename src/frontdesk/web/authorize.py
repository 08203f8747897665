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

from ..core import Frontdesk
from ..errors import AccessDenied, ConsentRequired, InteractionRequired, LoginRequired, OAuthError, RateLimited
from ..oauth.authorization import (
    AuthorizationRequest,
    error_redirect,
    issue_code,
    needs_consent,
    parse_prompt,
    success_redirect,
    validate,
)
from ..oauth.rate_limits import authorize_limits, count_and_check
from ..oauth.signin import (
    Next,
    Visit,
    asked_of_request,
    bound_session,
    facts_of,
    first_factor_passed,
    next_step,
    open_for,
    signed_in,
)
from ..oauth.signin_throttle import record_failure, record_success, refusal
from ..protocol.forms import Params
from ..protocol.redirect_uri import check_redirect_uri
from ..protocol.rfc8176 import PWD
from ..protocol.scope import OIDC_SCOPES
from ..secret import same
from ..storage import audit
from ..storage.db import now, transaction
from ..storage.interactions import InteractionRow, finish_interaction, interaction_for
from ..storage.people import SessionRow, record_consent, session_for
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
    "detour",
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


def detour(
    fd: Frontdesk, conn: Connection, data: dict[str, Any], step: Next, session: SessionRow | None, at: int
) -> Response:
    """To an interaction for what the person still has to do (``signin.open_for``), holding its binding cookie."""
    opened = open_for(fd, conn, data, step, session, at)
    response = see_other(opened.path)
    set_interaction(response, fd, opened.interaction_id, opened.binding)
    return response


def too_many(exc: RateLimited) -> Response:
    minutes = max(1, round(exc.retry_after / 60))
    response = problem("Too many attempts", f"Wait {minutes} minute{'s' if minutes > 1 else ''} and try again.", 429)
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


# prompt=none cannot show a page: what the sign-in still owes becomes the error OIDC Core §3.1.2.6 names for it.
_SILENT = {
    Next.SIGN_IN: (LoginRequired.error, "sign-in is required"),
    # A code to type is sign-in; enrolling a second factor is a page of its own.
    Next.SECOND_FACTOR: (LoginRequired.error, "a second factor is required"),
    Next.ENROL: (InteractionRequired.error, "enrolling a second factor is required"),
    Next.OTHER_PERSON: (LoginRequired.error, "the person id_token_hint names is not signed in"),
}


def _issue(
    fd: Frontdesk, conn: Connection, req: AuthorizationRequest, session: SessionRow, at: int, ip: str | None
) -> Response:
    # Who, when, how and in which session all come from one session row: a code never mixes two sign-ins' facts.
    code = issue_code(fd, conn, req, session.user_id, session.auth_time, session.amr, at, ip, sid=session.id)
    return see_other(success_redirect(fd, req, code))


def _answer(
    fd: Frontdesk, conn: Connection, req: AuthorizationRequest, session: SessionRow | None, at: int, ip: str | None
) -> Response:
    """A valid request answered for the browser's session (or none), as the sign-in policy says: a code at once,
    an error under ``prompt=none``, or an interaction for sign-in, a second factor or consent. Both /authorize and
    a request started over come here."""
    facts = facts_of(conn, session, for_this_request=False) if session is not None else None
    step = next_step(fd.settings.second_factor, asked_of_request(req.as_json()), facts, at)
    if "none" in req.prompt:
        if step is not Next.PROCEED:
            return see_other(error_redirect(fd, req.redirect_uri, req.state, *_SILENT[step]))
        assert session is not None
        if needs_consent(conn, req, session.user_id):
            return see_other(
                error_redirect(fd, req.redirect_uri, req.state, ConsentRequired.error, "consent is required")
            )
    if step is Next.PROCEED:
        assert session is not None
        if not needs_consent(conn, req, session.user_id):
            return _issue(fd, conn, req, session, at, ip)
    return detour(fd, conn, {"kind": "authorize", "request": req.as_json()}, step, session, at)


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
            return detour(fd, conn, data, Next.SIGN_IN, None, at)
        assert req is not None
        return _answer(fd, conn, req, session, at, ip)


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
            # An account page, or a vault connect link waiting for its person (web/vault.py RESUME_PATH).
            return see_other(back if back.startswith("/account") or back == "/vault/connect" else "/account")
        if kind == "device":
            finish_interaction(conn, ix_id, at)
            code = ix.params.get("user_code")
            return see_other("/device" + (f"?user_code={code}" if code else ""))
        if kind == "error":
            finish_interaction(conn, ix_id, at)
            p = ix.params
            return see_other(error_redirect(fd, p["redirect_uri"], p["state"], p["error"], p["error_description"]))
        req = AuthorizationRequest.from_json(ix.params["request"])
        bound = _bound(fd, conn, ix, req, token, at, ip)
        if isinstance(bound, Response):
            return bound
        if needs_consent(conn, req, bound.user_id):
            return see_other(f"/interaction/{ix_id}/consent")
        if not finish_interaction(conn, ix_id, at):
            return problem(*EXPIRED)
        return _issue(fd, conn, req, bound, at, ip)


def _bound(
    fd: Frontdesk,
    conn: Connection,
    ix: InteractionRow,
    req: AuthorizationRequest,
    token: str | None,
    at: int,
    ip: str | None,
) -> SessionRow | Response:
    """The session the interaction's sign-in lives in, still this browser's and still enough for the request; or,
    when it is not, the request started over for whoever is signed in now (another tab may have signed someone
    else in: the code must never mix that session's facts with this interaction's), or ``login_required`` when the
    person who signed in for this request is not the one its id_token_hint names (OIDC Core §3.1.2.1)."""
    session = bound_session(fd, conn, ix, token, at)
    asked = asked_of_request(ix.params["request"])
    facts = facts_of(conn, session, for_this_request=True) if session is not None else None
    step = next_step(fd.settings.second_factor, asked, facts, at)
    if session is not None and step is Next.PROCEED:
        return session
    finish_interaction(conn, ix.id, at)
    if step is Next.OTHER_PERSON:
        return see_other(error_redirect(fd, req.redirect_uri, req.state, *_SILENT[step]))
    current = session_for(conn, token, at, fd.settings.lifetimes.session_idle) if token else None
    return _answer(fd, conn, req, current, at, ip)


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
        return login_page(fd, ix, binding, username=await run_in_threadpool(_login_hint, fd, ix.params))
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


def _login_hint(fd: Frontdesk, params: dict[str, Any]) -> str | None:
    """The username to fill in: the person a verified id_token_hint names (OIDC Core §3.1.2.1: sign in again as
    them), else the client's login_hint."""
    request = params.get("request") or {}
    subject = request.get("hinted_subject")
    if subject:
        with transaction(fd.engine, readonly=True) as conn:
            person = fd.users.by_id(conn, subject)
        if person is not None:
            return person.username
    hint = request.get("login_hint") or params.get("login_hint")
    return str(hint) if hint else None


def visit_of(request: Request, fd: Frontdesk) -> Visit:
    return Visit(session_token(request, fd), client_ip(request), request.headers.get("user-agent"))


def after_first_factor(fd: Frontdesk, ix: InteractionRow, user_id: str, amr: tuple[str, ...], visit: Visit) -> Response:
    """On to the second-factor step when one is owed; otherwise signed in, with a new session."""
    at = now()
    with transaction(fd.engine) as conn:
        if first_factor_passed(fd, conn, ix.id, ix.params, user_id, amr, at):
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


def _consent_page(fd: Frontdesk, ix_id: str, binding: str, csrf: str, token: str | None, ip: str | None) -> Response:
    at = now()
    with transaction(fd.engine) as conn:
        ix = interaction_for(conn, ix_id, binding, at)
        if ix is None or ix.params.get("kind") != "authorize":
            return problem(*EXPIRED)
        req = AuthorizationRequest.from_json(ix.params["request"])
        # The page names the person whose sign-in the code will carry: never one whose session has gone.
        bound = _bound(fd, conn, ix, req, token, at, ip)
        if isinstance(bound, Response):
            return bound
        user = fd.users.by_id(conn, bound.user_id)
    client = fd.clients.get(req.client_id)
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
        req = AuthorizationRequest.from_json(ix.params["request"])
        user_id = ix.user_id
        session: SessionRow | None = None
        if allow:
            # Allow issues a code on the interaction's sign-in, so that sign-in must still be this browser's. Deny
            # issues nothing and carries no sign-in facts: it stands whoever holds the browser now.
            bound = _bound(fd, conn, ix, req, token, at, ip)
            if isinstance(bound, Response):
                return bound
            session, user_id = bound, bound.user_id
        if not finish_interaction(conn, ix_id, at):
            return problem(*EXPIRED)
        audit.record(
            conn,
            "consent",
            "granted" if allow else "denied",
            client_id=req.client_id,
            user_id=user_id,
            ip=ip,
            scope=" ".join(req.scope),
        )
        if session is None:
            return see_other(
                error_redirect(fd, req.redirect_uri, req.state, AccessDenied.error, "the person denied the request")
            )
        record_consent(conn, user_id, req.client_id, req.scope, at)
        return _issue(fd, conn, req, session, at, ip)


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
        return await run_in_threadpool(
            _consent_page, fd, ix_id, binding, csrf, session_token(request, fd), client_ip(request)
        )
    form = await posted_form(request, fd, csrf, START_AGAIN)
    if isinstance(form, Response):
        return form
    decision = form.get("decision")
    if decision not in ("allow", "deny"):
        return problem("Invalid request", "Choose Allow or Deny.")
    return await run_in_threadpool(
        _decide, fd, ix_id, binding, decision == "allow", session_token(request, fd), client_ip(request)
    )
