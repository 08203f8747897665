"""Fetching a client ID metadata document without letting a client aim this server elsewhere
(draft-ietf-oauth-client-id-metadata-document §4, §6.5, §6.6).

A ``client_id`` URL is chosen by whoever sends an authorization request, so the fetch is a request forgery waiting
to happen (§6.5): the host is resolved here, every address it resolves to must be a public one (RFC 6890 special-use
blocks are refused, IPv4-mapped IPv6 by the address it maps), and the connection goes to an address that was checked,
with the TLS name still the URL's host. After connecting, the peer address the socket really reached is checked
again before a byte of the body is read, so a resolver answering differently between check and connect (DNS
rebinding) gets nowhere. Then: https only, no redirects (§4: only 200 succeeds), a JSON media type, a body capped
while it streams (§6.6) and a deadline for the whole fetch. The trust store follows ``SSL_CERT_FILE`` when set.

The body is never logged: failures carry our own words only.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..wire import loads

__all__ = ["FetchFailed", "FetchPolicy", "Fetched", "fetch_document", "max_age", "public_address", "resolve_public"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# RFC 6890 (and its updates) special-use blocks: none is a place a client's public metadata document can live, and
# most are where an attacker would aim a server-side request (loopback admin ports, cloud metadata at
# 169.254.169.254, RFC 1918 networks, CGNAT's RFC 6598 shared space).
SPECIAL_USE = tuple(
    ipaddress.ip_network(block)
    for block in (
        "0.0.0.0/8",  # "this network", and 0.0.0.0 itself (unspecified), which Linux connects to loopback
        "10.0.0.0/8",  # RFC 1918
        "100.64.0.0/10",  # RFC 6598 shared address space (CGNAT)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, cloud instance metadata
        "172.16.0.0/12",  # RFC 1918
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # TEST-NET-1
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated, RFC 7526)
        "192.168.0.0/16",  # RFC 1918
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # TEST-NET-2
        "203.0.113.0/24",  # TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and 255.255.255.255 broadcast
        "::/128",  # unspecified
        "::1/128",  # loopback
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215)
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments (Teredo, ORCHID, …)
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4: wraps an IPv4 address a relay would reach for us
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix: judged by the IPv4 address it embeds
_JSON_TYPES = ("application/json",)


class FetchFailed(Exception):
    """The document could not be fetched, or was not a JSON object; the message is ours, never the body."""


@dataclass(frozen=True, slots=True)
class Fetched:
    """A fetched document and the ``max-age`` its response allowed (None: no-store, no-cache or none given)."""

    document: dict[str, Any]
    max_age: int | None


Resolver = Callable[[str, int], list[str]]


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """How a document may be fetched: ``[registration]`` settings, and seams for tests.

    ``resolve`` maps (host, port) to the addresses to connect to, already vetted (:func:`resolve_public`);
    ``cafile`` replaces the trust store that ``SSL_CERT_FILE`` (or certifi) gives."""

    max_bytes: int
    timeout: float
    allow_private: bool = False
    cafile: str | None = None
    resolve: Resolver | None = None


def public_address(address: IPAddress) -> bool:
    """Whether ``address`` is outside every special-use block (RFC 6890), judging a mapped IPv4 address
    (``::ffff:a.b.c.d``, RFC 4291 §2.5.5.2) or a NAT64 one (RFC 6052) by the IPv4 address it carries."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return public_address(address.ipv4_mapped)
        if address in _NAT64:
            return public_address(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.scope_id:  # fe80::1%eth0: scoped addresses are link-local by nature
            return False
    return not any(address in block for block in SPECIAL_USE if block.version == address.version)


def _parse(address: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


def resolve_public(host: str, port: int, *, allow_private: bool) -> list[str]:
    """The addresses ``host`` resolves to, all of them public unless ``allow_private`` (a logged relaxation for
    development): one special-use address among them refuses the host, since which one a connection would
    take is not ours to choose."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise FetchFailed(f"{host} does not resolve") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        parsed = _parse(address)
        if parsed is None or (not allow_private and not public_address(parsed)):
            raise FetchFailed(f"{host} resolves to a special-use address (RFC 6890), which is never fetched")
    if not addresses:
        raise FetchFailed(f"{host} does not resolve")
    return addresses


_trust: dict[tuple[str | None, str | None], ssl.SSLContext] = {}


def _trust_store(cafile: str | None) -> ssl.SSLContext:
    """The TLS trust store: ``cafile`` when given, else ``SSL_CERT_FILE`` (or ``SSL_CERT_DIR``) when set, else
    certifi's, as httpx chooses. Built once per choice: loading a bundle costs tens of milliseconds."""
    key = (cafile, os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR"))
    context = _trust.get(key)
    if context is None:
        context = ssl.create_default_context(cafile=cafile) if cafile else httpx.create_ssl_context(trust_env=True)
        _trust[key] = context
    return context


def max_age(cache_control: str | None) -> int | None:
    """RFC 9111 §5.2.2: the response's ``max-age`` in seconds; None for ``no-store``/``no-cache``, none given, or
    one that is not a number."""
    if not cache_control:
        return None
    found: int | None = None
    for directive in cache_control.lower().split(","):
        name, _, value = directive.strip().partition("=")
        if name in ("no-store", "no-cache"):
            return None
        value = value.strip().strip('"')
        if name == "max-age" and value.isascii() and value.isdigit():
            found = int(value[:10])
    return found


def _json_type(content_type: str | None) -> bool:
    """CIMD §4: ``application/json`` or a more specific ``application/…+json`` (RFC 6839 §3.1)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media in _JSON_TYPES or (media.startswith("application/") and media.endswith("+json"))


def _target(url: str, address: str, port: int) -> str:
    """``url`` with its host replaced by the checked ``address``: the connection goes there and nowhere else."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    return parts._replace(netloc=f"{host}:{port}").geturl()


def _read(response: httpx.Response, policy: FetchPolicy, deadline: float, host: str) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > policy.max_bytes:
        raise FetchFailed(f"the document at {host} is larger than {policy.max_bytes} bytes")
    body = bytearray()
    for chunk in response.iter_bytes():  # decoded: the cap holds for a compressed body too
        body += chunk
        if len(body) > policy.max_bytes:
            raise FetchFailed(f"the document at {host} is larger than {policy.max_bytes} bytes")
        if time.monotonic() > deadline:
            raise FetchFailed(f"the document at {host} took longer than {policy.timeout:g} seconds")
    return bytes(body)


def _check_peer(response: httpx.Response, address: str, policy: FetchPolicy, host: str) -> None:
    """§6.5 against DNS rebinding: the socket's peer is the address that was checked, and a public one."""
    stream = response.extensions.get("network_stream")
    peer = stream.get_extra_info("server_addr") if stream is not None else None
    reached = _parse(str(peer[0])) if isinstance(peer, tuple) and peer else None
    if reached is None:
        raise FetchFailed(f"the address {host} was reached at is unknown")
    if not policy.allow_private and not public_address(reached):
        raise FetchFailed(f"{host} was reached at a special-use address (RFC 6890), which is never fetched")
    if reached != _parse(address):
        raise FetchFailed(f"{host} was reached at another address than the one checked")


def _fetch_from(url: str, address: str, port: int, policy: FetchPolicy, deadline: float) -> Fetched:
    host = urlsplit(url).hostname or ""
    netloc = urlsplit(url).netloc
    timeout = max(0.1, min(policy.timeout, deadline - time.monotonic()))
    # No redirects (§4), no proxy or netrc from the environment (the fetch goes to the address checked, with
    # nothing of ours attached), and the TLS name is the URL's host although the connection names an address.
    with (
        httpx.Client(
            verify=_trust_store(policy.cafile), timeout=timeout, follow_redirects=False, trust_env=False
        ) as http,
        http.stream(
            "GET",
            _target(url, address, port),
            headers={"Host": netloc, "Accept": "application/json", "Accept-Encoding": "identity"},
            extensions={"sni_hostname": host},
        ) as response,
    ):
        _check_peer(response, address, policy, host)
        if response.status_code != 200:
            # CIMD §4: every other status is an error, and a 3xx is not followed.
            raise FetchFailed(f"the document at {host} answered HTTP {response.status_code}, not 200")
        if not _json_type(response.headers.get("content-type")):
            raise FetchFailed(f"the document at {host} is not served as application/json")
        body = _read(response, policy, deadline, host)
        cache_control = response.headers.get("cache-control")
    try:
        document = loads(body)
    except ValueError:
        raise FetchFailed(f"the document at {host} is not valid JSON") from None
    if not isinstance(document, dict):
        raise FetchFailed(f"the document at {host} is not a JSON object")
    return Fetched(document, max_age(cache_control))


def fetch_document(url: str, policy: FetchPolicy) -> Fetched:
    """The JSON object at ``url`` (an https URL the caller checked, CIMD §3), fetched under ``policy``, or
    :class:`FetchFailed` saying why not. Blocking: at most about ``policy.timeout`` seconds."""
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme != "https" or not host:
        raise FetchFailed("only https URLs are fetched")
    try:
        port = parts.port or 443
    except ValueError:
        raise FetchFailed("the URL has an invalid port") from None
    deadline = time.monotonic() + policy.timeout
    if policy.resolve is not None:
        addresses = policy.resolve(host, port)
    else:
        addresses = resolve_public(host, port, allow_private=policy.allow_private)
    for address in addresses[:4]:
        if time.monotonic() > deadline:
            break
        try:
            return _fetch_from(url, address, port, policy, deadline)
        except httpx.ConnectError:
            continue  # that address is down or its certificate is wrong: try the host's next one
        except httpx.TimeoutException:
            raise FetchFailed(f"the document at {host} took longer than {policy.timeout:g} seconds") from None
        except (httpx.HTTPError, httpx.InvalidURL, ValueError):
            raise FetchFailed(f"the document at {host} could not be read") from None
    raise FetchFailed(f"{host} could not be reached over https")
