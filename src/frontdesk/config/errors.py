"""The one error of configuration: raised at start, before anything is served (DESIGN §8)."""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(Exception):
    """The configuration cannot be used; the message says which setting and why."""
