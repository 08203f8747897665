"""The vault's pages for a person's browser: the connect link (a page that names the account and asks to continue),
the trip to the provider, and the callback it sends the person back to (DESIGN §6). The platform's API and the proxy
are web/vault.py.
"""

from __future__ import annotations

import secrets

import anyio
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..core import Frontdesk
from ..errors import TemporarilyUnavailable
from ..vault import oauth
from ..vault.catalog import CatalogError
from ..vault.connect import ConnectFailed
from ..vault.service import Vault, vault_of
from ..vault.store import VaultError
from .account import to_sign_in, visitor_of
from .authorize import posted_form, problem, see_other
from .cookies import session_token
from .pages import page

__all__ = ["RESUME_PATH", "callback", "connect", "connect_confirmed", "connect_resumed"]


# What a person reads when a connect link cannot go on: what happened, and what to do.
_PAGES = {
    "unknown": ("Link not recognised", "This connect link is not valid. Go back to the app and ask it for a new one."),
    "expired": ("Link expired", "This connect link has expired. Go back to the app and ask it for a new one."),
    "used": ("Link already used", "This connect link has already been used. Go back to the app and start again."),
    "other_browser": (
        "Finish in the same browser",
        "This connection was started in another browser. Open the link again from the app, in this browser.",
    ),
    "denied": ("Not connected", "You did not give access, so nothing was connected. You can close this window."),
    "exchange_failed": (
        "Could not connect",
        "The service did not accept the connection. Go back to the app and try again in a moment.",
    ),
    "unavailable": ("Try again in a moment", "The service could not be reached. Go back to the app and try again."),
    "wrong_person": (
        "This link is for someone else",
        "This connect link was made for another person, not for the one signed in here. If it is yours, sign out, "
        "open the link again and sign in as yourself. If someone sent it to you, close this page.",
    ),
}
# Back from signing in, a link that needs its person signed in comes here; the link waits in a cookie meanwhile.
RESUME_PATH = "/vault/connect"
_START_AGAIN = "Open the link again from the app."


def _cookie(vault: Vault) -> str:
    return "__Host-fd_vault" if vault.settings.secure_cookies else "fd_vault"


def _problem(reason: str, status: int = 400) -> Response:
    title, message = _PAGES[reason]
    return page("error.html", status, title=title, message=message)


def _link_cookie(vault: Vault) -> tuple[str, str]:
    """(name, path) of the cookie that holds a connect link while its person signs in. ``__Host-`` under https,
    like every cookie here (web/cookies.py), so no sibling host can plant a link of its own; that rules out a
    narrower path, which only a plain-http development issuer keeps."""
    if vault.settings.secure_cookies:
        return "__Host-fd_vault_link", "/"
    return "fd_vault_link", RESUME_PATH


def _csrf(request: Request, browser: str) -> str:
    fd: Frontdesk = request.app.state.fd
    return fd.csrf_token("vault connect:" + browser)


def _failed(exc: ConnectFailed) -> Response:
    return _problem(exc.reason, {"unknown": 404, "wrong_person": 403}.get(exc.reason, 410))


async def connect(request: Request) -> Response:
    """The connect link: a page that names the account the connection will belong to, and asks to continue.
    Opening it uses nothing up: a link forwarded unopened shows its owner to whoever opens it."""
    return await _confirm(request, request.path_params["token"])


async def connect_resumed(request: Request) -> Response:
    """Back from signing in: the link this browser was holding."""
    token = request.cookies.get(_link_cookie(vault_of(request.app.state.fd))[0])
    return await _confirm(request, token) if token else _problem("unknown", 404)


async def _confirm(request: Request, token: str) -> Response:
    fd: Frontdesk = request.app.state.fd
    vault = vault_of(fd)
    try:
        shown = await anyio.to_thread.run_sync(vault.connect_page, token)
    except ConnectFailed as exc:
        return _failed(exc)
    except (VaultError, CatalogError):
        return _problem("unavailable", 503)
    if shown.subject is not None:
        visitor = await anyio.to_thread.run_sync(visitor_of, fd, session_token(request, fd))
        if visitor is None:
            # The interaction row keeps only RESUME_PATH: the link itself never reaches the database.
            response = await anyio.to_thread.run_sync(to_sign_in, fd, RESUME_PATH)
            name, path = _link_cookie(vault)
            response.set_cookie(
                name, token, max_age=vault.settings.lifetimes.connect_session, path=path,
                httponly=True, secure=vault.settings.secure_cookies, samesite="lax",
            )  # fmt: skip
            return response
        if visitor.person.id != shown.subject:
            return _problem("wrong_person", 403)
    # The browser the connection must finish in (the callback checks it); kept when this browser has one already,
    # so two links opened side by side both finish.
    browser = request.cookies.get(_cookie(vault)) or secrets.token_urlsafe(32)
    response = page(
        "vault_connect.html", title=f"Connect {shown.provider}", provider=shown.provider, account=shown.account,
        named=shown.named, words=shown.words, action=f"/vault/connect/{token}", csrf=_csrf(request, browser),
    )  # fmt: skip
    response.set_cookie(
        _cookie(vault), browser, max_age=vault.settings.lifetimes.connect_session, path="/",
        httponly=True, secure=vault.settings.secure_cookies, samesite="lax",
    )  # fmt: skip
    return response


async def connect_confirmed(request: Request) -> Response:
    """The person chose to continue: bind the link to this browser, then on to the provider."""
    fd: Frontdesk = request.app.state.fd
    vault = vault_of(fd)
    token = request.path_params["token"]
    browser = request.cookies.get(_cookie(vault))
    if not browser:
        return problem("This form has expired", _START_AGAIN, 403)
    form = await posted_form(request, fd, _csrf(request, browser), _START_AGAIN)
    if isinstance(form, Response):
        return form
    signed_in = session_token(request, fd)
    visitor = await anyio.to_thread.run_sync(visitor_of, fd, signed_in) if signed_in else None
    subject = visitor.person.id if visitor else None
    try:
        url = await anyio.to_thread.run_sync(vault.start, token, browser, subject)
    except ConnectFailed as exc:
        # Signed out since the page was shown: the link's page leads through signing in again.
        return see_other(f"/vault/connect/{token}") if exc.reason == "sign_in" else _failed(exc)
    except (oauth.ProviderError, VaultError, CatalogError):
        return _problem("unavailable", 503)
    response = see_other(url)
    name, path = _link_cookie(vault)
    response.delete_cookie(name, path=path, secure=vault.settings.secure_cookies, httponly=True)
    return response


async def callback(request: Request) -> Response:
    """Where the provider sends the person back: ``{issuer}/vault/callback``, registered at the provider."""
    vault = vault_of(request.app.state.fd)
    q = request.query_params
    try:
        _, return_url, provider = await anyio.to_thread.run_sync(
            vault.finish, q.get("state"), q.get("code"), q.get("error"), request.cookies.get(_cookie(vault)),
            q.get("iss"),
        )  # fmt: skip
    except ConnectFailed as exc:
        response = _problem(exc.reason, 400)
    except (oauth.ProviderError, VaultError, CatalogError, TemporarilyUnavailable):
        # oauth.ProviderError: the provider's discovery document could not be fetched to check `iss` or exchange.
        response = _problem("unavailable", 503)
    else:
        if return_url:
            response = RedirectResponse(return_url, status_code=303)
        else:
            response = page(
                "done.html", title=f"{provider.display_name} connected",
                message=f"Your {provider.display_name} account is connected. You can close this window and go back.",
            )  # fmt: skip
    response.delete_cookie(_cookie(vault), path="/", secure=vault.settings.secure_cookies, httponly=True)
    return response
