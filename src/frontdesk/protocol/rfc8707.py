"""RFC 8707 resource indicators: absolute URIs without a fragment (§2), and when two of them name the same resource."""

from __future__ import annotations

import functools
from urllib.parse import urlsplit, urlunsplit

from ..errors import InvalidTarget

__all__ = ["check_resource", "comparable"]

_MALFORMED = "resource must be an absolute URI without a fragment"
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def check_resource(values: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        try:
            parts = urlsplit(value)
        except ValueError:  # an unclosed or bad IP literal ("http://[::1"): not a URI at all (RFC 3986 §3.2.2)
            raise InvalidTarget(_MALFORMED) from None
        if not parts.scheme or not parts.netloc or parts.fragment or "#" in value:
            raise InvalidTarget(_MALFORMED)
        if value not in out:
            out.append(value)
    return tuple(out)


@functools.lru_cache(maxsize=4096)  # pure; the token paths compare the same few URIs on every request
def comparable(uri: str) -> str:
    """``uri`` (one ``check_resource`` accepted) in the form two spellings of one resource share, so that
    ``HTTPS://MCP.Example.com:443`` finds the resource registered as ``https://mcp.example.com/``.

    RFC 3986 §6.2.2.1: scheme and host are case-insensitive; §6.2.3: for http and https an empty or default port
    and an empty path are the same as none, ``:443`` and ``/``. Nothing else is normalised: the path and query are
    the resource server's to interpret, and a looser match could hand a token to a resource nobody registered."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    userinfo, at, hostport = parts.netloc.rpartition("@")
    hostport = hostport.lower()
    default = _DEFAULT_PORTS.get(scheme)
    if default is not None and hostport.endswith(":" + default):
        hostport = hostport[: -len(default)]
    if hostport.endswith(":"):
        hostport = hostport[:-1]
    path = parts.path or ("/" if default is not None else "")
    return urlunsplit((scheme, userinfo + at + hostport, path, parts.query, ""))
