"""The browser cookies: the session, the per-interaction binding, and the trip to an upstream provider.

Under an https issuer each is a ``__Host-`` cookie (RFC 6265bis cookie name prefixes: Secure, ``Path=/``, no
``Domain``), so that no other host under the same registrable domain can plant or overwrite one: a planted session
would sign a person in as someone else (session fixation), a planted interaction binding would let them finish a
sign-in someone else started. ``__Host-`` rules out a narrower path, so an interaction's binding is
scoped by name rather than by path: one cookie per interaction, living as long as the interaction does. Under a
plain-http loopback issuer (development) the names carry no prefix and the binding is scoped by path as before.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..core import Frontdesk

__all__ = [
    "clear_session",
    "clear_upstream",
    "interaction_binding",
    "session_token",
    "set_interaction",
    "set_session",
    "set_upstream",
    "upstream_browser",
]


def _session_name(fd: Frontdesk) -> str:
    return "__Host-fd_session" if fd.settings.secure_cookies else "fd_session"


def session_token(request: Request, fd: Frontdesk) -> str | None:
    return request.cookies.get(_session_name(fd))


def set_session(response: Response, fd: Frontdesk, token: str) -> None:
    response.set_cookie(
        _session_name(fd),
        token,
        max_age=fd.settings.lifetimes.session,
        path="/",
        httponly=True,
        secure=fd.settings.secure_cookies,
        samesite="lax",
    )


def clear_session(response: Response, fd: Frontdesk) -> None:
    response.delete_cookie(
        _session_name(fd), path="/", secure=fd.settings.secure_cookies, httponly=True, samesite="lax"
    )


def _interaction_cookie(fd: Frontdesk, ix_id: str) -> tuple[str, str]:
    """(name, path) of one interaction's binding cookie. Interaction ids are URL-safe base64, valid in a name."""
    if fd.settings.secure_cookies:
        return f"__Host-fd_ix_{ix_id}", "/"
    return "fd_ix", f"/interaction/{ix_id}"


def interaction_binding(request: Request) -> str | None:
    """The binding cookie of the interaction named in the request's path (``/interaction/{ix}/…``)."""
    ix_id = request.path_params.get("ix")
    if not isinstance(ix_id, str):
        return None
    fd: Frontdesk = request.app.state.fd
    return request.cookies.get(_interaction_cookie(fd, ix_id)[0])


def set_interaction(response: Response, fd: Frontdesk, ix_id: str, binding: str) -> None:
    name, path = _interaction_cookie(fd, ix_id)
    response.set_cookie(
        name,
        binding,
        max_age=fd.settings.lifetimes.interaction,
        path=path,
        httponly=True,
        secure=fd.settings.secure_cookies,
        samesite="lax",
    )


def _upstream_name(fd: Frontdesk) -> str:
    return "__Host-fd_upstream" if fd.settings.secure_cookies else "fd_upstream"


def upstream_browser(request: Request, fd: Frontdesk) -> str | None:
    """The value that binds a trip to an upstream provider to the browser that started it."""
    return request.cookies.get(_upstream_name(fd))


def set_upstream(response: Response, fd: Frontdesk, browser: str) -> None:
    response.set_cookie(
        _upstream_name(fd),
        browser,
        max_age=fd.settings.lifetimes.interaction,
        path="/",
        httponly=True,
        secure=fd.settings.secure_cookies,
        samesite="lax",  # sent on the provider's top-level redirect back, never on another site's subrequests
    )


def clear_upstream(response: Response, fd: Frontdesk) -> None:
    response.delete_cookie(
        _upstream_name(fd), path="/", secure=fd.settings.secure_cookies, httponly=True, samesite="lax"
    )
