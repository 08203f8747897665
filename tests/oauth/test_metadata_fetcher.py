"""The client ID metadata document fetcher's guards (``frontdesk.oauth.metadata_fetcher``; CIMD §4, §6.5, §6.6),
against a real https server on loopback (tests/metadata_host.py) and as pure functions of an address."""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frontdesk.oauth import metadata_fetcher
from frontdesk.oauth.metadata_fetcher import FetchFailed, FetchPolicy, fetch_document, max_age, public_address
from metadata_host import MetadataHost, Reply

DOC = {"client_id": "x", "client_name": "Agent", "redirect_uris": ["http://127.0.0.1/cb"]}


@pytest.fixture
def host(tmp_path: Path) -> Iterator[MetadataHost]:
    with MetadataHost(tmp_path) as running:
        yield running


def policy(host: MetadataHost, **changes: Any) -> FetchPolicy:
    """The relaxation on (the host is loopback) and the host's CA trusted, unless a test says otherwise."""
    return FetchPolicy(
        **{"max_bytes": 5 * 1024, "timeout": 2.0, "allow_private": True, "cafile": str(host.cafile), **changes}
    )


SPECIAL = [
    "127.0.0.1",
    "127.8.9.10",
    "10.0.0.5",
    "172.16.3.4",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "198.18.0.1",
    "192.0.2.1",
    "::",
    "::1",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "fe80::1%1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "2001:db8::1",
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", SPECIAL)
def test_special_use_addresses_are_refused(address):
    """Loopback, private, link-local, CGNAT, multicast, unspecified and reserved addresses, IPv4 and IPv6, and IPv4
    ones wrapped in IPv6, are never fetched from (CIMD §6.5, RFC 6890)."""
    assert not public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_fetched_from(address):
    assert public_address(ipaddress.ip_address(address))


@given(st.ip_addresses(v=4, network="10.0.0.0/8") | st.ip_addresses(v=4, network="127.0.0.0/8"))
def test_private_ipv4_is_refused_also_as_mapped_ipv6(address):
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    assert not public_address(address)
    assert not public_address(mapped)


@pytest.mark.parametrize("network", ["10.0.0.0/8", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10", "fc00::/7"])
@given(data=st.data())
def test_every_address_of_a_private_block_is_refused(network, data):
    block = ipaddress.ip_network(network)
    address = data.draw(st.ip_addresses(network=block))
    assert not public_address(address)


def test_loopback_host_is_refused_without_the_relaxation_and_never_contacted(host):
    """localhost resolves to loopback: refused before any connection, so the host sees no request."""
    host.serve_document("/c.json", DOC)
    with pytest.raises(FetchFailed, match="special-use"):
        fetch_document(host.url("/c.json"), policy(host, allow_private=False))
    assert host.hits("/c.json") == 0


def test_one_private_address_among_public_ones_refuses_the_host(host, monkeypatch):
    def getaddrinfo(name: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port)),
        ]

    monkeypatch.setattr(metadata_fetcher.socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(FetchFailed, match="special-use"):
        fetch_document("https://tools.example/c.json", policy(host, allow_private=False))


def test_an_address_that_slips_past_resolution_is_refused_once_connected(host):
    """DNS rebinding: should the address connected to differ from the one checked (here a resolver that hands out
    loopback without checking), the socket's peer address is checked again before the body is read."""
    host.serve_document("/c.json", DOC)
    rebinding = policy(host, allow_private=False, resolve=lambda name, port: ["127.0.0.1"])
    with pytest.raises(FetchFailed, match="reached at a special-use address"):
        fetch_document(host.url("/c.json"), rebinding)


def test_a_document_is_fetched_and_its_max_age_read(host):
    host.serve_document("/c.json", DOC, Cache_Control="public, max-age=600")
    fetched = fetch_document(host.url("/c.json"), policy(host))
    assert fetched.document == DOC
    assert fetched.max_age == 600


def test_redirects_are_not_followed(host):
    """CIMD §4: a 3xx is a failure, and its Location is never requested."""
    host.serve_document("/real.json", DOC)
    host.serve("/c.json", Reply(302, b"", {"Location": host.url("/real.json")}))
    with pytest.raises(FetchFailed, match="HTTP 302"):
        fetch_document(host.url("/c.json"), policy(host))
    assert host.hits("/real.json") == 0


@pytest.mark.parametrize("status", [201, 204, 304, 404, 500])
def test_only_200_succeeds(host, status):
    host.serve("/c.json", Reply(status, json.dumps(DOC).encode() if status not in (204, 304) else b""))
    with pytest.raises(FetchFailed, match=f"HTTP {status}"):
        fetch_document(host.url("/c.json"), policy(host))


def test_a_declared_oversize_body_is_refused_unread(host):
    host.serve("/c.json", Reply(body=b"{" + b" " * 10_000 + b"}"))
    with pytest.raises(FetchFailed, match="larger than 5120 bytes"):
        fetch_document(host.url("/c.json"), policy(host))


def test_an_undeclared_oversize_body_is_refused_mid_stream(host):
    """No Content-Length: the cap holds while the body streams in, a megabyte is never read whole."""
    host.serve("/c.json", Reply(body=b'{"a": "' + b"x" * 1_000_000 + b'"}', chunks=200, length=False))
    with pytest.raises(FetchFailed, match="larger than 5120 bytes"):
        fetch_document(host.url("/c.json"), policy(host))


def test_a_slow_drip_is_cut_off_at_the_timeout(host):
    host.serve("/c.json", Reply(body=json.dumps(DOC).encode(), chunks=40, pause=0.1, length=False))
    started = time.monotonic()
    with pytest.raises(FetchFailed, match="longer than 1 seconds"):
        fetch_document(host.url("/c.json"), policy(host, timeout=1.0))
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize("content_type", ["text/html", "text/plain", "application/jsonp", "application/xml", None])
def test_only_a_json_media_type_is_accepted(host, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    host.serve("/c.json", Reply(body=json.dumps(DOC).encode(), headers=headers))
    with pytest.raises(FetchFailed, match="not served as application/json"):
        fetch_document(host.url("/c.json"), policy(host))


def test_a_more_specific_json_media_type_is_accepted(host):
    """CIMD §4: application/json or a more specific application/…+json."""
    host.serve("/c.json", Reply(body=json.dumps(DOC).encode(), headers={"Content-Type": "application/cimd+json"}))
    assert fetch_document(host.url("/c.json"), policy(host)).document == DOC


@pytest.mark.parametrize(("body", "reason"), [(b"[1, 2]", "not a JSON object"), (b"{nope", "not valid JSON")])
def test_the_body_must_be_a_json_object(host, body, reason):
    host.serve("/c.json", Reply(body=body))
    with pytest.raises(FetchFailed, match=reason):
        fetch_document(host.url("/c.json"), policy(host))


def test_plain_http_is_never_fetched(host):
    with pytest.raises(FetchFailed, match="only https"):
        fetch_document(f"http://localhost:{host.port}/c.json", policy(host))
    assert host.hits("/c.json") == 0


def test_an_untrusted_certificate_is_refused(host, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    host.serve_document("/c.json", DOC)
    with pytest.raises(FetchFailed, match="could not be reached"):
        fetch_document(host.url("/c.json"), policy(host, cafile=None))


def test_the_trust_store_follows_ssl_cert_file(host, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(host.cafile))
    host.serve_document("/c.json", DOC)
    assert fetch_document(host.url("/c.json"), policy(host, cafile=None)).document == DOC


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("max-age=300", 300),
        ("public, max-age=86400", 86400),
        ('max-age="60"', 60),
        ("no-store", None),
        ("max-age=600, no-cache", None),
        ("max-age=soon", None),
        ("s-maxage=60", None),
    ],
)
def test_max_age_is_read_from_cache_control(header, seconds):
    """RFC 9111 §5.2.2: max-age in seconds; no-store and no-cache count as none."""
    assert max_age(header) == seconds
