"""``http://localhost[:port]/path`` redirect URIs for native (public) clients, as MCP clients register them.

RFC 8252 §8.3 makes ``localhost`` NOT RECOMMENDED for clients; frontdesk accepts it anyway (the reasoning is in
frontdesk.protocol.redirect_uri), with the loopback port rule of RFC 8252 §7.3 and nothing looser: the host is
``localhost`` exactly as written, never an IP literal in its place, never a name that merely ends or starts with it.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frontdesk.protocol.redirect_uri import InvalidRedirectUri, check_redirect_uri, validate_redirect_uri

LOCALHOST = ["http://localhost/callback"]
PATHS = ["/callback", "/", "", "/oauth/callback?client=mcp", "?x=1"]

ports = st.integers(min_value=0, max_value=65535)
paths = st.sampled_from(PATHS)
# Hosts that look like localhost and are not it: case, a trailing dot, sub- and superdomains, user information, the
# IP literals it resolves to, an empty or overflowing port.
LOOKALIKES = [
    "LOCALHOST",
    "Localhost",
    "localhost.",
    "foo.localhost",
    "localhost.evil.example",
    "localhost-evil.example",
    "evil.example@localhost",
    "localhost@evil.example",
    "user:pass@localhost",
    "127.0.0.1",
    "[::1]",
    "localhos",
    "xlocalhost",
    "localhost%2e",
    "localhost:",
    "localhost:65536",
    "localhost:+80",
    "localhost:٥",
]


@settings(database=None, max_examples=300)
@given(port=ports, path=paths)
def test_localhost_any_port_is_accepted_for_public_client(port, path):
    """RFC 8252 §7.3 applied to localhost: every port of a registered localhost URI is accepted, as requested."""
    requested = f"http://localhost:{port}{path}"
    assert check_redirect_uri([f"http://localhost{path}"], requested, public=True) == requested


@settings(database=None, max_examples=300)
@given(registered_port=ports, port=ports, path=paths)
def test_localhost_registered_with_a_port_accepts_any_other(registered_port, port, path):
    """A localhost URI registered with a port (as MCP clients register theirs) still accepts any port."""
    requested = f"http://localhost:{port}{path}"
    assert check_redirect_uri([f"http://localhost:{registered_port}{path}"], requested, public=True) == requested


@settings(database=None, max_examples=300)
@given(port=ports, path=paths, literal=st.sampled_from(["127.0.0.1", "[::1]"]))
def test_localhost_and_ip_literals_never_stand_in_for_each_other(port, path, literal):
    """localhost matches only localhost: not 127.0.0.1 or [::1], and they do not match it (BCP-02)."""
    both = [f"http://localhost{path}", f"http://{literal}{path}"]
    assert check_redirect_uri(both, f"http://localhost:{port}{path}", public=True) == f"http://localhost:{port}{path}"
    assert check_redirect_uri([f"http://localhost{path}"], f"http://{literal}:{port}{path}", public=True) is None
    assert check_redirect_uri([f"http://{literal}{path}"], f"http://localhost:{port}{path}", public=True) is None


@settings(database=None, max_examples=300)
@given(host=st.sampled_from(LOOKALIKES), port=st.one_of(st.none(), ports), path=paths)
def test_localhost_lookalikes_are_refused(host, port, path):
    """A host that is not ``localhost`` exactly as written never matches a registered localhost URI."""
    requested = f"http://{host}{'' if port is None else f':{port}'}{path}"
    assert check_redirect_uri([f"http://localhost{path}"], requested, public=True) is None
    assert check_redirect_uri([f"http://localhost{path}"], f"http://localhost:{port or 0}{path}", public=True)


@settings(database=None, max_examples=300)
@given(port=ports, path=paths, other=st.sampled_from(["/callback2", "/Callback", "/callback/", "/cb?x=2"]))
def test_localhost_path_and_query_must_match(port, path, other):
    """Only the port varies: the path and query of a localhost URI are compared exactly."""
    registered = f"http://localhost{path}"
    requested = f"http://localhost:{port}{other}"
    assert check_redirect_uri([registered], requested, public=True) is None
    assert check_redirect_uri([registered], f"http://localhost:{port}{path}", public=True)


@settings(database=None, max_examples=200)
@given(port=ports, path=paths)
def test_localhost_is_exact_for_confidential_client(port, path):
    """The port rule is for native (public) clients only: a confidential client gets exact matching alone."""
    registered = f"http://localhost{path}"
    assert check_redirect_uri([registered], f"http://localhost:{port}{path}", public=False) is None
    assert check_redirect_uri([registered], registered, public=False) == registered
    assert check_redirect_uri([registered], f"http://localhost:{port}{path}", public=True)


def test_localhost_https_port_is_fixed():
    """The port rule is for plain-http loopback listeners; an https localhost URI is an ordinary exact match."""
    assert check_redirect_uri(["https://localhost/cb"], "https://localhost:8443/cb", public=True) is None
    assert check_redirect_uri(["http://localhost/cb"], "http://localhost:8443/cb", public=True)


@pytest.mark.parametrize(
    "uri",
    [
        "http://localhost/callback",
        "http://localhost:3000/callback",
        "http://localhost:65535/",
        "http://localhost",
        "http://localhost?x=1",
    ],
)
def test_localhost_registration_is_accepted_for_public_client(uri):
    """A native (public) client may register an http localhost redirect URI, with or without a port."""
    validate_redirect_uri(uri, public=True)


def test_localhost_registration_is_refused_for_confidential_client():
    """Loopback http redirect URIs, localhost among them, stay for native (public) clients (RFC 9700 §2.6)."""
    with pytest.raises(InvalidRedirectUri) as info:
        validate_redirect_uri("http://localhost:3000/callback", public=False)
    assert info.value.error == "invalid_redirect_uri"
    validate_redirect_uri("http://localhost:3000/callback", public=True)


@pytest.mark.parametrize("host", [*LOOKALIKES[:9], "localhost:65536", "localhost:", "localhost:٥"])
def test_localhost_lookalike_registration_is_refused(host):
    """At registration a plain-http host must be localhost exactly: no case change, trailing dot, subdomain or
    user information."""
    with pytest.raises(InvalidRedirectUri) as info:
        validate_redirect_uri(f"http://{host}/callback", public=True)
    assert info.value.error == "invalid_redirect_uri"
    validate_redirect_uri("http://localhost/callback", public=True)


def test_localhost_port_may_be_followed_by_a_query():
    """The port ends where the path or the query starts: ``http://localhost:8080?x=1`` is a loopback URI too."""
    assert check_redirect_uri(["http://localhost?x=1"], "http://localhost:8080?x=1", public=True) == (
        "http://localhost:8080?x=1"
    )
    assert check_redirect_uri(["http://127.0.0.1?x=1"], "http://127.0.0.1:8080?x=1", public=True) == (
        "http://127.0.0.1:8080?x=1"
    )
    validate_redirect_uri("http://localhost:8080?x=1", public=True)
