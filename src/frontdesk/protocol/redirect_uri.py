"""Redirect URIs: registration rules and the exact-match check.

RFC 9700 §4.1.3 and OAuth 2.1 §2.3.1: compare by simple string equality, no patterns. The one exception is the
port of a loopback IP literal registered by a native (public) client, RFC 8252 §7.3. ``localhost`` is never
treated as a loopback literal here (RFC 8252 §8.3 makes it NOT RECOMMENDED; it can be resolved elsewhere).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ..errors import InvalidRequest

__all__ = ["InvalidRedirectUri", "check_redirect_uri", "validate_redirect_uri"]

LOOPBACK_LITERALS = ("127.0.0.1", "[::1]")


class InvalidRedirectUri(InvalidRequest):
    """RFC 7591 §3.2.2 wire code."""

    error = "invalid_redirect_uri"


def _split_loopback(uri: str) -> tuple[str, str] | None:
    """For ``http://127.0.0.1[:port]/rest`` or ``http://[::1][:port]/rest``: (host literal, rest); else None."""
    for literal in LOOPBACK_LITERALS:
        prefix = "http://" + literal
        if uri.startswith(prefix):
            rest = uri[len(prefix) :]
            if rest.startswith(":"):
                digits = rest[1:].split("/", 1)[0]
                # ASCII digits only: str.isdigit() also accepts "²" (int() then fails) and "٥" (a non-port).
                if not (digits.isascii() and digits.isdigit()) or len(digits) > 5 or int(digits) > 65535:
                    return None
                rest = rest[1 + len(digits) :]
            if rest == "" or rest[0] in "/?":
                return literal, rest
            return None
    return None


def validate_redirect_uri(uri: str, public: bool) -> None:
    """Registration: absolute, no fragment, https unless a loopback literal or a private-use scheme (native apps)."""
    if any(c.isspace() for c in uri) or not uri.isprintable():
        raise InvalidRedirectUri(f"redirect URI {uri!r} contains white space or control characters")
    try:
        parts = urlsplit(uri)
    except ValueError:  # an unclosed or bad IP literal ("https://[::1"): RFC 3986 §3.2.2
        raise InvalidRedirectUri(f"redirect URI {uri!r} is not a valid URI") from None
    if not parts.scheme:
        raise InvalidRedirectUri(f"redirect URI {uri!r} is not absolute")
    if parts.fragment or "#" in uri:
        raise InvalidRedirectUri(f"redirect URI {uri!r} must not contain a fragment (RFC 6749 §3.1.2)")
    if parts.username is not None or parts.password is not None:
        raise InvalidRedirectUri(f"redirect URI {uri!r} must not contain user information")
    scheme = parts.scheme.lower()
    if scheme == "https":
        if not parts.hostname:
            raise InvalidRedirectUri(f"redirect URI {uri!r} has no host")
        return
    if scheme == "http":
        # RFC 9700 §2.6: plain http only for loopback redirects of native clients.
        if _split_loopback(uri) is None:
            raise InvalidRedirectUri(f"redirect URI {uri!r} must use https (http only for 127.0.0.1 or [::1])")
        if not public:
            raise InvalidRedirectUri("loopback http redirect URIs are for native (public) clients")
        return
    if scheme in ("javascript", "data", "file", "vbscript", "about", "blob"):
        raise InvalidRedirectUri(f"redirect URI scheme {scheme!r} is not allowed")
    # RFC 8252 §7.1: private-use URI schemes use reverse domain names, so they contain a dot.
    if "." not in scheme:
        raise InvalidRedirectUri(f"private-use scheme {scheme!r} must be a reverse domain name (RFC 8252 §7.1)")


def check_redirect_uri(registered: list[str], requested: str | None, public: bool) -> str | None:
    """The redirect URI to use, or None when the request must not be redirected (RFC 9700 §4.11.2)."""
    if requested is None:
        # OAuth 2.1 §2.3.2: it may be omitted only when exactly one URI is registered.
        return registered[0] if len(registered) == 1 else None
    if requested in registered:
        return requested
    if public:
        asked = _split_loopback(requested)
        if asked is not None:
            for uri in registered:
                mine = _split_loopback(uri)
                if mine is not None and mine == asked:
                    return requested
    return None
