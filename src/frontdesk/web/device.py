"""RFC 8628 device authorization: the endpoint devices call, and the page where a signed-in person types the
user code and approves or denies. Approving goes through the one sign-in policy (``signin.next_step``) for the
device's client: a second factor it requires is added (a step-up) before the approval is taken."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..core import Frontdesk
from ..errors import OAuthError, RateLimited, UnauthorizedClient
from ..oauth.grants import DEVICE_CODE, check_scope
from ..oauth.rate_limits import check, count_failure, user_code_limits
from ..oauth.signin import Asked, Next, facts_of, next_step
from ..protocol.rfc8628 import format_user_code, normalise_user_code
from ..protocol.rfc8707 import check_resource
from ..protocol.scope import parse_scope
from ..storage import audit
from ..storage.db import now, transaction
from ..storage.device import decide_device, device_by_user_code, insert_device
from ..storage.people import SessionRow, session_for
from .authorize import detour, posted_form, problem, too_many
from .cookies import session_token
from .http import client_ip, json_response
from .pages import page
from .token import authenticated_client, oauth_error

__all__ = ["device_authorization", "verification"]


def _start(fd: Frontdesk, client_id: str, scope: tuple[str, ...], resource: tuple[str, ...]) -> dict[str, object]:
    lt = fd.settings.lifetimes
    with transaction(fd.engine) as conn:
        device_code, user_code = insert_device(
            conn,
            client_id=client_id,
            scope=scope,
            resource=resource,
            interval=lt.device_interval,
            at=now(),
            ttl=lt.device_code,
        )
    shown = format_user_code(user_code)
    return {
        "device_code": device_code,
        "user_code": shown,
        "verification_uri": fd.url("/device"),
        "verification_uri_complete": fd.url(f"/device?user_code={shown}"),
        "expires_in": lt.device_code,
        "interval": lt.device_interval,
    }


async def device_authorization(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    try:
        client, params = await authenticated_client(request, fd)
        if DEVICE_CODE not in client.grant_types:
            raise UnauthorizedClient("the client is not allowed the device authorization grant")
        scope = await run_in_threadpool(check_scope, fd, client, parse_scope(params.get("scope")))
        resource = check_resource(params.getall("resource"))
    except OAuthError as exc:
        return oauth_error(exc)
    return json_response(await run_in_threadpool(_start, fd, client.client_id, scope, resource))


def _session(fd: Frontdesk, token: str | None) -> SessionRow | None:
    if not token:
        return None
    with transaction(fd.engine, readonly=True) as conn:
        return session_for(conn, token, now(), fd.settings.lifetimes.session_idle)


def _to_login(fd: Frontdesk, user_code: str | None) -> Response:
    at = now()
    with transaction(fd.engine) as conn:
        data: dict[str, Any] = {"kind": "device", "user_code": user_code}
        row = device_by_user_code(conn, normalise_user_code(user_code), at) if user_code else None
        if row is not None:
            data["client_id"] = row.client_id  # known already: the sign-in owes what the policy asks for it
        return detour(fd, conn, data, Next.SIGN_IN, None, at)


def _owed(
    fd: Frontdesk, conn: Connection, client_id: str, user_code: str, session: SessionRow, at: int
) -> Response | None:
    """None when the session's sign-in may approve a device code of ``client_id``; otherwise the way to what
    it still owes (a step-up to the second factor the policy asks for this client). The one sign-in policy."""
    facts = facts_of(conn, session, for_this_request=False)
    step = next_step(fd.settings.second_factor, Asked(client_id=client_id), facts, at)
    if step is Next.PROCEED:
        return None
    data = {"kind": "device", "user_code": format_user_code(user_code), "client_id": client_id}
    return detour(fd, conn, data, step, session, at)


def _confirm(fd: Frontdesk, typed: str, csrf: str, session: SessionRow, ip: str | None) -> Response:
    code = normalise_user_code(typed)
    # RFC 8628 §5.1: user codes are short, so guessing them must be rate limited.
    limits = user_code_limits(fd, ip)
    try:
        check(fd, limits)
    except RateLimited as exc:
        return too_many(exc)
    at = now()
    with transaction(fd.engine) as conn:
        row = device_by_user_code(conn, code, at)
        if row is not None:
            owed = _owed(fd, conn, row.client_id, row.user_code, session, at)
            if owed is not None:
                return owed
        person = fd.users.by_id(conn, session.user_id)
    if row is None:
        count_failure(fd, limits)
        return page(
            "device.html",
            400,
            title="Connect a device",
            csrf=csrf,
            user_code=typed,
            message="That code is not valid or has expired. Check the code on your device.",
        )
    client = fd.clients.get(row.client_id)
    known = fd.scopes()
    descriptions = [known.get(s, s) for s in row.scope if s != "openid"] or ["Confirm who you are"]
    return page(
        "consent.html",
        title="Allow access?",
        action="/device/decide",
        csrf=csrf,
        client_name=client.name if client else row.client_id,
        scopes=descriptions,
        resources=row.resource,
        redirect_host=None,
        username=person.username if person else "",
        hidden=[("user_code", format_user_code(code))],
    )


def _decide(fd: Frontdesk, typed: str, allow: bool, session: SessionRow, ip: str | None) -> Response:
    at = now()
    status = "approved" if allow else "denied"
    with transaction(fd.engine) as conn:
        row = device_by_user_code(conn, normalise_user_code(typed), at)
        if row is not None and allow:
            # Checked again at the decision itself: a form posted straight here must not skip the step-up.
            owed = _owed(fd, conn, row.client_id, row.user_code, session, at)
            if owed is not None:
                return owed
        if row is None or not decide_device(conn, row.digest, status, session.user_id, session.auth_time, session.amr):
            return problem("This code has expired", "Start again on your device.")
        audit.record(
            conn,
            "consent",
            "granted" if allow else "denied",
            client_id=row.client_id,
            user_id=session.user_id,
            ip=ip,
            scope=" ".join(row.scope),
            grant_type=DEVICE_CODE,
        )
    message = (
        "Your device is connected. You can close this page and return to it."
        if allow
        else "You denied access. Your device will not be connected."
    )
    return page("done.html", title="Done" if allow else "Access denied", message=message)


async def verification(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    token = session_token(request, fd)
    session = await run_in_threadpool(_session, fd, token)
    if request.method == "GET":
        typed = request.query_params.get("user_code")
        if session is None or token is None:
            return await run_in_threadpool(_to_login, fd, typed)
        return page("device.html", title="Connect a device", csrf=fd.csrf_token(token), user_code=typed)
    if session is None or token is None:
        return problem("You are signed out", "Open the link from your device again.", 403)
    # The forms' CSRF token is derived from the session token: a form shown to another session is refused.
    csrf = fd.csrf_token(token)
    form = await posted_form(request, fd, csrf, "Open the link from your device again.")
    if isinstance(form, Response):
        return form
    if request.url.path == "/device":
        return await run_in_threadpool(_confirm, fd, form.get("user_code", ""), csrf, session, client_ip(request))
    decision = form.get("decision")
    if decision not in ("allow", "deny"):
        return problem("Invalid request", "Choose Allow or Deny.")
    return await run_in_threadpool(
        _decide, fd, form.get("user_code", ""), decision == "allow", session, client_ip(request)
    )
