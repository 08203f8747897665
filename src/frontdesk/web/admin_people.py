"""The admin console's People pages: find a person (by username or email), and for one person disable or enable
the account, email them a link to choose a new password or to confirm their address, remove their second factor (a
lost phone), end their sessions, delete the account. The decisions, the audit events and the role checks are
``admin.people``'s; the email itself is ``oauth.email_links``'."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from ..admin import people
from ..admin.errors import AdminError
from ..core import Frontdesk
from ..errors import RateLimited
from ..protocol.forms import Params
from .admin_gate import Admin, back_to, posted, refused, render, shown

__all__ = ["ACTIONS", "people_list", "person_action", "person_page"]

HERE = "/admin/people"
PAGE_SIZE = 50

# What each action on one person says once done (the notice is chosen by key: no text comes from the query).
DONE = {
    "disabled": "The account is disabled: this person cannot sign in, and their sessions and app access ended.",
    "enabled": "The account is enabled again: this person can sign in.",
    "reset_sent": "A link to choose a new password is on its way to this person's email address.",
    "verification_sent": "A link to confirm the address is on its way to this person's email address.",
    "second_factor_removed": "The second step is removed: this person signs in with their password and may set "
    "up an app again.",
    "sessions_ended": "This person is signed out of every browser.",
    "deleted": "The account is deleted, with everything its person allowed; their audit trail stays.",
}


def _people(fd: Frontdesk, admin: Admin, search: str, cursor: str | None, notice: str | None = None) -> Response:
    try:
        found = people.list_people(fd, admin.principal, search=search or None, cursor=cursor, limit=PAGE_SIZE)
    except AdminError as exc:
        return render(
            fd, admin, "admin/people.html", HERE, exc.status, people=(), search=search, message=exc.description
        )
    return render(
        fd, admin, "admin/people.html", HERE, people=found.items, search=search, next=found.next_cursor, notice=notice
    )


async def people_list(request: Request) -> Response:
    search = request.query_params.get("q", "").strip()
    cursor = request.query_params.get("cursor") or None
    notice = DONE.get(request.query_params.get("done", ""))
    return await shown(request, lambda fd, admin: _people(fd, admin, search, cursor, notice))


def _person(
    fd: Frontdesk, admin: Admin, user_id: str, status: int = 200, notice: str | None = None, message: str | None = None
) -> Response:
    try:
        found = people.person(fd, admin.principal, user_id)
    except AdminError as exc:
        return render(fd, admin, "admin/error.html", HERE, exc.status, title="Person", message=exc.description)
    title = found.name or found.username
    return render(fd, admin, "admin/person.html", HERE, status, title=title, p=found, notice=notice, message=message)


async def person_page(request: Request) -> Response:
    user_id = request.path_params["user_id"]
    notice = DONE.get(request.query_params.get("done", ""))
    return await shown(request, lambda fd, admin: _person(fd, admin, user_id, notice=notice))


def _disable(fd: Frontdesk, admin: Admin, user_id: str) -> str:
    people.disable_person(fd, admin.principal, user_id)
    return "disabled"


def _enable(fd: Frontdesk, admin: Admin, user_id: str) -> str:
    people.enable_person(fd, admin.principal, user_id)
    return "enabled"


def _send_reset(fd: Frontdesk, admin: Admin, user_id: str) -> str:
    people.send_password_reset(fd, admin.principal, user_id)
    return "reset_sent"


def _send_verification(fd: Frontdesk, admin: Admin, user_id: str) -> str:
    people.send_email_verification(fd, admin.principal, user_id)
    return "verification_sent"


def _remove_second_factor(fd: Frontdesk, admin: Admin, user_id: str) -> str:
    people.remove_second_factor(fd, admin.principal, user_id)
    return "second_factor_removed"


def _end_sessions(fd: Frontdesk, admin: Admin, user_id: str) -> str:
    people.end_person_sessions(fd, admin.principal, user_id)
    return "sessions_ended"


def _delete(fd: Frontdesk, admin: Admin, user_id: str) -> str:
    people.delete_person(fd, admin.principal, user_id)
    return "deleted"


Action = Callable[[Frontdesk, Admin, str], str]
ACTIONS: dict[str, Action] = {
    "disable": _disable,
    "enable": _enable,
    "password-reset": _send_reset,
    "verify-email": _send_verification,
    "remove-second-factor": _remove_second_factor,
    "end-sessions": _end_sessions,
    "delete": _delete,
}


def _act(fd: Frontdesk, admin: Admin, action: Action, user_id: str) -> Response:
    try:
        done = action(fd, admin, user_id)
    except AdminError as exc:
        return _person(fd, admin, user_id, exc.status, message=exc.description)
    except RateLimited as exc:  # oauth.email_links: too many messages to this person lately
        minutes = max(1, round(exc.retry_after / 60))
        wait = f"Too many emails went to this person lately. Wait {minutes} minute{'s' if minutes > 1 else ''}."
        return _person(fd, admin, user_id, 429, message=wait)
    return back_to(HERE if done == "deleted" else f"{HERE}/{user_id}", done=done)


async def person_action(request: Request) -> Response:
    """POST /admin/people/{user_id}/{action}: one of :data:`ACTIONS`, then back to the person's page."""
    user_id = request.path_params["user_id"]
    action = ACTIONS.get(request.path_params["action"])
    if action is None:
        return refused("Not found", "There is no such action.", 404)
    chosen: Action = action

    def step(fd: Frontdesk, admin: Admin, form: Params, ip: str | None) -> Response:
        return _act(fd, admin, chosen, user_id)

    return await posted(request, step)
