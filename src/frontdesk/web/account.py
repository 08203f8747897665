"""The account pages of a signed-in person: profile, connected apps, signed-in browsers and activity.

Every page needs a live session; without one the person signs in and comes back. Every form carries the session's
CSRF token, every change is an audit event, and every POST answers with a redirect (or, signing this browser out,
with a page of its own). The Security page (password, passkeys, second factor) lives in ``account_security``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from sqlalchemy import Connection, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..core import Frontdesk
from ..oauth.logout import end_sessions
from ..oauth.second_factor import has_second_factor
from ..protocol.forms import Params
from ..protocol.rfc8176 import HWK, OTP, PWD, SWK
from ..storage import audit
from ..storage.connected_apps import connected_apps, disconnect_app
from ..storage.db import now, transaction
from ..storage.interactions import open_interaction
from ..storage.passkeys import passkeys_of
from ..storage.people import (
    SessionRow,
    UserRecord,
    live_sessions,
    session_for,
)
from ..storage.schema import AuditEvent
from .authorize import posted_form, scope_words, see_other
from .cookies import clear_session, session_token, set_interaction
from .http import client_ip, json_response
from .pages import page
from .user_agents import summarize

__all__ = [
    "SECTIONS",
    "Visitor",
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
    ("/account/sessions", "Sessions"),
    ("/account/security", "Security"),
    ("/account/activity", "Activity"),
)
ACTIVITY_DAYS = 30
ACTIVITY_LIMIT = 50
_RELOAD = "Reload the page and try again."


@dataclass(frozen=True, slots=True)
class Visitor:
    """The signed-in person on an account page, and the session they came with."""

    token: str
    session: SessionRow
    person: UserRecord

    def csrf(self, fd: Frontdesk) -> str:
        return fd.csrf_token(self.token)

    def recently_signed_in(self, fd: Frontdesk) -> bool:
        return now() - self.session.auth_time <= fd.settings.lifetimes.recent_sign_in


def _visitor(fd: Frontdesk, token: str | None) -> Visitor | None:
    if not token:
        return None
    with transaction(fd.engine) as conn:  # a write transaction: the visit counts as the session's last use
        session = session_for(conn, token, now(), fd.settings.lifetimes.session_idle)
        person = fd.users.by_id(conn, session.user_id) if session else None
    return Visitor(token, session, person) if session and person else None


def visitor_of(fd: Frontdesk, token: str | None) -> Visitor | None:
    """The signed-in person behind a session cookie, for a page outside the account pages (a vault connect link)
    that decides itself what to do when there is none."""
    return _visitor(fd, token)


def to_sign_in(fd: Frontdesk, return_to: str, reauth: UserRecord | None = None) -> Response:
    """Sign in (or, for a security change, sign in again as ``reauth``), then come back to ``return_to``."""
    data: dict[str, Any] = {"kind": "account", "return_to": return_to}
    if reauth is not None:
        data.update(reauth=True, login_hint=reauth.username)
    with transaction(fd.engine) as conn:
        ix_id, binding = open_interaction(conn, data, now(), fd.settings.lifetimes.interaction)
    response = see_other(f"/interaction/{ix_id}/login")
    set_interaction(response, fd, ix_id, binding)
    return response


def _section_of(path: str) -> str:
    """The page a form was on, to come back to after signing in: never anywhere but an account page."""
    return max((href for href, _ in SECTIONS if path == href or path.startswith(href + "/")), key=len)


async def signed_in_visitor(request: Request) -> Visitor | Response:
    """The visitor, or the way to sign in and come back."""
    fd: Frontdesk = request.app.state.fd
    visitor = await run_in_threadpool(_visitor, fd, session_token(request, fd))
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
    response = await run_in_threadpool(to_sign_in, fd, back, visitor.person)
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
        now=now(),
        **context,
    )


def back_to(path: str, **notice: str) -> Response:
    return see_other(path + ("?" + urlencode(notice) if notice else ""))


# --- profile ----------------------------------------------------------------------------------------------------


def _profile(fd: Frontdesk, visitor: Visitor) -> Response:
    at = now()
    user_id = visitor.person.id
    with transaction(fd.engine, readonly=True) as conn:
        counts = {
            "apps": len(connected_apps(conn, user_id, at)),
            "sessions": len(live_sessions(conn, user_id, at, fd.settings.lifetimes.session_idle, None)),
            "passkeys": len(passkeys_of(conn, user_id)),
            "second_factor": has_second_factor(conn, user_id),
        }
    return render(fd, visitor, "account.html", "/account", counts=counts)


async def profile(request: Request) -> Response:
    visitor = await signed_in_visitor(request)
    if isinstance(visitor, Response):
        return visitor
    return await run_in_threadpool(_profile, request.app.state.fd, visitor)


# --- connected apps ---------------------------------------------------------------------------------------------


def _app_name(fd: Frontdesk, client_id: str) -> str:
    client = fd.clients.get(client_id)
    return client.name if client else client_id


def _apps(fd: Frontdesk, visitor: Visitor, revoked: str | None) -> Response:
    at = now()
    with transaction(fd.engine, readonly=True) as conn:
        found = connected_apps(conn, visitor.person.id, at)
    shown = []
    for app in found:
        client = fd.clients.get(app.client_id)
        hosts = list(dict.fromkeys(urlsplit(u).netloc for u in client.redirect_uris)) if client else []
        shown.append(
            {
                "client_id": app.client_id,
                "name": client.name if client else app.client_id,
                "hosts": hosts,
                "scopes": scope_words(fd, app.scope),
                "granted_at": app.granted_at,
                "last_used_at": app.last_used_at,
            }
        )
    notice = f"{_app_name(fd, revoked)} can no longer use your account." if revoked else None
    return render(fd, visitor, "account_apps.html", "/account/apps", apps=shown, notice=notice)


async def apps(request: Request) -> Response:
    visitor = await signed_in_visitor(request)
    if isinstance(visitor, Response):
        return visitor
    revoked = request.query_params.get("revoked")
    return await run_in_threadpool(_apps, request.app.state.fd, visitor, revoked)


def _revoke(fd: Frontdesk, visitor: Visitor, client_id: str, ip: str | None) -> Response:
    at = now()
    with transaction(fd.engine) as conn:
        grants = disconnect_app(conn, visitor.person.id, client_id, at)
        audit.record(
            conn, "app.revoked", "success", client_id=client_id, user_id=visitor.person.id, ip=ip, grants=grants
        )
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
    at = now()
    with transaction(fd.engine, readonly=True) as conn:
        found = live_sessions(conn, visitor.person.id, at, fd.settings.lifetimes.session_idle, visitor.session.id)
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
    app = _app_name(fd, client_id) if client_id else "An app"
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
    }
    return texts.get((event, outcome))


_WARNINGS = {"failure", "throttled", "revoked"}
_EVENTS = (
    "signin",
    "second_factor",
    "recovery_code.used",
    "consent",
    "app.revoked",
    "token.revoked",
    "code.replayed",
    "refresh.reused",
    "logout",
    "password.changed",
    "passkey.added",
    "passkey.renamed",
    "passkey.removed",
    "second_factor.enrolled",
    "second_factor.removed",
    "recovery_codes.created",
)


def recent_events(conn: Connection, user_id: str, since: int) -> list[Any]:
    # Through the (user_id, at) index (migration 0006): only the person's own events are read, newest first, so the
    # page costs the same on a busy server.
    e = AuditEvent
    query = (
        select(e.at, e.event, e.outcome, e.client_id, e.ip, e.detail)
        .where(e.at >= since, e.user_id == user_id, e.event.in_(_EVENTS))
        .order_by(e.at.desc(), e.id.desc())
        .limit(ACTIVITY_LIMIT)
    )
    return list(conn.execute(query))


def _activity(fd: Frontdesk, visitor: Visitor) -> Response:
    with transaction(fd.engine, readonly=True) as conn:
        rows = recent_events(conn, visitor.person.id, now() - ACTIVITY_DAYS * 86400)
    events = []
    for r in rows:
        text = _activity_text(fd, r.event, r.outcome, r.client_id, json.loads(r.detail))
        if text:
            events.append({"at": r.at, "text": text, "ip": r.ip, "warning": r.outcome in _WARNINGS})
    return render(fd, visitor, "account_activity.html", "/account/activity", events=events, days=ACTIVITY_DAYS)


async def activity(request: Request) -> Response:
    visitor = await signed_in_visitor(request)
    if isinstance(visitor, Response):
        return visitor
    return await run_in_threadpool(_activity, request.app.state.fd, visitor)
