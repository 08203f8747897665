"""How an app is named to a person: by the name the operator registered it under, or, for a client nobody checked,
by what can be verified about it.

A client that registered itself (RFC 7591) chose its own ``client_name``: anyone can register "Calendar Helper", so
that name is shown only as what the app calls itself, next to the words that it registered itself (RFC 7591 §5).
A client named by its metadata document is known by the host serving that document, which the person can check
(draft-ietf-oauth-client-id-metadata-document §6.4: show the ``client_id``'s host). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address
from urllib.parse import urlsplit

from ..storage.clients import ClientRecord, RegisteredBy

__all__ = ["AppIdentity", "identity_of", "is_loopback"]


@dataclass(frozen=True, slots=True)
class AppIdentity:
    """Who an app is, as far as this server knows. ``registered_by`` is None when the client is gone."""

    client_id: str
    name: str  # the operator's name for it; for any other client only what it calls itself
    registered_by: RegisteredBy | None
    document_host: str | None = None  # a metadata-document client: the host its client_id URL names
    # Every redirect URI of a client nobody vetted is on this device (loopback): CIMD §6.7, any program on the device
    # can listen there and so claim to be this client, whatever its document's host; the page warns.
    device_only: bool = False

    @property
    def vetted(self) -> bool:
        return self.registered_by == "operator"

    @property
    def label(self) -> str:
        """The app in a sentence ("You allowed … to use your account"): never the chosen name alone for a client
        nobody checked."""
        if self.document_host is not None:
            return f"the app at {self.document_host}"
        if self.registered_by == "self":
            return f"“{self.name}” (registered itself)"
        return self.name


def _document_host(client_id: str) -> str | None:
    """The host (and port, when not the default) of a metadata document's URL; never its userinfo."""
    try:
        parts = urlsplit(client_id)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}" if port is not None and port != 443 else shown


def identity_of(client: ClientRecord | None, client_id: str) -> AppIdentity:
    """The identity to show for ``client`` (None: the client no longer exists; it is named by its id)."""
    if client is None:
        return AppIdentity(client_id, client_id, None)
    host = _document_host(client.client_id) if client.registered_by == "document" else None
    if client.registered_by == "document" and host is None:
        host = client.client_id  # not a URL after all: show what identifies it rather than its chosen name
    device_only = client.registered_by != "operator" and _on_this_device(client.redirect_uris)
    return AppIdentity(client.client_id, client.name, client.registered_by, host, device_only)


def _on_this_device(redirect_uris: tuple[str, ...]) -> bool:
    """Whether there are redirect URIs and every one is on loopback (``localhost`` or a loopback address)."""
    hosts: list[str] = []
    for uri in redirect_uris:
        try:
            hosts.append(urlsplit(uri).netloc)
        except ValueError:
            return False
    return bool(hosts) and all(is_loopback(host) for host in hosts)


def is_loopback(host: str) -> bool:
    """Whether a redirect host (``host[:port]`` as ``AuthorizationRequest.redirect_host`` gives it) is this very
    device: the page then says so, since any program on the device can listen there (RFC 8252 §8.3)."""
    try:
        name = urlsplit(f"//{host}").hostname or ""
    except ValueError:
        return False
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ip_address(name).is_loopback
    except ValueError:
        return False
