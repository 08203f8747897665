"""The operator's token exchange policy (RFC 8693 §5; issue 14 item 1): the resources each client may exchange a
person's token for (``frontdesk client create|update --may-exchange-for URI``), read by ``token_exchange.targets``.

Only the operator sets it: ``/register`` and RFC 7592 updates never read or replace it (a client naming the
resources it may reach on people's behalf would be its own policy).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..core import Frontdesk
from ..errors import InvalidTarget
from ..protocol.rfc8707 import check_resource
from ..storage import audit
from ..storage.clients import ClientRecord, replace_may_exchange_for
from ..storage.db import transaction
from .client_metadata import ClientError
from .resources import resolve

__all__ = ["exchange_targets", "registered_targets", "update_may_exchange_for"]

FIELD = "may_exchange_for"


def exchange_targets(uris: Sequence[str] | None) -> tuple[str, ...]:
    """``may_exchange_for`` as registration judges it (RFC 8707 §2): absolute URIs without a fragment, each once."""
    try:
        return check_resource(list(uris or ()))
    except InvalidTarget as exc:
        raise ClientError(f"{FIELD}: {exc.description}") from None


def registered_targets(fd: Frontdesk, uris: Sequence[str]) -> tuple[str, ...]:
    """``uris`` as the registered resources they name (``resources.resolve``: the URI the resource was registered
    under, each once), so that a typo is refused now rather than at every exchange."""
    try:
        return tuple(r.uri for r in resolve(fd, fd.engine, exchange_targets(uris)))
    except InvalidTarget as exc:
        raise ClientError(f"{FIELD}: {exc.detail or exc.description} is not a registered resource") from None


def update_may_exchange_for(fd: Frontdesk, client_id: str, uris: Sequence[str]) -> ClientRecord | None:
    """Replace the resources ``client_id`` may exchange tokens for (registered ones, :func:`registered_targets`);
    None for an unknown client. One transaction, audited as ``client.updated``."""
    targets = registered_targets(fd, uris)
    with transaction(fd.engine) as conn:
        if not replace_may_exchange_for(conn, client_id, targets):
            return None
        audit.record(conn, "client.updated", "success", client_id=client_id, may_exchange_for=list(targets))
    fd.clients.forget(client_id)
    return fd.clients.get(client_id, cached=False)
