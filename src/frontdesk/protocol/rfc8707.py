"""RFC 8707 resource indicators: absolute URIs without a fragment (§2)."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..errors import InvalidTarget

__all__ = ["check_resource"]


def check_resource(values: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        parts = urlsplit(value)
        if not parts.scheme or not parts.netloc or parts.fragment or "#" in value:
            raise InvalidTarget("resource must be an absolute URI without a fragment")
        if value not in out:
            out.append(value)
    return tuple(out)
