"""The admin console's Clients pages: find a client, see one, register one, change its name, redirect URIs, grant
types and scope, rotate its secret (the new one shown once, the old one working until the overlap ends), delete it.
Registration's rules judge every change (``admin.clients`` calls ``oauth.registration.validate``); a refusal comes
back on the form in its words.

Clients are named by a query parameter or a hidden field, not a path segment: a client ID may be an https URL (a
client ID metadata document)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..admin import clients
from ..admin.errors import AdminError
from ..core import Frontdesk
from ..protocol.forms import Params
from .admin_gate import Admin, back_to, posted, render, shown

__all__ = [
    "GRANT_WORDS",
    "OVERLAPS",
    "change",
    "client_list",
    "client_page",
    "delete",
    "new_client",
    "register",
    "rotate",
]

HERE = "/admin/clients"
PAGE_SIZE = 50

# The grant types (``oauth.grants.GRANT_TYPES``) in an operator's words, in the order the forms show them.
GRANT_WORDS = {
    "authorization_code": "People sign in through their browser (authorization code)",
    "refresh_token": "Keep access without asking again (refresh tokens)",
    "client_credentials": "The app acts for itself (client credentials)",
    "urn:ietf:params:oauth:grant-type:device_code": "Devices without a keyboard (device flow)",
    "urn:ietf:params:oauth:grant-type:token-exchange": "Exchange a person's token for another (token exchange)",
    "urn:openid:params:grant-type:ciba": "Ask a person for approval on their own device (CIBA)",
}
KINDS = {
    "client_secret_basic": "Confidential: a server that keeps a secret (sent with HTTP Basic)",
    "client_secret_post": "Confidential: a server that keeps a secret (sent in the form)",
    "none": "Public: a browser, mobile or desktop app that cannot keep a secret",
}
# How long the old secret keeps working after a rotation: (seconds, words).
OVERLAPS = ((3600, "1 hour"), (clients.DEFAULT_OVERLAP, "24 hours"), (7 * 86400, "7 days"), (0, "Stop it now"))
DONE = {
    "changed": "The client's settings are saved.",
    "deleted": "The client is deleted, and every access it held has ended.",
}


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _settings(form: Params) -> dict[str, Any]:
    """The fields of the settings form, as the admin services take them."""
    return {
        "name": form.get("name", "").strip(),
        "redirect_uris": _lines(form.get("redirect_uris", "")),
        # One checkbox a grant type, each a field of its own: a form parameter is never repeated (RFC 6749 §3.1).
        "grant_types": [g for g in GRANT_WORDS if form.get(f"grant:{g}") == "on"],
        "scope": " ".join(form.get("scope", "").split()),
    }


def _context(**extra: Any) -> dict[str, Any]:
    overlaps = {"overlaps": OVERLAPS, "default_overlap": clients.DEFAULT_OVERLAP}
    return {"grant_words": GRANT_WORDS, "kinds": KINDS, **overlaps, **extra}


# --- the list ---------------------------------------------------------------------------------------------------


def _clients(fd: Frontdesk, admin: Admin, search: str, cursor: str | None, notice: str | None) -> Response:
    try:
        found = clients.list_clients(fd, admin.principal, search=search or None, cursor=cursor, limit=PAGE_SIZE)
    except AdminError as exc:
        return render(
            fd, admin, "admin/clients.html", HERE, exc.status, clients=(), search=search, message=exc.description
        )
    return render(
        fd,
        admin,
        "admin/clients.html",
        HERE,
        clients=found.items,
        search=search,
        next=found.next_cursor,
        notice=notice,
    )


async def client_list(request: Request) -> Response:
    search = request.query_params.get("q", "").strip()
    cursor = request.query_params.get("cursor") or None
    notice = DONE.get(request.query_params.get("done", ""))
    return await shown(request, lambda fd, admin: _clients(fd, admin, search, cursor, notice))


# --- one client -------------------------------------------------------------------------------------------------


def _client(
    fd: Frontdesk,
    admin: Admin,
    client_id: str,
    status: int = 200,
    *,
    notice: str | None = None,
    message: str | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    try:
        found = clients.client(fd, admin.principal, client_id)
    except AdminError as exc:
        return render(fd, admin, "admin/error.html", HERE, exc.status, title="Client", message=exc.description)
    c = found.record
    shown_form = form or {
        "name": c.name,
        "redirect_uris": list(c.redirect_uris),
        "grant_types": list(c.grant_types),
        "scope": " ".join(c.scope),
    }
    return render(
        fd,
        admin,
        "admin/client.html",
        HERE,
        status,
        title=c.name,
        c=found,
        form=shown_form,
        notice=notice,
        message=message,
        **_context(),
    )


async def client_page(request: Request) -> Response:
    client_id = request.query_params.get("client_id", "")
    notice = DONE.get(request.query_params.get("done", ""))
    return await shown(request, lambda fd, admin: _client(fd, admin, client_id, notice=notice))


def _change(fd: Frontdesk, admin: Admin, form: Params, ip: str | None) -> Response:
    client_id = form.get("client_id", "")
    changes = _settings(form)
    try:
        clients.update_client(fd, admin.principal, client_id, changes)
    except AdminError as exc:
        return _client(fd, admin, client_id, exc.status, message=exc.description, form=changes)
    return back_to(f"{HERE}/view", client_id=client_id, done="changed")


async def change(request: Request) -> Response:
    """POST /admin/clients/change: the name, redirect URIs, grant types and scope, judged as at registration."""
    return await posted(request, _change)


def _rotate(fd: Frontdesk, admin: Admin, form: Params, ip: str | None) -> Response:
    client_id = form.get("client_id", "")
    try:
        overlap = int(form.get("overlap", str(clients.DEFAULT_OVERLAP)))
        rotated = clients.rotate_secret(fd, admin.principal, client_id, overlap=overlap)
    except ValueError:
        return _client(fd, admin, client_id, 400, message="Choose how long the old secret keeps working.")
    except AdminError as exc:
        return _client(fd, admin, client_id, exc.status, message=exc.description)
    return render(
        fd,
        admin,
        "admin/client_secret.html",
        HERE,
        title="New secret",
        c=rotated.client,
        secret=rotated.secret,
        previous_until=rotated.previous_valid_until,
        rotated=True,
    )


async def rotate(request: Request) -> Response:
    """POST /admin/clients/rotate-secret: a page showing the new secret, this once."""
    return await posted(request, _rotate)


def _delete(fd: Frontdesk, admin: Admin, form: Params, ip: str | None) -> Response:
    client_id = form.get("client_id", "")
    try:
        clients.delete_client(fd, admin.principal, client_id)
    except AdminError as exc:
        return _client(fd, admin, client_id, exc.status, message=exc.description)
    return back_to(HERE, done="deleted")


async def delete(request: Request) -> Response:
    return await posted(request, _delete)


# --- registering one --------------------------------------------------------------------------------------------


def _new(fd: Frontdesk, admin: Admin, status: int = 200, **context: Any) -> Response:
    form = context.pop("form", None) or {
        "name": "",
        "redirect_uris": [],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid profile email offline_access",
        "auth_method": "client_secret_basic",
    }
    return render(
        fd, admin, "admin/client_new.html", HERE, status, title="Register a client", form=form, **_context(**context)
    )


async def new_client(request: Request) -> Response:
    return await shown(request, lambda fd, admin: _new(fd, admin))


def _register(fd: Frontdesk, admin: Admin, form: Params, ip: str | None) -> Response:
    fields = {**_settings(form), "auth_method": form.get("auth_method", "")}
    if fields["auth_method"] not in KINDS:
        return _new(fd, admin, 400, form=fields, message="Choose what kind of app this is.")
    try:
        made = clients.create_client(fd, admin.principal, fields)
    except AdminError as exc:
        return _new(fd, admin, exc.status, form=fields, message=exc.description)
    return render(
        fd,
        admin,
        "admin/client_secret.html",
        HERE,
        title="Client registered",
        c=made.client,
        secret=made.secret,
        previous_until=None,
        rotated=False,
    )


async def register(request: Request) -> Response:
    """POST /admin/clients/new: the client registered; its secret (if it has one) shown this once."""
    return await posted(request, _register)
