"""A client's CIBA metadata (OpenID Connect CIBA Core 1.0 §4 "Registration and Discovery Metadata"): how it gets its
tokens (``backchannel_token_delivery_mode``) and, in ping mode, where it is told (``…_client_notification_endpoint``).

Judged here for ``oauth.registration.validate`` (which calls :func:`check_delivery` with the rest of a client's
metadata) and for the operator's ``frontdesk client update`` (:func:`update_delivery`)."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from ..core import Frontdesk
from ..protocol.ciba import CIBA_GRANT, DELIVERY_MODES
from ..storage import audit
from ..storage.ciba import set_delivery
from ..storage.clients import ClientRecord
from ..storage.db import transaction
from .client_metadata import ClientError

__all__ = ["MAX_NOTIFICATION_ENDPOINT", "check_delivery", "update_delivery"]

MAX_NOTIFICATION_ENDPOINT = 2048


def _check_endpoint(endpoint: str) -> str:
    """§4: "This URL MUST use the https scheme"; an absolute URL without fragment or user information."""
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:
        port, parts = -1, None
    if (
        parts is None
        or port == -1
        or parts.scheme != "https"
        or not parts.hostname
        or len(endpoint) > MAX_NOTIFICATION_ENDPOINT
        or not endpoint.isprintable()
        or " " in endpoint
    ):
        raise ClientError("backchannel_client_notification_endpoint must be an https URL")
    if "#" in endpoint or parts.username is not None:
        raise ClientError("backchannel_client_notification_endpoint must not carry a fragment or user information")
    return endpoint


def check_delivery(
    grant_types: Sequence[str], public: bool, mode: str | None, endpoint: str | None
) -> tuple[str | None, str | None]:
    """(mode, endpoint) as they may be registered, or :class:`ClientError` naming the field. §4: a client with the
    CIBA grant MUST register its delivery mode; ping mode needs the notification endpoint, poll mode has none."""
    if CIBA_GRANT not in grant_types:
        if mode is not None or endpoint is not None:
            raise ClientError(f"backchannel_token_delivery_mode is only for clients with the {CIBA_GRANT} grant")
        return None, None
    if public:  # §7.1: the backchannel endpoint serves confidential clients only
        raise ClientError(f"a public client cannot use {CIBA_GRANT}")
    if mode is None:
        raise ClientError(f"the {CIBA_GRANT} grant needs backchannel_token_delivery_mode (poll or ping)")
    if mode not in DELIVERY_MODES:
        raise ClientError(f"backchannel_token_delivery_mode must be one of {', '.join(DELIVERY_MODES)}")
    if mode == "poll":
        if endpoint is not None:
            raise ClientError("backchannel_client_notification_endpoint is only for ping mode")
        return mode, None
    if endpoint is None:
        raise ClientError("ping mode needs backchannel_client_notification_endpoint")
    return mode, _check_endpoint(endpoint)


def update_delivery(fd: Frontdesk, client_id: str, mode: str | None, endpoint: str | None) -> ClientRecord | None:
    """Replace a client's delivery mode and notification endpoint, judged as at registration; None for an unknown
    client. Requests already made keep the mode they were made under only as far as it is still registered: a
    ping request whose client moved to poll is not notified (§10.2 names the registered endpoint)."""
    current = fd.clients.get(client_id, cached=False)
    if current is None:
        return None
    mode, endpoint = check_delivery(current.grant_types, current.public, mode, endpoint)
    with transaction(fd.engine) as conn:
        if not set_delivery(conn, client_id, mode, endpoint):
            return None
        audit.record(conn, "client.updated", "success", client_id=client_id, backchannel_token_delivery_mode=mode)
    fd.clients.forget(client_id)
    return fd.clients.get(client_id, cached=False)
