"""Fixtures of the admin tests: an admin API client holding a token of each role (tests/admin/admin_api.py), and the
suite's person holding a console role (tests/admin/console.py)."""

from __future__ import annotations

from .admin_api import auditor, operator, owner
from .console import console_auditor, console_operator

__all__ = ["auditor", "console_auditor", "console_operator", "operator", "owner"]
