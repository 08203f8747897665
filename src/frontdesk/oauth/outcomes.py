"""What a browser-facing service decided, as values the page code renders (DESIGN §2: a page handler renders what a
service decided). An interaction opened for the person is ``signin.Detour``."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Expired", "Redirect", "SignedIn"]


@dataclass(frozen=True, slots=True)
class Redirect:
    """Send the browser to ``url``: the client's redirect URI with the authorization response (a code or an
    error), or the next page here."""

    url: str


@dataclass(frozen=True, slots=True)
class Expired:
    """The interaction is gone: expired, already finished, or started in another browser."""


@dataclass(frozen=True, slots=True)
class SignedIn:
    """Signed in with a new session: the browser gets its cookie (``token``) and goes on to ``path``."""

    path: str
    token: str = field(repr=False)  # the session cookie's value: never in a log or a traceback
