"""The answer to a sign-in try that must wait (``frontdesk.oauth.signin_throttle``): 429, Retry-After, plain words."""

from __future__ import annotations

from starlette.responses import Response

from ..oauth.signin_throttle import Refusal
from .pages import page

__all__ = ["in_words", "too_many_attempts"]


def in_words(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{-(-seconds // 60)} minutes"


def too_many_attempts(refused: Refusal) -> Response:
    message = f"Too many attempts. Try again in {in_words(refused.retry_after)}."
    response = page("error.html", 429, title="Too many attempts", message=message)
    response.headers["Retry-After"] = str(refused.retry_after)
    return response
