"""Ping mode (OpenID Connect CIBA Core 1.0 §10.2): once the person answered, POST ``{"auth_req_id": …}`` with
``Authorization: Bearer <client_notification_token>`` to the client's registered notification endpoint.

The endpoint is the client's to choose, so the POST is a server-side request forgery waiting to happen: it goes out
with the guards of a client ID metadata document fetch (``metadata_fetcher``: resolve, refuse special-use addresses
unless ``[registration] allow_private_metadata_hosts``, connect to the checked address, check the peer), https only,
no redirect followed (§10.2: the client answers 204, or 200), a timeout. Delivery runs on a thread of its own after
the decision commits, once; the outcome is audited as ``ciba.notified`` and a failure logged, never the token.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import ssl
import threading
from urllib.parse import urlsplit

import httpx

from ..core import Frontdesk
from ..crypto.aead import DecryptionFailed
from ..storage import audit
from ..storage.ciba import BackchannelRow
from ..storage.db import transaction
from .metadata_fetcher import FetchFailed, public_address, resolve_public

__all__ = ["deliver", "notify_soon"]

log = logging.getLogger("frontdesk.ciba")


class _Refused(Exception):
    """The notification could not be delivered; the message is ours (never the token)."""


def _peer_checked(response: httpx.Response, address: str, allow_private: bool) -> None:
    """CIMD §6.5 against DNS rebinding, as ``metadata_fetcher`` does: the socket reached the address checked."""
    stream = response.extensions.get("network_stream")
    peer = stream.get_extra_info("server_addr") if stream is not None else None
    try:
        reached = ipaddress.ip_address(str(peer[0])) if isinstance(peer, tuple) and peer else None
    except ValueError:
        reached = None
    if reached is None or reached != ipaddress.ip_address(address):
        raise _Refused("the endpoint was reached at another address than the one checked")
    if not allow_private and not public_address(reached):
        raise _Refused("the endpoint was reached at a special-use address (RFC 6890)")


def _trust() -> ssl.SSLContext:
    """The trust store ``SSL_CERT_FILE`` (or ``SSL_CERT_DIR``) names when set, else certifi's, as the fetcher's;
    environment proxies and netrc stay out (``trust_env=False`` on the client)."""
    return httpx.create_ssl_context(trust_env=True)


def _post(endpoint: str, body: bytes, token: str, allow_private: bool, timeout: float) -> int:
    parts = urlsplit(endpoint)
    host = parts.hostname
    if parts.scheme != "https" or not host:
        raise _Refused("the notification endpoint is not an https URL")
    port = parts.port or 443
    try:
        addresses = resolve_public(host, port, allow_private=allow_private)
    except FetchFailed as exc:
        raise _Refused(str(exc)) from None
    headers = {
        "Host": parts.netloc,
        "Content-Type": "application/json",
        "Authorization": f"Bearer {token}",
    }
    for address in addresses[:4]:
        target = parts._replace(netloc=f"[{address}]:{port}" if ":" in address else f"{address}:{port}").geturl()
        try:
            with (
                httpx.Client(verify=_trust(), timeout=timeout, follow_redirects=False, trust_env=False) as http,
                http.stream("POST", target, content=body, headers=headers, extensions={"sni_hostname": host}) as sent,
            ):
                _peer_checked(sent, address, allow_private)
                return sent.status_code
        except httpx.ConnectError:
            continue
        except httpx.HTTPError as exc:
            raise _Refused(type(exc).__name__) from None
    raise _Refused("the notification endpoint could not be reached")


def deliver(fd: Frontdesk, client_id: str, row: BackchannelRow) -> bool:
    """Notify the client of ``row``'s answer, now; True when it took it (HTTP 200 or 204). Audited."""
    client = fd.clients.get(client_id, cached=False)
    endpoint = client.backchannel_client_notification_endpoint if client is not None else None
    if (
        client is None
        or client.backchannel_token_delivery_mode != "ping"
        or not endpoint
        or not row.sealed_notification
    ):
        return False
    try:
        opened = json.loads(fd.master.open(row.sealed_notification, row.digest.encode()))
        auth_req_id, token = str(opened["auth_req_id"]), str(opened["token"])
    except (DecryptionFailed, ValueError, KeyError, TypeError):
        log.error("ciba notification could not be opened", extra={"client_id": client_id})
        return False
    body = json.dumps({"auth_req_id": auth_req_id}).encode()
    registration = fd.settings.registration
    try:
        status = _post(endpoint, body, token, registration.allow_private_metadata_hosts, registration.metadata_timeout)
        outcome = "success" if status in (200, 204) else "failure"
        why = f"HTTP {status}"
    except _Refused as exc:
        outcome, why = "failure", str(exc)
    if outcome != "success":
        log.warning("ciba notification failed", extra={"client_id": client_id, "outcome": why})
    with transaction(fd.engine) as conn:
        audit.record(conn, "ciba.notified", outcome, client_id=client_id, user_id=row.user_id, reason=why)
    return outcome == "success"


def notify_soon(fd: Frontdesk, client_id: str, row: BackchannelRow) -> None:
    """:func:`deliver` on a thread of its own, so that the person's page does not wait for the client's server."""

    def run() -> None:
        try:
            deliver(fd, client_id, row)
        except Exception:  # a delivery must never take anything down; the audit and log say what happened
            log.exception("ciba notification failed", extra={"client_id": client_id})

    threading.Thread(target=run, daemon=True, name="ciba-ping").start()
