"""Redirect URIs: registration rules and the exact-match check.

RFC 9700 §4.1.3 and OAuth 2.1 §2.3.1: compare by simple string equality, no patterns. The one exception is the
port of a loopback redirect URI registered by a native (public) client, RFC 8252 §7.3: the app opens a listener on
an ephemeral port at the time of the request, so the port it sends may differ from the one it registered.

Loopback here means the IP literals ``127.0.0.1`` and ``[::1]`` and, deliberately, the name ``localhost``. RFC 8252
§8.3 (and OAuth 2.1 §8.4.2) call ``localhost`` NOT RECOMMENDED *for clients*: a listener bound by name may end up on
another interface, and a misconfigured resolver may send the name elsewhere. Both risks sit on the client's device
and are the client's to take; the MCP authorization profile (§Communication Security: "localhost or https"), and so
many MCP clients and their SDKs, register ``http://localhost:{port}/{path}``, and refusing it would refuse them. What
this server keeps is the exactness: ``localhost`` matches only ``localhost`` (never ``127.0.0.1`` or ``[::1]``: the
client may listen on one address family only), spelled as registered (the comparison is case-sensitive, like the
rest of it), and the name exactly (``localhost.``, ``foo.localhost`` and any userinfo are other URIs, and so are
refused). RFC 6761 §6.3 lets resolvers answer ``localhost`` with loopback without asking DNS, and current browsers
do, which is what makes the name usable at all. The consent page names the redirect host, so the person sees it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ..errors import InvalidRequest

__all__ = ["LOOPBACK_HOSTS", "InvalidRedirectUri", "check_redirect_uri", "validate_redirect_uri"]

# RFC 8252 §7.3 (the IP literals) and §8.3 (localhost, accepted: see the module docstring). Case-sensitive.
LOOPBACK_HOSTS = ("127.0.0.1", "[::1]", "localhost")


class InvalidRedirectUri(InvalidRequest):
    """RFC 7591 §3.2.2 wire code."""

    error = "invalid_redirect_uri"


def _split_loopback(uri: str) -> tuple[str, str] | None:
    """For ``http://{loopback host}[:port][/path][?query]``: (host, everything after the port); else None.

    Read by prefix, not by a URL parser, so that the host is exactly one of ``LOOPBACK_HOSTS`` as written: the next
    character after it must end the authority (``:``, ``/``, ``?`` or nothing), which rules out ``127.0.0.1.evil``,
    ``localhost.``, ``localhost@evil`` and the like."""
    for host in LOOPBACK_HOSTS:
        prefix = "http://" + host
        if not uri.startswith(prefix):
            continue
        rest = uri[len(prefix) :]
        if rest.startswith(":"):
            end = next((i for i, c in enumerate(rest) if c in "/?"), len(rest))
            digits = rest[1:end]
            # ASCII digits only: str.isdigit() also accepts "²" (int() then fails) and "٥" (a non-port).
            if not (digits.isascii() and digits.isdigit()) or len(digits) > 5 or int(digits) > 65535:
                return None
            rest = rest[end:]
        if rest == "" or rest[0] in "/?":
            return host, rest
        return None
    return None


def validate_redirect_uri(uri: str, public: bool) -> None:
    """Registration: absolute, no fragment, https unless a loopback URI or a private-use scheme (native apps)."""
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
            raise InvalidRedirectUri(
                f"redirect URI {uri!r} must use https (http only for 127.0.0.1, [::1] or localhost)"
            )
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
        # RFC 8252 §7.3: the port alone may differ; the host must be the registered one as written.
        asked = _split_loopback(requested)
        if asked is not None:
            for uri in registered:
                mine = _split_loopback(uri)
                if mine is not None and mine == asked:
                    return requested
    return None
