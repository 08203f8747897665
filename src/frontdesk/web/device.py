"""RFC 8628 device authorization over HTTP: the endpoint devices call, and the page where a signed-in person types
the user code and approves or denies. What happens is decided by ``oauth.device_flow``; this module parses the
requests and renders its answers."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..core import Frontdesk
from ..errors import OAuthError, RateLimited
from ..oauth import device_flow
from ..oauth.app_identity import identity_of
from ..oauth.device_flow import Answer, DeviceRequest
from ..oauth.signin import Detour
from .authorize import detour, posted_form, problem, too_many
from .cookies import session_token
from .http import client_ip, json_response
from .pages import page
from .token import authenticated_client, oauth_error

__all__ = ["device_authorization", "verification"]


async def device_authorization(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    try:
        client, params = await authenticated_client(request, fd)
        asked = await run_in_threadpool(
            device_flow.checked_request, fd, client, params.get("scope"), params.getall("resource")
        )
    except OAuthError as exc:
        return oauth_error(exc)
    started = await run_in_threadpool(device_flow.start, fd, asked)
    return json_response(started.as_json())


def _review_page(fd: Frontdesk, found: DeviceRequest | Detour | None, typed: str, csrf: str) -> Response:
    if isinstance(found, Detour):
        return detour(fd, found)
    if found is None:
        return page(
            "device.html",
            400,
            title="Connect a device",
            csrf=csrf,
            user_code=typed,
            message="That code is not valid or has expired. Check the code on your device.",
        )
    known = fd.scopes()
    descriptions = [known.get(s, s) for s in found.scope if s != "openid"] or ["Confirm who you are"]
    return page(
        "consent.html",
        title="Allow access?",
        action="/device/decide",
        csrf=csrf,
        client_name=found.client_name,
        app=identity_of(fd.clients.get(found.client_id), found.client_id),  # a client nobody vetted says so
        scopes=descriptions,
        resources=found.resource,
        redirect_host=None,
        username=found.username,
        hidden=[("user_code", found.user_code)],
    )


def _answer_page(fd: Frontdesk, answer: Answer | Detour, allow: bool) -> Response:
    if isinstance(answer, Detour):
        return detour(fd, answer)
    if answer == "expired":
        return problem("This code has expired", "Start again on your device.")
    message = (
        "Your device is connected. You can close this page and return to it."
        if allow
        else "You denied access. Your device will not be connected."
    )
    return page("done.html", title="Done" if allow else "Access denied", message=message)


async def verification(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    token = session_token(request, fd)
    session = await run_in_threadpool(device_flow.session_of, fd, token)
    if request.method == "GET":
        typed = request.query_params.get("user_code")
        if session is None or token is None:
            return detour(fd, await run_in_threadpool(device_flow.sign_in_first, fd, typed))
        return page("device.html", title="Connect a device", csrf=fd.csrf_token(token), user_code=typed)
    if session is None or token is None:
        return problem("You are signed out", "Open the link from your device again.", 403)
    # The forms' CSRF token is derived from the session token: a form shown to another session is refused.
    csrf = fd.csrf_token(token)
    form = await posted_form(request, fd, csrf, "Open the link from your device again.")
    if isinstance(form, Response):
        return form
    typed = form.get("user_code", "")
    if request.url.path == "/device":
        try:
            found = await run_in_threadpool(device_flow.review, fd, typed, session, client_ip(request))
        except RateLimited as exc:
            return too_many(exc)
        return _review_page(fd, found, typed, csrf)
    decision = form.get("decision")
    if decision not in ("allow", "deny"):
        return problem("Invalid request", "Choose Allow or Deny.")
    allow = decision == "allow"
    answer = await run_in_threadpool(device_flow.decide, fd, typed, allow, session, client_ip(request))
    return _answer_page(fd, answer, allow)
