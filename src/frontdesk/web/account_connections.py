"""The account page's "Connected accounts": the person's vault connections, and Disconnect (issue 14 item 2).

What is shown and what Disconnect does are the vault's (vault/accounts.py): the connections that are this person's,
each with its provider, what it reaches in plain words, its status, and when and by which app or agent it was last
used; Disconnect revokes at the provider where it can and forgets the connection, audited as the person's act. The
form carries the session's CSRF token like every account form (web/account.py ``posted``).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..core import Frontdesk
from ..oauth.account import Visitor, app_name
from ..vault.accounts import ConnectedAccount
from ..vault.callers import Caller
from ..vault.service import vault_of
from .account import back_to, posted, render, signed_in_visitor

__all__ = ["connections", "disconnect", "used_by_words"]

HERE = "/account/connections"
_STATUS_WORDS = {
    "active": "Working",
    "needs_reauth": "Stopped working: the app will ask you to connect it again",
    "revoked": "Disconnected at the provider",
}
_NOTICES = {
    "revoked": "Disconnected. The provider confirmed that the access is revoked there too.",
    "forgotten": "Disconnected. The provider did not confirm the revocation; you can also remove the access there.",
}


def used_by_words(fd: Frontdesk, caller: Caller | None) -> str | None:
    """By whom a connection was last used, in a sentence's words: "Trip Planner, acting for Chat Assistant"; the
    platform's backend by its API key's name. Apps are named as on the connected apps page (``app_name``)."""
    if caller is None:
        return None
    if caller.api_key is not None:
        return f"the platform ({caller.api_key_name})" if caller.api_key_name else "the platform"
    if caller.client_id is None:
        return None
    # RFC 8693 §4.1: the outermost act is the current actor, usually the client itself; the nested ones acted first.
    others = [a for a in dict.fromkeys(caller.actors) if a != caller.client_id]
    words = app_name(fd, caller.client_id)
    return f"{words}, acting for {', '.join(app_name(fd, a) for a in others)}" if others else words


def _shown(fd: Frontdesk, account: ConnectedAccount) -> dict[str, Any]:
    return {
        "id": account.id,
        "provider": account.provider,
        "reaches": account.reaches,
        "status": account.status,
        "status_words": _STATUS_WORDS.get(account.status, account.status),
        "created_at": account.created_at,
        "last_used_at": account.last_used_at,
        "used_by": used_by_words(fd, account.last_used_by),
    }


def _connections(fd: Frontdesk, visitor: Visitor, done: str | None) -> Response:
    found = vault_of(fd).accounts.of(visitor.person.id)
    shown = [_shown(fd, account) for account in found]
    return render(fd, visitor, "account_connections.html", HERE, accounts=shown, notice=_NOTICES.get(done or ""))


async def connections(request: Request) -> Response:
    visitor = await signed_in_visitor(request)
    if isinstance(visitor, Response):
        return visitor
    done = request.query_params.get("disconnected")
    return await run_in_threadpool(_connections, request.app.state.fd, visitor, done)


def _disconnect(fd: Frontdesk, visitor: Visitor, connection_id: str, ip: str | None) -> Response:
    outcome = vault_of(fd).accounts.disconnect(visitor.person.id, connection_id, ip)
    if outcome is None:
        # Not theirs, or gone already (a second click): the page as it is now, naming nothing.
        return back_to(HERE)
    _, revoked = outcome
    return back_to(HERE, disconnected="revoked" if revoked else "forgotten")


async def disconnect(request: Request) -> Response:
    """Disconnect one of the person's connections: revoked at the provider, forgotten here, audited."""
    return await posted(request, lambda fd, visitor, form, ip: _disconnect(fd, visitor, form.get("connection", ""), ip))
