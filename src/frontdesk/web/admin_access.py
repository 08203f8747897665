"""The admin console's Admin access page, for owners only: who holds an admin role (grant one by username, change
it, take it away) and the admin API's tokens (issue one — its value shown once — and revoke one). The role checks
(``admin_roles.*`` and ``admin_tokens.*`` need the owner role) and the audit events are ``admin.roles``' and
``admin.tokens``'; an operator or auditor who finds the address gets the services' refusal, a 403 page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..admin import roles, tokens
from ..admin.errors import AdminError, Invalid
from ..core import Frontdesk
from ..protocol.forms import Params
from .admin_gate import ACCESS, Admin, back_to, posted, render, shown

__all__ = ["access", "create_token", "grant_role", "revoke_role", "revoke_token"]

HERE = ACCESS
# The roles (``admin.principals.ROLES``) in words, for the form that grants one.
ROLE_WORDS = {
    "owner": "Owner: everything, admin access included",
    "operator": "Operator: clients, people, the vault and alerts",
    "auditor": "Auditor: looks at everything, changes nothing",
}
LIFETIMES = ((30, "30 days"), (90, "90 days"), (365, "A year"), (0, "Until revoked"))
DONE = {
    "granted": "The role is granted. It applies at their next page of the console.",
    "revoked": "The role is taken away.",
    "token_revoked": "The token is revoked: calls with it are refused from now on.",
}


def _access(fd: Frontdesk, admin: Admin, status: int = 200, **context: Any) -> Response:
    try:
        held = roles.list_roles(fd, admin.principal)
        issued = tokens.list_tokens(fd, admin.principal)
    except AdminError as exc:
        return render(
            fd, admin, "admin/error.html", "/admin", exc.status, title="Admin access", message=exc.description
        )
    return render(
        fd,
        admin,
        "admin/access.html",
        HERE,
        status,
        roles=held,
        tokens=issued,
        role_words=ROLE_WORDS,
        lifetimes=LIFETIMES,
        **context,
    )


async def access(request: Request) -> Response:
    notice = DONE.get(request.query_params.get("done", ""))
    return await shown(request, lambda fd, admin: _access(fd, admin, notice=notice))


def _acting(fd: Frontdesk, admin: Admin, act: Callable[[], object], done: str) -> Response:
    """Run ``act()``; back to the page with ``done``'s notice, or the page with the refusal in words."""
    try:
        act()
    except AdminError as exc:
        return _access(fd, admin, exc.status, message=exc.description)
    return back_to(HERE, done=done)


def _grant(fd: Frontdesk, admin: Admin, form: Params, ip: str | None) -> Response:
    username, role = form.get("username", "").strip(), form.get("role", "")
    return _acting(fd, admin, lambda: roles.grant_role(fd, admin.principal, username, role), "granted")


async def grant_role(request: Request) -> Response:
    return await posted(request, _grant)


def _revoke(fd: Frontdesk, admin: Admin, form: Params, ip: str | None) -> Response:
    username = form.get("username", "")
    return _acting(fd, admin, lambda: roles.revoke_role(fd, admin.principal, username), "revoked")


async def revoke_role(request: Request) -> Response:
    return await posted(request, _revoke)


def _create_token(fd: Frontdesk, admin: Admin, form: Params, ip: str | None) -> Response:
    try:
        days_text = form.get("days", "")
        if not days_text.isdigit():
            raise Invalid("Choose how long the token lives.")
        role, name = form.get("role", ""), form.get("name", "")
        made = tokens.create_token(fd, admin.principal, role=role, name=name, days=int(days_text))
    except AdminError as exc:
        return _access(fd, admin, exc.status, message=exc.description)
    return render(fd, admin, "admin/token_issued.html", HERE, title="New admin token", issued=made)


async def create_token(request: Request) -> Response:
    """POST /admin/access/tokens: a new admin API token, its value shown on the answer page this once."""
    return await posted(request, _create_token)


def _revoke_token(fd: Frontdesk, admin: Admin, form: Params, ip: str | None) -> Response:
    token_id = form.get("token", "")
    return _acting(fd, admin, lambda: tokens.revoke_token(fd, admin.principal, token_id), "token_revoked")


async def revoke_token(request: Request) -> Response:
    return await posted(request, _revoke_token)
