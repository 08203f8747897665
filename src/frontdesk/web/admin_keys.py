"""The admin console's Signing keys page: the keys that sign tokens, never their private parts, and their rotation.

Each algorithm has an active key that signs, a next key already published in the JWKS (so that relying parties
holding a cached key set know it before it signs anything), and retired keys still published until the tokens they
signed have expired. Rotating promotes each next key, retires the active one and publishes a fresh next key
(``admin.catalog.rotate_keys``, as ``frontdesk keys rotate`` and ``POST /admin/api/keys/rotate`` do). The page says
how old the newest keys are (those made by the last rotation) against ``[alerts] key_rotation_days``, the age at
which the ``signing_keys.rotation_overdue`` alert is raised, which links here."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..admin import catalog
from ..admin.errors import AdminError
from ..admin.principals import allowed
from ..core import Frontdesk
from ..protocol.forms import Params
from .admin_gate import Admin, back_to, posted, refused, render_found, shown

__all__ = ["KEYS", "key_list", "rotate"]

KEYS = "/admin/keys"
DAY = 24 * 3600
STATE_WORDS = {
    "active": "Active: signs tokens now",
    "next": "Next: published, signs after the next rotation",
    "retired": "Retired: published for the tokens it signed",
}
DONE = {"rotated": "The keys are rotated: the next keys sign from now on, and fresh next keys are published."}


def _found(fd: Frontdesk, admin: Admin) -> dict[str, Any]:
    keys = catalog.list_keys(fd, admin.principal)
    newest = max((k.created_at for k in keys if k.state in ("active", "next")), default=None)
    # Retired keys last: the ones that sign and will sign come first, then the ones kept for tokens still out.
    order = {"active": 0, "next": 1, "retired": 2}
    return {
        "keys": sorted(keys, key=lambda k: (order.get(k.state, 3), k.alg, -k.created_at)),
        "age_days": (admin.visitor.at - newest) // DAY if newest is not None else None,
        "may_rotate": allowed(admin.principal, "keys.rotate"),
    }


def _keys(fd: Frontdesk, admin: Admin, notice: str | None, status: int = 200, message: str | None = None) -> Response:
    return render_found(
        fd,
        admin,
        "admin/keys.html",
        KEYS,
        lambda: _found(fd, admin),
        {"keys": (), "age_days": None, "may_rotate": False},
        status,
        state_words=STATE_WORDS,
        notice=notice,
        message=message,
        rotation_days=fd.settings.alerts.key_rotation_days,
    )


async def key_list(request: Request) -> Response:
    notice = DONE.get(request.query_params.get("done", ""))
    return await shown(request, lambda fd, admin: _keys(fd, admin, notice))


def _rotate(fd: Frontdesk, admin: Admin, _form: Params, _ip: str | None) -> Response:
    if not allowed(admin.principal, "keys.rotate"):
        return refused("Not allowed", "Your role lets you look, not rotate the signing keys.")
    try:
        catalog.rotate_keys(fd, admin.principal)
    except AdminError as exc:
        return _keys(fd, admin, None, exc.status, exc.description)
    return back_to(KEYS, done="rotated")


async def rotate(request: Request) -> Response:
    """POST /admin/keys/rotate: rotate every algorithm's keys at once."""
    return await posted(request, _rotate)
