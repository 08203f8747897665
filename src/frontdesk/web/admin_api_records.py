"""The admin API's audit trail (search, and export as JSON lines), admin tokens, admin roles and alerts
(``admin.audit_search``, ``admin.tokens``, ``admin.roles``, ``admin.alerts``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..admin import alerts, audit_search, roles, tokens
from ..admin.errors import Invalid
from ..admin.principals import Principal
from ..core import Frontdesk
from ..protocol.forms import Params
from .admin_api_http import body_of, call, created, integer, listing, no_content, page, query, text
from .http import json_response

__all__ = [
    "acknowledge_alert",
    "create_token",
    "export_audit",
    "grant_role",
    "list_alerts",
    "list_roles",
    "list_tokens",
    "read_alert",
    "resolve_alert",
    "revoke_role",
    "revoke_token",
    "search_audit",
]

_NEVER = 2**53 - 1  # the largest time a JSON number carries exactly


def _audit_query(params: Params) -> audit_search.AuditQuery:
    return audit_search.AuditQuery(
        event=params.get("event"),
        user_id=params.get("user_id"),
        client_id=params.get("client_id"),
        outcome=params.get("outcome"),
        since=integer(params, "since", None, 0, _NEVER),
        until=integer(params, "until", None, 0, _NEVER),
    )


async def search_audit(request: Request, fd: Frontdesk, by: Principal) -> Response:
    params = await query(request)
    limit = integer(params, "limit", 50, 1, 200)
    assert limit is not None
    found = await call(
        audit_search.search_audit, fd, by, _audit_query(params), cursor=params.get("cursor"), limit=limit
    )
    return page(found)


async def export_audit(request: Request, fd: Frontdesk, by: Principal) -> Response:
    """JSON lines (one event each, oldest first), streamed: the batches are read as the client takes them."""
    lines = await call(audit_search.export_audit, fd, by, _audit_query(await query(request)))
    return StreamingResponse(
        lines,
        media_type="application/x-ndjson",
        headers={"Cache-Control": "no-store", "Content-Disposition": 'attachment; filename="audit.jsonl"'},
    )


async def list_tokens(request: Request, fd: Frontdesk, by: Principal) -> Response:
    return listing(await call(tokens.list_tokens, fd, by))


async def create_token(request: Request, fd: Frontdesk, by: Principal) -> Response:
    body = await body_of(request, ("role", "name", "days"))
    days = body.get("days")
    if days is not None and (not isinstance(days, int) or isinstance(days, bool)):
        raise Invalid("days must be a whole number (0: until revoked)")
    issued = await call(
        tokens.create_token,
        fd,
        by,
        role=text(body, "role", longest=16) or "",
        name=text(body, "name", longest=100) or "",
        days=days,
    )
    return created({"token": issued.token.as_dict(), "secret": issued.secret})  # shown this once


async def revoke_token(request: Request, fd: Frontdesk, by: Principal) -> Response:
    await call(tokens.revoke_token, fd, by, request.path_params["token_id"])
    return no_content()


async def list_roles(request: Request, fd: Frontdesk, by: Principal) -> Response:
    return listing(await call(roles.list_roles, fd, by))


async def grant_role(request: Request, fd: Frontdesk, by: Principal) -> Response:
    body = await body_of(request, ("role",))
    granted = await call(
        roles.grant_role, fd, by, request.path_params["username"], text(body, "role", longest=16) or ""
    )
    return json_response({"role": granted.as_dict()})


async def revoke_role(request: Request, fd: Frontdesk, by: Principal) -> Response:
    await call(roles.revoke_role, fd, by, request.path_params["username"])
    return no_content()


async def list_alerts(request: Request, fd: Frontdesk, by: Principal) -> Response:
    params = await query(request)
    limit = integer(params, "limit", 50, 1, 200)
    assert limit is not None
    found = await call(
        alerts.list_alerts,
        fd,
        by,
        status=params.get("status"),
        rule=params.get("rule"),
        cursor=params.get("cursor"),
        limit=limit,
    )
    return page(found)


async def read_alert(request: Request, fd: Frontdesk, by: Principal) -> Response:
    found = await call(alerts.alert, fd, by, request.path_params["alert_id"])
    return json_response({"alert": found.as_dict()})


async def acknowledge_alert(request: Request, fd: Frontdesk, by: Principal) -> Response:
    await body_of(request, (), optional=True)
    found = await call(alerts.acknowledge, fd, by, request.path_params["alert_id"])
    return json_response({"alert": found.as_dict()})


async def resolve_alert(request: Request, fd: Frontdesk, by: Principal) -> Response:
    await body_of(request, (), optional=True)
    found = await call(alerts.resolve, fd, by, request.path_params["alert_id"])
    return json_response({"alert": found.as_dict()})
