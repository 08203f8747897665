"""The admin console at ``/admin`` (issue 16, item 2): server-rendered pages for the people who run the service —
an overview, clients, people, vault connections, scopes and resources, signing keys, sign-in providers, the audit
trail and alerts. Who may enter, the layout and the forms' CSRF are ``admin_gate``'s; each page calls the admin
services (``frontdesk.admin``) and renders what they answer, with the same role checks and audit events as the
admin API and the command line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..admin import alerts, clients, people, vault
from ..admin.errors import AdminError
from ..admin.paging import MAX_LIMIT, Page
from ..core import Frontdesk
from . import (
    admin_access,
    admin_audit,
    admin_catalog,
    admin_clients,
    admin_keys,
    admin_people,
    admin_upstreams,
    admin_watch,
)
from .admin_gate import Admin, render, shown

__all__ = ["overview", "routes"]

OPEN_ALERTS_SHOWN = 5


def _count(listed: Callable[[], Page[Any]]) -> str | None:
    """How many there are, as far as one page of the largest size tells ("200+" beyond); None when unavailable
    (no vault attached)."""
    try:
        found = listed()
    except AdminError:
        return None
    return f"{len(found.items)}{'+' if found.next_cursor else ''}"


def _overview(fd: Frontdesk, admin: Admin) -> Response:
    by = admin.principal
    open_alerts = alerts.list_alerts(fd, by, status="open", limit=MAX_LIMIT)
    counts = {
        "/admin/clients": _count(lambda: clients.list_clients(fd, by, limit=MAX_LIMIT)),
        "/admin/people": _count(lambda: people.list_people(fd, by, limit=MAX_LIMIT)),
        "/admin/connections": _count(lambda: vault.list_connections(fd, by, limit=MAX_LIMIT)),
        "/admin/alerts": _count(lambda: open_alerts),
    }
    shown_alerts = open_alerts.items[:OPEN_ALERTS_SHOWN]
    return render(fd, admin, "admin/overview.html", "/admin", counts=counts, open_alerts=shown_alerts)


async def overview(request: Request) -> Response:
    return await shown(request, _overview)


def routes(fd: Frontdesk) -> list[Route]:
    """The console's routes; none when ``[admin] console`` is off."""
    if not fd.settings.admin.console:
        return []
    return [
        Route("/admin", overview, methods=["GET"]),
        Route("/admin/clients", admin_clients.client_list, methods=["GET"]),
        Route("/admin/clients/view", admin_clients.client_page, methods=["GET"]),
        Route("/admin/clients/new", admin_clients.new_client, methods=["GET"]),
        Route("/admin/clients/new", admin_clients.register, methods=["POST"]),
        Route("/admin/clients/change", admin_clients.change, methods=["POST"]),
        Route("/admin/clients/rotate-secret", admin_clients.rotate, methods=["POST"]),
        Route("/admin/clients/delete", admin_clients.delete, methods=["POST"]),
        Route("/admin/people", admin_people.people_list, methods=["GET"]),
        Route("/admin/people/{user_id}", admin_people.person_page, methods=["GET"]),
        Route("/admin/people/{user_id}/{action}", admin_people.person_action, methods=["POST"]),
        Route("/admin/connections", admin_watch.connection_list, methods=["GET"]),
        Route("/admin/connections/delete", admin_watch.delete_connection, methods=["POST"]),
        Route("/admin/catalog", admin_catalog.catalog_page, methods=["GET"]),
        Route("/admin/catalog", admin_catalog.catalog_action, methods=["POST"]),
        Route("/admin/keys", admin_keys.key_list, methods=["GET"]),
        Route("/admin/keys/rotate", admin_keys.rotate, methods=["POST"]),
        Route("/admin/upstreams", admin_upstreams.upstream_list, methods=["GET"]),
        Route("/admin/upstreams", admin_upstreams.upstream_action, methods=["POST"]),
        Route("/admin/audit", admin_audit.audit, methods=["GET"]),
        Route("/admin/audit/export", admin_audit.export, methods=["POST"]),
        Route("/admin/alerts", admin_watch.alert_list, methods=["GET"]),
        Route("/admin/alerts", admin_watch.alert_action, methods=["POST"]),
        Route("/admin/access", admin_access.access, methods=["GET"]),
        Route("/admin/access/roles", admin_access.grant_role, methods=["POST"]),
        Route("/admin/access/roles/revoke", admin_access.revoke_role, methods=["POST"]),
        Route("/admin/access/tokens", admin_access.create_token, methods=["POST"]),
        Route("/admin/access/tokens/revoke", admin_access.revoke_token, methods=["POST"]),
    ]
