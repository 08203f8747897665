"""The account pages of a signed-in person: profile, connected apps, signed-in browsers and activity.

Every page needs a live session; without one the person signs in and comes back. Every form carries the session's
CSRF token, every change is an audit event, and every POST answers with a redirect (or, signing this browser out,
with a page of its own). The Security page (password, passkeys, second factor) lives in ``account_security``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..core import Frontdesk
from ..oauth import account
from ..oauth.account import ACTIVITY_DAYS, Visitor, app_name
from ..oauth.logout import end_sessions
from ..protocol.forms import Params
from ..protocol.rfc8176 import HWK, OTP, PWD, SWK
from .authorize import detour, posted_form, scope_words, see_other
from .cookies import clear_session, session_token
from .http import client_ip, json_response
from .pages import page
from .user_agents import summarize

__all__ = [
    "SECTIONS",
    "activity",
    "apps",
    "back_to",
    "method_words",
    "posted",
    "profile",
    "reauthenticated",
    "render",
    "revoke_app",
    "sessions",
    "sign_out",
    "sign_out_everywhere",
    "signed_in_visitor",
    "to_sign_in",
    "visitor_form",
    "visitor_of",
]

SECTIONS = (
    ("/account", "Profile"),
    ("/account/apps", "Connected apps"),
    ("/account/connections", "Connected accounts"),  # the person's vault connections (web/account_connections.py)
    ("/account/approvals", "Approvals"),  # CIBA requests waiting for the person (web/ciba.py)
    ("/account/sessions", "Sessions"),
    ("/account/security", "Security"),
    ("/account/activity", "Activity"),
)
_RELOAD = "Reload the page and try again."


def visitor_of(fd: Frontdesk, token: str | None) -> Visitor | None:
    """The signed-in person behind a session cookie, for a page outside the account pages (a vault connect link)
    that decides itself what to do when there is none."""
    return account.visitor(fd, token)


def to_sign_in(fd: Frontdesk, return_to: str, reauth: Visitor | None = None) -> Response:
    """Sign in (or, for a security change, sign in again as ``reauth``), then come back to ``return_to``."""
    again_as = reauth.person.username if reauth is not None else None
    return detour(fd, account.sign_in_first(fd, return_to, again_as))


def _section_of(path: str) -> str:
    """The page a form was on, to come back to after signing in: never anywhere but an account page."""
    return max((href for href, _ in SECTIONS if path == href or path.startswith(href + "/")), key=len)


async def signed_in_visitor(request: Request) -> Visitor | Response:
    """The visitor, or the way to sign in and come back."""
    fd: Frontdesk = request.app.state.fd
    visitor = await run_in_threadpool(account.visitor, fd, session_token(request, fd))
    if visitor is not None:
        return visitor
    # Back to the page asked for; after a form, to the page the form was on.
    back = request.url.path if request.method == "GET" else _section_of(request.url.path)
    return await run_in_threadpool(to_sign_in, fd, back)


async def reauthenticated(request: Request, visitor: Visitor, back: str, *, json: bool = False) -> Response | None:
    """None when the visitor signed in recently enough for a security change; otherwise the way to sign in again."""
    fd: Frontdesk = request.app.state.fd
    if visitor.recently_signed_in(fd):
        return None
    response = await run_in_threadpool(to_sign_in, fd, back, visitor)
    if json:
        answer = json_response({"redirect": response.headers["location"]}, 401)
        answer.raw_headers += [h for h in response.raw_headers if h[0] == b"set-cookie"]
        return answer
    return response


async def visitor_form(request: Request, visitor: Visitor) -> Params | Response:
    fd: Frontdesk = request.app.state.fd
    return await posted_form(request, fd, visitor.csrf(fd), _RELOAD)


Step = Callable[[Frontdesk, Visitor, Params, str | None], Response]


async def posted(request: Request, step: Step, *, fresh_sign_in: str | None = None) -> Response:
    """An account form: a signed-in person, its CSRF token checked, a recent sign-in first when ``fresh_sign_in``
    names the page to come back to; then ``step(fd, visitor, form, ip)`` on a worker thread."""
    visitor = await signed_in_visitor(request)
    if isinstance(visitor, Response):
        return visitor
    form = await visitor_form(request, visitor)
    if isinstance(form, Response):
        return form
    if fresh_sign_in is not None:
        again = await reauthenticated(request, visitor, fresh_sign_in)
        if again is not None:
            return again
    return await run_in_threadpool(step, request.app.state.fd, visitor, form, client_ip(request))


def render(fd: Frontdesk, visitor: Visitor, template: str, here: str, status: int = 200, **context: Any) -> Response:
    title = context.pop("title", None) or dict(SECTIONS)[here]
    return page(
        template,
        status,
        title=title,
        person=visitor.person,
        sections=SECTIONS,
        here=here,
        csrf=visitor.csrf(fd),
        now=visitor.at,
        **context,
    )


def back_to(path: str, **notice: str) -> Response:
    return see_other(path + ("?" + urlencode(notice) if notice else ""))


# --- profile ----------------------------------------------------------------------------------------------------


def _profile(fd: Frontdesk, visitor: Visitor) -> Response:
    counts = account.overview(fd, visitor)
    # email_links: the profile offers to mail a confirmation link (web/email_pages.py)
    return render(fd, visitor, "account.html", "/account", counts=counts, email_links=bool(fd.settings.email.smtp_url))


async def profile(request: Request) -> Response:
    visitor = await signed_in_visitor(request)
    if isinstance(visitor, Response):
        return visitor
    return await run_in_threadpool(_profile, request.app.state.fd, visitor)


# --- connected apps ---------------------------------------------------------------------------------------------


def _apps(fd: Frontdesk, visitor: Visitor, revoked: str | None) -> Response:
    shown = [
        {
            "client_id": app.client_id,
            "name": app.name,
            "label": app.identity.label,
            "vetted": app.identity.vetted,
            "registered_by": app.identity.registered_by,
            "document_host": app.identity.document_host,
            "hosts": list(app.hosts),
            "scopes": scope_words(fd, app.scope),
            "granted_at": app.granted_at,
            "last_used_at": app.last_used_at,
        }
        for app in account.apps(fd, visitor)
    ]
    notice = _sentence(f"{app_name(fd, revoked)} can no longer use your account.") if revoked else None
    return render(fd, visitor, "account_apps.html", "/account/apps", apps=shown, notice=notice)


async def apps(request: Request) -> Response:
    visitor = await signed_in_visitor(request)
    if isinstance(visitor, Response):
        return visitor
    revoked = request.query_params.get("revoked")
    return await run_in_threadpool(_apps, request.app.state.fd, visitor, revoked)


def _revoke(fd: Frontdesk, visitor: Visitor, client_id: str, ip: str | None) -> Response:
    account.revoke_app(fd, visitor.person.id, client_id, ip)
    return back_to("/account/apps", revoked=client_id)


async def revoke_app(request: Request) -> Response:
    """Revoke an app: its consent goes, and every grant (so every refresh and access token) of it for this person."""
    return await posted(request, lambda fd, visitor, form, ip: _revoke(fd, visitor, form.get("client_id", ""), ip))


# --- sessions ---------------------------------------------------------------------------------------------------


def method_words(amr: tuple[str, ...]) -> str:
    """How someone signed in, from the RFC 8176 values of the session: "your password and a one-time code"."""
    first = "a passkey" if HWK in amr or SWK in amr else "your password" if PWD in amr else "an earlier sign-in"
    return f"{first} and a one-time code" if OTP in amr else first


def _sessions(fd: Frontdesk, visitor: Visitor, signed_out: bool) -> Response:
    found = account.browser_sessions(fd, visitor)
    shown = [
        {
            "id": s.id,
            "agent": summarize(s.user_agent),
            "current": s.current,
            "created_at": s.created_at,
            "last_seen_at": s.last_seen_at,
            "ip": s.ip,
            "method": method_words(s.amr),
        }
        for s in found
    ]
    notice = "That browser is signed out." if signed_out else None
    return render(fd, visitor, "account_sessions.html", "/account/sessions", sessions=shown, notice=notice)


async def sessions(request: Request) -> Response:
    visitor = await signed_in_visitor(request)
    if isinstance(visitor, Response):
        return visitor
    signed_out = request.query_params.get("signed_out") == "1"
    return await run_in_threadpool(_sessions, request.app.state.fd, visitor, signed_out)


def signed_out_page(fd: Frontdesk, message: str) -> Response:
    response = page("done.html", title="Signed out", message=message, link="/account", link_text="Sign in again")
    clear_session(response, fd)
    return response


def _sign_out(fd: Frontdesk, visitor: Visitor, session_id: str, ip: str | None) -> Response:
    # Through end_sessions, so that the apps used in that browser hear of it (Back-Channel Logout).
    end_sessions(fd, visitor.person.id, [session_id], ip=ip)
    if session_id == visitor.session.id:
        return signed_out_page(fd, "You are signed out of this browser.")
    return back_to("/account/sessions", signed_out="1")


async def sign_out(request: Request) -> Response:
    return await posted(request, lambda fd, visitor, form, ip: _sign_out(fd, visitor, form.get("session", ""), ip))


def _sign_out_everywhere(fd: Frontdesk, visitor: Visitor, ip: str | None) -> Response:
    end_sessions(fd, visitor.person.id, None, ip=ip)
    return signed_out_page(fd, "You are signed out of every browser, this one too.")


async def sign_out_everywhere(request: Request) -> Response:
    return await posted(request, lambda fd, visitor, _, ip: _sign_out_everywhere(fd, visitor, ip))


# --- activity ---------------------------------------------------------------------------------------------------


def _activity_text(
    fd: Frontdesk, event: str, outcome: str, client_id: str | None, detail: dict[str, Any]
) -> str | None:
    app = app_name(fd, client_id) if client_id else "An app"
    texts = {
        ("signin", "success"): f"Signed in with {method_words(tuple(str(detail.get('amr', 'pwd')).split()))}",
        ("signin", "failure"): "Someone typed a wrong password for your account",
        ("signin", "throttled"): "Sign-in was paused after too many wrong passwords",
        ("second_factor", "failure"): "A wrong one-time code was typed after your password",
        ("recovery_code.used", "success"): "A recovery code was used to sign in",
        ("consent", "granted"): f"You allowed {app} to use your account",
        ("consent", "denied"): f"You refused {app}",
        ("app.revoked", "success"): f"You revoked the access of {app}",
        ("token.revoked", "success"): f"{app} gave up some of its access",
        ("code.replayed", "revoked"): f"The access of {app} was cut off: a sign-in code was used twice",
        ("refresh.reused", "revoked"): f"The access of {app} was cut off: a token was used twice",
        ("logout", "success"): "You signed out",
        ("password.changed", "success"): "You changed your password",
        ("password.changed", "failure"): "A wrong current password was typed to change your password",
        ("passkey.added", "success"): f"You added the passkey “{detail.get('name', '')}”",
        ("passkey.renamed", "success"): f"You renamed a passkey to “{detail.get('name', '')}”",
        ("passkey.removed", "success"): f"You removed the passkey “{detail.get('name', '')}”",
        ("second_factor.enrolled", "success"): "You turned on the second step at sign-in",
        ("second_factor.removed", "success"): "You turned off the second step at sign-in",
        ("recovery_codes.created", "success"): "You made new recovery codes; the old ones stopped working",
        ("vault.connection.deleted", "success"): f"You disconnected your {detail.get('provider', 'connected')} account",
        # Email links (web/email_pages.py): "by" is "self" or the administrator who started it.
        ("password.reset_sent", "success"): "A link to choose a new password was emailed to you"
        + ("" if detail.get("by", "self") == "self" else " at an administrator's request"),
        ("password.reset", "success"): "You chose a new password with a link sent by email; all browsers signed out",
        ("email.verification_sent", "success"): "A link to confirm your email address was emailed to you",
        ("email.verified", "success"): "You confirmed your email address",
        ("email.changed", "success"): "You changed your email address",
        ("signup", "success"): "You created your account",
    }
    text = texts.get((event, outcome))
    return _sentence(text) if text else None


def _sentence(text: str) -> str:
    """A sentence that may begin with an app's label ("the app at tools.example.com …")."""
    return text[:1].upper() + text[1:]


_WARNINGS = {"failure", "throttled", "revoked"}


def _activity(fd: Frontdesk, visitor: Visitor) -> Response:
    events = []
    for e in account.activity(fd, visitor):
        text = _activity_text(fd, e.event, e.outcome, e.client_id, e.detail)
        if text:
            events.append({"at": e.at, "text": text, "ip": e.ip, "warning": e.outcome in _WARNINGS})
    return render(fd, visitor, "account_activity.html", "/account/activity", events=events, days=ACTIVITY_DAYS)


async def activity(request: Request) -> Response:
    visitor = await signed_in_visitor(request)
    if isinstance(visitor, Response):
        return visitor
    return await run_in_threadpool(_activity, request.app.state.fd, visitor)
