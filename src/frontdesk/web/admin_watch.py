"""The admin console's Vault connections and Alerts pages.

Vault connections (DESIGN §6): the accounts people connected at other services, by integration, user and status,
never a token; deleting one revokes it at its provider where the provider allows it (``admin.vault``). Alerts
(issue 16, item 3): what the rules raised from the audit trail, newest first; acknowledging says someone is looking
at it, resolving closes it (``admin.alerts``)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..admin import alerts, vault
from ..admin.errors import AdminError
from ..core import Frontdesk
from ..protocol.forms import Params
from .admin_gate import Admin, back_to, posted, render, shown

__all__ = ["RULE_WORDS", "alert_action", "alert_list", "connection_list", "delete_connection"]

PAGE_SIZE = 50
CONNECTIONS = "/admin/connections"
ALERTS = "/admin/alerts"
STATUS_WORDS = {"active": "Working", "needs_reauth": "Needs the person to reconnect", "revoked": "Revoked"}
# Each alert rule (``admin.alert_rules.RULES``) named in a few words, for an alert's heading; its summary says the rest.
RULE_WORDS = {
    "token.replayed": "A token was used twice",
    "signin.failures.person": "Many failed sign-ins to one account",
    "signin.failures.address": "Many failed sign-ins from one address",
    "client_auth.failures": "A client keeps failing to authenticate",
    "vault.proxy.surge": "A vault connection used far more than usual",
    "vault.refresh.failing": "A vault connection keeps failing to refresh",
    "signing_keys.rotation_overdue": "Signing keys are due for rotation",
}
DONE = {
    "deleted": "The connection is deleted, and its provider confirmed that its access is revoked.",
    "deleted_here": "The connection is deleted here; its provider did not confirm revoking its access.",
    "acknowledged": "The alert is marked as being looked at.",
    "resolved": "The alert is resolved. If it happens again, a new alert is raised.",
}


# --- vault connections ------------------------------------------------------------------------------------------


def _connections(
    fd: Frontdesk,
    admin: Admin,
    query: dict[str, str],
    cursor: str | None,
    notice: str | None,
    status: int = 200,
    message: str | None = None,
) -> Response:
    template = "admin/connections.html"
    context: dict[str, Any] = {"query": query, "status_words": STATUS_WORDS, "notice": notice}
    try:
        found = vault.list_connections(
            fd,
            admin.principal,
            integration=query["integration"] or None,
            user=query["user"] or None,
            status=query["status"] or None,
            cursor=cursor,
            limit=PAGE_SIZE,
        )
    except AdminError as exc:
        return render(fd, admin, template, CONNECTIONS, exc.status, connections=(), message=exc.description, **context)
    return render(
        fd,
        admin,
        template,
        CONNECTIONS,
        status,
        connections=found.items,
        next=found.next_cursor,
        message=message,
        **context,
    )


async def connection_list(request: Request) -> Response:
    query = {name: request.query_params.get(name, "").strip() for name in ("integration", "user", "status")}
    cursor = request.query_params.get("cursor") or None
    notice = DONE.get(request.query_params.get("done", ""))
    return await shown(request, lambda fd, admin: _connections(fd, admin, query, cursor, notice))


def _delete(fd: Frontdesk, admin: Admin, form: Params, ip: str | None) -> Response:
    try:
        revoked = vault.delete_connection(fd, admin.principal, form.get("connection", ""))
    except AdminError as exc:
        empty = {"integration": "", "user": "", "status": ""}
        return _connections(fd, admin, empty, None, None, status=exc.status, message=exc.description)
    return back_to(CONNECTIONS, done="deleted" if revoked else "deleted_here")


async def delete_connection(request: Request) -> Response:
    return await posted(request, _delete)


# --- alerts -----------------------------------------------------------------------------------------------------


def _alerts(
    fd: Frontdesk,
    admin: Admin,
    shown_status: str,
    cursor: str | None,
    status: int = 200,
    **context: Any,
) -> Response:
    template = "admin/alerts.html"
    words = {"which": shown_status, "statuses": alerts.STATUSES, "rule_words": RULE_WORDS}
    try:
        found = alerts.list_alerts(fd, admin.principal, status=shown_status or None, cursor=cursor, limit=PAGE_SIZE)
    except AdminError as exc:
        return render(fd, admin, template, ALERTS, exc.status, alerts=(), **words, message=exc.description)
    return render(fd, admin, template, ALERTS, status, alerts=found.items, next=found.next_cursor, **words, **context)


async def alert_list(request: Request) -> Response:
    status = request.query_params.get("status", "")  # every alert, newest first, unless one status is asked for
    cursor = request.query_params.get("cursor") or None
    notice = DONE.get(request.query_params.get("done", ""))
    return await shown(request, lambda fd, admin: _alerts(fd, admin, status, cursor, notice=notice))


def _alert_action(fd: Frontdesk, admin: Admin, form: Params, ip: str | None) -> Response:
    alert_id = form.get("alert", "")
    try:
        if form.get("action") == "resolve":
            alerts.resolve(fd, admin.principal, alert_id)
            done = "resolved"
        else:
            alerts.acknowledge(fd, admin.principal, alert_id)
            done = "acknowledged"
    except AdminError as exc:
        return _alerts(fd, admin, "", None, exc.status, message=exc.description)
    return back_to(ALERTS, done=done)


async def alert_action(request: Request) -> Response:
    """POST /admin/alerts: acknowledge (``action=acknowledge``) or resolve (``action=resolve``) one alert."""
    return await posted(request, _alert_action)
