"""Cursor pagination for the admin lists: a page of items and the opaque cursor of the next one (None at the end).
A cursor is the sort key of the last item shown, base64url-encoded so that callers treat it as a token."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from .errors import Invalid

__all__ = ["MAX_LIMIT", "Page", "check_limit", "decode_cursor", "encode_cursor", "page_of"]

T = TypeVar("T")
MAX_LIMIT = 200


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    next_cursor: str | None


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError):
        raise Invalid("cursor is not one this server handed out") from None


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def page_of(rows: Sequence[T], limit: int, key: Callable[[T], str]) -> Page[T]:
    """A page from ``limit + 1`` rows read: the extra row only says there is a next page, whose cursor is the sort
    ``key`` of the last item kept."""
    if len(rows) > limit:
        return Page(tuple(rows[:limit]), encode_cursor(key(rows[limit - 1])))
    return Page(tuple(rows), None)
