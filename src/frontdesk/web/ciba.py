"""OpenID Connect CIBA Core 1.0 over HTTP: the backchannel authentication endpoint clients call (§7), and the account
page where a signed-in person sees the requests waiting for them and approves or denies each. What happens is
decided by ``oauth.ciba`` and ``oauth.ciba_approval``; this module parses the requests and renders their answers.

    bc-authorize   parse_body → present_credentials → fetch_published_keys → authenticate_client (web/token.py)
                   → checked_request → start
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..core import Frontdesk
from ..errors import OAuthError
from ..oauth import ciba, ciba_approval
from ..oauth.account import Visitor
from ..oauth.ciba_approval import APPROVALS_PATH, Answer
from ..oauth.client_auth import AuthenticatedClient
from ..oauth.signin import Detour
from ..protocol.forms import Params
from .account import back_to, posted, render, signed_in_visitor
from .authorize import detour, problem, scope_words
from .http import client_ip, json_response
from .token import authenticated_client, oauth_error

__all__ = ["approvals", "backchannel_authentication", "decide"]


def _requested(
    fd: Frontdesk, client: AuthenticatedClient, params: Params, ip: str | None
) -> ciba.BackchannelAuthentication:
    asked = ciba.checked_request(fd, client, params)
    return ciba.start(fd, client, asked, ip)


async def backchannel_authentication(request: Request) -> Response:
    """§7.1: a POSTed form from an authenticated confidential client; §7.3 the answer, §13 the errors."""
    fd: Frontdesk = request.app.state.fd
    try:
        client, params = await authenticated_client(request, fd)
        started = await run_in_threadpool(_requested, fd, client, params, client_ip(request))
    except OAuthError as exc:
        return oauth_error(exc)
    return json_response(started.as_json())


# --- the person's approvals -------------------------------------------------------------------------------------

_NOTICES = {
    "approved": "You approved the request. The app can now go ahead.",
    "denied": "You denied the request. The app has been told no.",
    "expired": "That request is no longer waiting: it was answered already or it expired.",
}


def _approvals(fd: Frontdesk, visitor: Visitor, notice: str | None) -> Response:
    shown = [
        {
            "handle": r.handle,
            "label": r.app.label,
            "name": r.app.name,
            "vetted": r.app.vetted,
            "binding_message": r.binding_message,
            "scopes": scope_words(fd, r.scope),
            "details": list(r.details),
            "resources": list(r.resource),
            "created_at": r.created_at,
            "expires_at": r.expires_at,
        }
        for r in ciba_approval.waiting(fd, visitor.person.id)
    ]
    return render(
        fd,
        visitor,
        "account_approvals.html",
        APPROVALS_PATH,
        requests=shown,
        notice=_NOTICES.get(notice or ""),
    )


async def approvals(request: Request) -> Response:
    visitor = await signed_in_visitor(request)
    if isinstance(visitor, Response):
        return visitor
    notice = request.query_params.get("answer")
    return await run_in_threadpool(_approvals, request.app.state.fd, visitor, notice)


def _answered(fd: Frontdesk, answer: Answer | Detour) -> Response:
    if isinstance(answer, Detour):
        return detour(fd, answer)
    return back_to(APPROVALS_PATH, answer=answer)


def _decide(fd: Frontdesk, visitor: Visitor, form: Params, ip: str | None) -> Response:
    decision = form.get("decision")
    if decision not in ("approve", "deny"):
        return problem("Invalid request", "Choose Approve or Deny.")
    answer = ciba_approval.decide(fd, form.get("request", ""), decision == "approve", visitor.session, ip)
    return _answered(fd, answer)


async def decide(request: Request) -> Response:
    """Approve or deny one waiting request (POST, with the session's CSRF token)."""
    return await posted(request, _decide)
