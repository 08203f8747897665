"""The admin console's Scopes and resources page: what clients may ask for and what tokens are for.

Scopes carry the plain words the consent screen shows. OpenID Connect's are the specification's and those in the
configuration file are the file's: the page shows them and changes only the scopes added here (or by the admin API
or the command line). A scope a client or a resource is registered for cannot be deleted; the refusal says which.
Protected resources (RFC 8707) are the audiences tokens are minted for: register one (its scopes are created if
new, described by their names until given words), require DPoP-bound tokens for it (RFC 9449 §7), or delete it.
Every change goes through ``admin.catalog``, with its checks and ``admin.*`` audit events.

A resource is named by its URI, slashes and all: in a hidden form field, never a path segment."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..admin import catalog
from ..admin.errors import AdminError
from ..core import Frontdesk
from ..protocol.forms import Params
from .admin_gate import Admin, back_to, posted, render_found, shown

__all__ = ["CATALOG", "catalog_action", "catalog_page"]

CATALOG = "/admin/catalog"
DONE = {
    "scope-created": "The scope is added. Clients may be registered for it now.",
    "scope-changed": "The scope's words are saved: the consent screen shows them from now on.",
    "scope-deleted": "The scope is deleted.",
    "resource-created": "The resource is registered: tokens may be asked for it now.",
    "resource-changed": "The resource's setting is saved.",
    "resource-deleted": "The resource is deleted: no new token is minted for it; issued ones run out.",
}
_EMPTY_FORM = {"name": "", "description": "", "uri": "", "resource_name": "", "scope": "", "ttl": ""}


def _origin(fd: Frontdesk, scope: catalog.ScopeView) -> str:
    if scope.built_in:
        return "OpenID Connect"
    if scope.name in fd.settings.scopes:
        return "configuration file"
    return "added here"


def _page(
    fd: Frontdesk,
    admin: Admin,
    notice: str | None = None,
    status: int = 200,
    message: str | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    def found() -> dict[str, Any]:
        scopes = [(s, _origin(fd, s)) for s in catalog.list_scopes(fd, admin.principal)]
        return {"scopes": scopes, "resources": catalog.list_resources(fd, admin.principal)}

    empty = {"scopes": (), "resources": ()}
    context = {"notice": notice, "message": message, "form": form or _EMPTY_FORM}
    return render_found(fd, admin, "admin/catalog.html", CATALOG, found, empty, status, **context)


async def catalog_page(request: Request) -> Response:
    notice = DONE.get(request.query_params.get("done", ""))
    return await shown(request, lambda fd, admin: _page(fd, admin, notice))


def _ttl(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 6:
        raise _Refused("A token lifetime is a whole number of seconds, at most 86400 (a day), or empty.")
    return int(text)


class _Refused(Exception):
    """A form value the page refuses before the services see it."""


def _act(fd: Frontdesk, admin: Admin, form: Params) -> str:
    """Carry out the form's ``action``; the ``done`` notice to show."""
    by, action = admin.principal, form.get("action", "")
    if action == "create-scope":
        catalog.create_scope(fd, by, form.get("name", "").strip(), form.get("description", ""))
        return "scope-created"
    if action == "change-scope":
        catalog.update_scope(fd, by, form.get("name", ""), form.get("description", ""))
        return "scope-changed"
    if action == "delete-scope":
        catalog.delete_scope(fd, by, form.get("name", ""))
        return "scope-deleted"
    if action == "create-resource":
        catalog.create_resource(
            fd,
            by,
            uri=form.get("uri", "").strip(),
            name=form.get("resource_name", "").strip(),
            scope=form.get("scope", ""),
            access_token_ttl=_ttl(form.get("ttl", "")),
            require_dpop=form.get("require_dpop") == "on",
        )
        return "resource-created"
    if action == "dpop-resource":
        catalog.update_resource(fd, by, form.get("uri", ""), require_dpop=form.get("require_dpop") == "on")
        return "resource-changed"
    if action == "delete-resource":
        catalog.delete_resource(fd, by, form.get("uri", ""))
        return "resource-deleted"
    raise _Refused("The form asked for nothing this page does. Reload the page and try again.")


def _action(fd: Frontdesk, admin: Admin, form: Params, _ip: str | None) -> Response:
    typed = {name: form.get(name, "") for name in _EMPTY_FORM}  # a refused new scope or resource keeps its fields
    try:
        done = _act(fd, admin, form)
    except AdminError as exc:
        return _page(fd, admin, status=exc.status, message=exc.description, form=typed)
    except _Refused as exc:
        return _page(fd, admin, status=422, message=str(exc), form=typed)  # as the services' ``Invalid``
    return back_to(CATALOG, done=done)


async def catalog_action(request: Request) -> Response:
    """POST /admin/catalog: one change to the scopes or resources, named by the form's ``action``."""
    return await posted(request, _action)
