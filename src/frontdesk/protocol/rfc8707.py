"""RFC 8707 resource indicators: absolute URIs without a fragment (§2)."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..errors import InvalidTarget

__all__ = ["check_resource"]

_MALFORMED = "resource must be an absolute URI without a fragment"


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
