"""Fixtures of the admin tests: an admin API client holding a token of each role (tests/admin/admin_api.py)."""

from __future__ import annotations

from .admin_api import auditor, operator, owner

__all__ = ["auditor", "operator", "owner"]
