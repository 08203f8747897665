"""The two browser cookies: the session, and the per-interaction binding (scoped to the interaction's path)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..core import Frontdesk

__all__ = ["clear_session", "interaction_binding", "session_token", "set_interaction", "set_session"]


def _session_name(fd: Frontdesk) -> str:
    return "__Secure-fd_session" if fd.settings.secure_cookies else "fd_session"


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


def interaction_binding(request: Request) -> str | None:
    return request.cookies.get("fd_ix")


def set_interaction(response: Response, fd: Frontdesk, ix_id: str, binding: str) -> None:
    response.set_cookie(
        "fd_ix",
        binding,
        max_age=fd.settings.lifetimes.interaction,
        path=f"/interaction/{ix_id}",
        httponly=True,
        secure=fd.settings.secure_cookies,
        samesite="lax",
    )
