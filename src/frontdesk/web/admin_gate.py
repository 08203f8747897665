"""Who may use the admin console at ``/admin``, and the console's layout and forms.

The console is for a signed-in person holding an admin role (``admin_roles``): someone not signed in signs in and
comes back; a person without a role gets a plain 403. With ``[admin] console_requires_second_factor`` (the default)
the session must have used a second factor: a session without one proves it at the sign-in's second step (or
enrols an app there first) and comes back. Owners and operators change things; an auditor reads only: the pages
show them no form and every POST of theirs is refused with a 403.

Every form carries a CSRF token of the console's own (derived from the session, apart from the account pages'
token), and every POST answers with a redirect or a page of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..admin.errors import AdminError
from ..admin.principals import Principal, allowed
from ..admin.roles import person_principal
from ..core import Frontdesk
from ..oauth.account import Visitor
from ..oauth.step_up import second_factor_first, used_second_factor
from ..protocol.forms import Params
from .account import to_sign_in, visitor_of
from .authorize import posted_form, see_other
from .cookies import session_token, set_interaction
from .http import client_ip
from .pages import page

__all__ = [
    "ACCESS",
    "SECTIONS",
    "Admin",
    "admin_of",
    "back_to",
    "posted",
    "refused",
    "render",
    "render_found",
    "shown",
]

SECTIONS = (
    ("/admin", "Overview"),
    ("/admin/clients", "Clients"),
    ("/admin/people", "People"),
    ("/admin/connections", "Vault connections"),
    ("/admin/catalog", "Scopes and resources"),
    ("/admin/keys", "Signing keys"),
    ("/admin/upstreams", "Sign-in providers"),
    ("/admin/audit", "Audit trail"),
    ("/admin/alerts", "Alerts"),
)
# Who holds an admin role and the admin API's tokens: an owner's page (web/admin_access.py), in their menu only.
ACCESS = "/admin/access"
_RELOAD = "Reload the page and try again."


@dataclass(frozen=True, slots=True)
class Admin:
    """The person at the console: the session they came with, and the principal the admin services know them by
    (``person:<user_id>`` in the audit trail, with their role and address)."""

    visitor: Visitor
    principal: Principal

    @property
    def role(self) -> str:
        return self.principal.role

    @property
    def may_change(self) -> bool:
        """Owners and operators change things; an auditor only looks (``principals.OPERATIONS``)."""
        return allowed(self.principal, "clients.write")

    def csrf(self, fd: Frontdesk) -> str:
        return fd.csrf_token("admin:" + self.visitor.token)


def refused(title: str, message: str, status: int = 403) -> Response:
    return page("error.html", status, title=title, message=message)


def _not_an_admin() -> Response:
    return refused("Not allowed", "This page is for the people who run this service. Your account has no admin role.")


def _section_of(path: str) -> str:
    hrefs = (*(href for href, _ in SECTIONS), ACCESS)
    return max((href for href in hrefs if path == href or path.startswith(href + "/")), key=len)


def _step_up(fd: Frontdesk, visitor: Visitor, back: str) -> Response:
    """A page that says why, with the way to the second step: its interaction's binding cookie set here."""
    opened = second_factor_first(fd, visitor, back)
    response = page(
        "admin/second_factor.html",
        403,
        title="A second step is needed",
        href=opened.path,
        person=visitor.person,
    )
    set_interaction(response, fd, opened.interaction_id, opened.binding)
    return response


async def admin_of(request: Request) -> Admin | Response:
    """The admin at the console, or the response that keeps them out (sign-in, second step, 403)."""
    fd: Frontdesk = request.app.state.fd
    if not fd.settings.admin.console:
        return refused("Not found", "There is no page here.", 404)
    if "\x00" in request.scope["path"] or any("\x00" in v for v in request.query_params.values()):
        # No name, id or search holds a NUL (PostgreSQL's text cannot), as the form parser refuses one too.
        return refused("Invalid request", "The address of this page is not one the console makes.", 400)
    visitor = await run_in_threadpool(visitor_of, fd, session_token(request, fd))
    # Back to the page asked for (with its search); after a form, to the section the form was on.
    query = f"?{request.url.query}" if request.url.query else ""
    back = request.url.path + query if request.method == "GET" else _section_of(request.url.path)
    if visitor is None:
        return await run_in_threadpool(to_sign_in, fd, back)
    principal = await run_in_threadpool(person_principal, fd, visitor.person.id, client_ip(request))
    if principal is None:
        return _not_an_admin()
    if fd.settings.admin.console_requires_second_factor and not used_second_factor(visitor):
        return await run_in_threadpool(_step_up, fd, visitor, back)
    return Admin(visitor, principal)


Step = Callable[[Frontdesk, Admin, Params, str | None], Response]


async def posted(request: Request, step: Step) -> Response:
    """A console form: an admin who may change things, its CSRF token checked; then ``step(fd, admin, form, ip)``
    on a worker thread."""
    admin = await admin_of(request)
    if isinstance(admin, Response):
        return admin
    if not admin.may_change:
        return refused("Not allowed", "Your role lets you look, not change anything.")
    fd: Frontdesk = request.app.state.fd
    form = await posted_form(request, fd, admin.csrf(fd), _RELOAD)
    if isinstance(form, Response):
        return form
    return await run_in_threadpool(step, fd, admin, form, client_ip(request))


def render(fd: Frontdesk, admin: Admin, template: str, here: str, status: int = 200, **context: Any) -> Response:
    owner = allowed(admin.principal, "admin_roles.read")
    sections = (*SECTIONS, (ACCESS, "Admin access")) if owner else SECTIONS
    title = context.pop("title", None) or dict(sections)[here]
    return page(
        template,
        status,
        title=title,
        person=admin.visitor.person,
        role=admin.role,
        may_change=admin.may_change,
        sections=sections,
        here=here,
        csrf=admin.csrf(fd),
        now=admin.visitor.at,
        **context,
    )


def render_found(
    fd: Frontdesk,
    admin: Admin,
    template: str,
    here: str,
    find: Callable[[], dict[str, Any]],
    missing: dict[str, Any],
    status: int = 200,
    **context: Any,
) -> Response:
    """A page of what the admin services find: ``find()``'s names in its context. When the services refuse (the
    admin's role, say), the page still renders, with ``missing`` in their place and the services' reason."""
    try:
        found = find()
    except AdminError as exc:
        return render(fd, admin, template, here, exc.status, **{**context, **missing, "message": exc.description})
    return render(fd, admin, template, here, status, **context, **found)


async def shown(request: Request, view: Callable[[Frontdesk, Admin], Response]) -> Response:
    """A console page: the admin at it, then ``view(fd, admin)`` on a worker thread."""
    admin = await admin_of(request)
    if isinstance(admin, Response):
        return admin
    return await run_in_threadpool(view, request.app.state.fd, admin)


def back_to(path: str, **notice: str) -> Response:
    return see_other(path + ("?" + urlencode(notice) if notice else ""))
