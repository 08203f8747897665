"""Unit tests of frontdesk.protocol.redirect_uri: exact matching (RFC 9700 §4.1.3), the loopback port exception for
native clients (RFC 8252 §7.3) and the registration rules (OAuth 2.1 §2.3.1, RFC 9700 §2.6). ``localhost`` has its
own file, test_redirect_uri_localhost.py."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frontdesk.errors import OAuthError
from frontdesk.protocol.redirect_uri import InvalidRedirectUri, check_redirect_uri, validate_redirect_uri

REGISTERED = ["https://app.example/cb"]
PUBLIC = ["https://app.example/cb", "http://127.0.0.1/cb", "http://[::1]/cb"]

# RFC 9700 §4.1.3 / checklist BCP-01: every near miss of https://app.example/cb.
NEAR_MISSES = [
    "https://app.example/cb/../evil",
    "https://app.example/cb/",
    "https://app.example/CB",
    "https://APP.example/cb",
    "https://app.example/cb?x=1",
    "https://app.example/cb#f",
    "https://app.example:443/cb",
    "https://app.example/cb%2F..%2Fevil",
    "https://app.example.evil.com/cb",
    "https://app.example@evil.com/cb",
    "https://evil.com@app.example/cb",
    "http://app.example/cb",
    "https://app.example/cb ",
    " https://app.example/cb",
    "https://app.example/c%62",
    "",
]

# Fragments of URIs, so that Hypothesis often builds strings close to the registered ones.
_PIECES = st.sampled_from(
    [
        "http://",
        "https://",
        "127.0.0.1",
        "[::1]",
        "localhost",
        "app.example",
        ":",
        "51004",
        "0",
        "65536",
        "/cb",
        "/cb2",
        "/",
        "?",
        "#",
        "@",
        ".evil.com",
        "%2F",
        "..",
        " ",
        "\x00",
        "é",
        "²",
        "٥",
    ]
)
_LOOPBACK = re.compile(
    r"(?P<host>http://(?:127\.0\.0\.1|\[::1\]|localhost))(?::(?P<port>[0-9]{1,5}))?(?P<rest>(?:[/?].*)?)", re.S
)
# Near-loopback URIs: the port is where parsers disagree (non-ASCII digits, signs, overflow, empty).
_loopback_like = st.builds(
    "{}{}{}{}".format,
    st.sampled_from(["http://", "http://", "http://", "https://", "HTTP://"]),
    st.sampled_from(["127.0.0.1", "[::1]", "127.0.0.1", "[::1]", "localhost", "127.0.0.1.evil.com", "[::1]@evil.com"]),
    st.one_of(
        st.just(""),
        st.text(alphabet="0123456789²٥０+-: ", max_size=7).map(":{}".format),
        st.integers(min_value=0, max_value=99999).map(":{}".format),
    ),
    st.sampled_from(["/cb", "/cb2", "/", "", "?x=1", "/cb#f", "/CB"]),
)
uri_like = st.one_of(st.text(max_size=60), st.lists(_PIECES, max_size=8).map("".join), _loopback_like)


def test_exact_string_is_accepted():
    """The registered URI, byte for byte, is the redirect URI to use."""
    assert check_redirect_uri(REGISTERED, "https://app.example/cb", public=False) == "https://app.example/cb"


@pytest.mark.parametrize("requested", NEAR_MISSES)
def test_near_miss_is_refused(requested):
    """Anything but the exact registered string is refused, for confidential and public clients alike."""
    assert check_redirect_uri(REGISTERED, requested, public=False) is None
    assert check_redirect_uri(PUBLIC, requested, public=True) is None


def test_omitted_with_one_registered_uses_it():
    """OAuth 2.1 §2.3.2: redirect_uri may be omitted when exactly one URI is registered."""
    assert check_redirect_uri(REGISTERED, None, public=False) == "https://app.example/cb"


def test_omitted_with_several_registered_is_refused():
    """OAuth 2.1 §2.3.2: with several registered URIs the request must name one."""
    assert check_redirect_uri(["https://app.example/cb", "https://app.example/other"], None, public=False) is None


@pytest.mark.parametrize(
    "requested", ["http://127.0.0.1:51004/cb", "http://127.0.0.1:1/cb", "http://[::1]:51004/cb", "http://[::1]/cb"]
)
def test_loopback_port_may_vary_for_public_client(requested):
    """RFC 8252 §7.3: a native client's loopback redirect URI may carry any port."""
    assert check_redirect_uri(PUBLIC, requested, public=True) == requested


@pytest.mark.parametrize(
    "requested",
    [
        "http://127.0.0.1:51004/cb2",
        "http://127.0.0.1:51004/CB",
        "http://127.0.0.1.evil.com:80/cb",
        "http://127.0.0.1.evil.com/cb",
        "http://127.0.0.1@evil.com/cb",
        "http://127.0.0.1:51004@evil.com/cb",
        "http://localhost:51004/cb",
        "http://localhost/cb",
        "http://127.0.0.2:51004/cb",
        "https://127.0.0.1:51004/cb",
        "http://127.0.0.1:99999/cb",
        "http://127.0.0.1:/cb",
        "http://127.0.0.1:+80/cb",
        "http://[::1]:51004/cb2",
        "http://[::1]:51004/cb/../cb",
        "https://app.example:8443/cb",
    ],
)
def test_loopback_exception_is_narrow(requested):
    """Only the port of a registered loopback IP literal may vary; path, host and scheme must still match."""
    assert check_redirect_uri(PUBLIC, requested, public=True) is None


@pytest.mark.parametrize(
    "requested", ["http://127.0.0.1:²/cb", "http://127.0.0.1:٥/cb", "http://[::1]:０/cb", "http://127.0.0.1:¹²³/cb"]
)
def test_loopback_port_must_be_ascii_digits(requested):
    """A port written with non-ASCII digits is no port: refused, not a crash and not a redirect."""
    assert check_redirect_uri(PUBLIC, requested, public=True) is None
    with pytest.raises(InvalidRedirectUri):
        validate_redirect_uri(requested, public=True)


def test_loopback_port_is_fixed_for_confidential_client():
    """The port exception is for native (public) clients only."""
    assert check_redirect_uri(["http://127.0.0.1/cb"], "http://127.0.0.1:51004/cb", public=False) is None


@pytest.mark.parametrize(
    ("uri", "public"),
    [
        ("https://app.example/cb", False),
        ("http://127.0.0.1/cb", True),
        ("http://[::1]:8080/cb", True),
        ("com.example.app:/cb", True),
    ],
)
def test_registration_accepts(uri, public):
    """https URIs, loopback http for native clients and reverse-domain private-use schemes can be registered."""
    validate_redirect_uri(uri, public)


@pytest.mark.parametrize(
    ("uri", "public"),
    [
        ("http://app.example/cb", False),
        ("http://app.example/cb", True),
        ("http://127.0.0.1/cb", False),
        ("https://app.example/cb#f", False),
        ("https://app.example/cb#", False),
        ("https://user@app.example/cb", False),
        ("/cb", False),
        ("https:///cb", False),
        ("myapp:/cb", True),
        ("javascript:alert(1)", True),
        ("data:text/html,x", True),
        ("https://app.example/c b", False),
        ("https://app.example/cb\n", False),
    ],
)
def test_registration_refuses(uri, public):
    """Fragments, user information, plain http off loopback, relative and dangerous URIs are refused at registration."""
    with pytest.raises(InvalidRedirectUri) as info:
        validate_redirect_uri(uri, public)
    assert info.value.error == "invalid_redirect_uri"


@settings(database=None, max_examples=500)
@given(
    registered=st.lists(st.one_of(uri_like, st.sampled_from(PUBLIC)), min_size=1, max_size=4),
    requested=st.one_of(st.none(), uri_like),
)
def test_check_never_raises(registered, requested):
    """check_redirect_uri answers with a URI or None for any input, never with an exception."""
    for public in (False, True):
        result = check_redirect_uri(registered, requested, public)
        assert result is None or isinstance(result, str)


@settings(database=None, max_examples=500)
@given(requested=_loopback_like)
def test_check_never_raises_on_loopback_like(requested):
    """Near-loopback URIs (odd ports, look-alike hosts) are answered with a URI or None, never an exception."""
    result = check_redirect_uri(PUBLIC, requested, public=True)
    assert result is None or result == requested


@settings(database=None, max_examples=300)
@given(registered=st.lists(uri_like, min_size=1, max_size=4), requested=uri_like)
def test_confidential_match_is_exact(registered, requested):
    """For a confidential client the answer is the requested string exactly when it is registered, else None."""
    expected = requested if requested in registered else None
    assert check_redirect_uri(registered, requested, public=False) == expected


def _without_port(uri: str) -> str | None:
    """A loopback http URI (an IP literal or localhost) with its port (ASCII digits, at most 65535) removed; None for
    any other URI."""
    match = _LOOPBACK.fullmatch(uri)
    if match is None or (match["port"] is not None and int(match["port"]) > 65535):
        return None
    return match["host"] + match["rest"]


@settings(database=None, max_examples=300)
@given(registered=st.lists(uri_like, min_size=1, max_size=4), requested=uri_like)
def test_public_match_is_exact_or_loopback_port(registered, requested):
    """For a public client a URI that is not registered is accepted only when it differs from a registered loopback
    URI in its port alone."""
    result = check_redirect_uri(registered, requested, public=True)
    if requested in registered:
        assert result == requested
    elif result is not None:
        assert result == requested
        stripped = _without_port(requested)
        assert stripped is not None, requested
        assert stripped in {_without_port(uri) for uri in registered}


@settings(database=None, max_examples=200)
@given(
    host=st.sampled_from(["127.0.0.1", "[::1]"]),
    path=st.sampled_from(["/cb", "/", "", "/a/b?x=1"]),
    port=st.integers(min_value=0, max_value=65535),
)
def test_public_loopback_any_port_is_accepted(host, path, port):
    """Every port of a registered loopback URI is accepted for a public client, and returned as requested."""
    requested = f"http://{host}:{port}{path}"
    assert check_redirect_uri([f"http://{host}{path}"], requested, public=True) == requested


@settings(database=None, max_examples=500)
@given(uri=st.one_of(uri_like, _loopback_like), public=st.booleans())
def test_validate_raises_only_invalid_redirect_uri(uri, public):
    """validate_redirect_uri either accepts or raises InvalidRedirectUri, never anything else."""
    try:
        validate_redirect_uri(uri, public)
    except InvalidRedirectUri:
        pass
    except OAuthError as exc:  # pragma: no cover - a failure message, not a path
        pytest.fail(f"unexpected OAuthError subclass {type(exc).__name__}")
