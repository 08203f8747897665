"""CSRF for forms a person fills in before signing in ("forgot password", sign-up): a random value in a cookie of
its own, and the form carries the server's keyed digest of it (``Frontdesk.csrf_token``). Another site can make a
browser post the form, but cannot read the cookie, so it cannot write the matching field.

Under an https issuer the cookie is ``__Host-`` prefixed like the others (``web.cookies``).
"""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import Response

from ..core import Frontdesk
from ..protocol.forms import Params
from .authorize import posted_form

__all__ = ["FORM_BINDING_LIFETIME", "Binding", "binding_of", "checked_form", "keep_binding"]

FORM_BINDING_LIFETIME = 3600


def _name(fd: Frontdesk) -> str:
    return "__Host-fd_form" if fd.settings.secure_cookies else "fd_form"


class Binding:
    """The browser's form binding: the one it sent, or a new one to set with the page."""

    def __init__(self, value: str, new: bool) -> None:
        self.value = value
        self.new = new

    def csrf(self, fd: Frontdesk) -> str:
        return fd.csrf_token("form:" + self.value)


def binding_of(request: Request, fd: Frontdesk) -> Binding:
    sent = request.cookies.get(_name(fd))
    if sent and 20 <= len(sent) <= 64:
        return Binding(sent, new=False)
    return Binding(secrets.token_urlsafe(24), new=True)


def keep_binding(response: Response, fd: Frontdesk, binding: Binding) -> Response:
    """Set the cookie on the page that carries a form, when the browser had none."""
    if binding.new:
        response.set_cookie(
            _name(fd),
            binding.value,
            max_age=FORM_BINDING_LIFETIME,
            path="/",
            httponly=True,
            secure=fd.settings.secure_cookies,
            samesite="lax",
        )
    return response


async def checked_form(request: Request, fd: Frontdesk) -> Params | Response:
    """The posted form if its CSRF field matches this browser's binding; otherwise the page that refuses it."""
    sent = request.cookies.get(_name(fd))
    expected = Binding(sent, new=False).csrf(fd) if sent else secrets.token_hex(32)  # no cookie: nothing matches
    return await posted_form(request, fd, expected, "Go back, reload the page and try again.")
