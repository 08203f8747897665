"""Unit tests of frontdesk.protocol.scope (RFC 6749 §3.3) and frontdesk.protocol.forms (RFC 6749 §3.1, §3.2,
Appendix B; RFC 8707 §2), with Hypothesis properties: only the module's OAuthError subclasses ever escape."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frontdesk.errors import InvalidRequest, InvalidScope, InvalidTarget
from frontdesk.protocol.forms import REPEATABLE, Params, parse_form, parse_query
from frontdesk.protocol.rfc8707 import check_resource
from frontdesk.protocol.scope import format_scope, parse_scope

NQCHAR = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")
scope_token = st.text(alphabet=[chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"\\'], min_size=1, max_size=12)

# Raw form bodies built from the characters parsers stumble on: separators, escapes, invalid UTF-8, NUL.
_FORM_PIECES = st.sampled_from(
    ["a", "=", "&", ";", "+", "%", "%2", "%20", "%00", "%ff", "%C3%A9", "%e2%82", "\x00", "é", "state", "resource"]
)
raw_forms = st.one_of(st.binary(max_size=80), st.lists(_FORM_PIECES, max_size=12).map(lambda p: "".join(p).encode()))


# --- scope ---------------------------------------------------------------------------------------------------------


def test_scope_none_is_empty():
    """An omitted scope parses to no scopes."""
    assert parse_scope(None) == ()


def test_scope_keeps_order_and_drops_duplicates():
    """Tokens keep their first-seen order and repeat only once."""
    assert parse_scope("openid profile openid email") == ("openid", "profile", "email")


def test_scope_ignores_extra_spaces():
    """Leading, trailing and doubled spaces separate nothing."""
    assert parse_scope("  openid   profile ") == ("openid", "profile")


def test_scope_is_case_sensitive():
    """RFC 6749 §3.3: scope tokens are case-sensitive."""
    assert parse_scope("openid OpenID") == ("openid", "OpenID")


@pytest.mark.parametrize("value", ['a"b', "a\\b", "openid\tprofile", "openid\nprofile", "é", "a\x00", "a\x7f"])
def test_scope_outside_nqchar_is_invalid_scope(value):
    """Characters outside NQCHAR (quote, backslash, controls, non-ASCII, tab as a separator) are invalid_scope."""
    with pytest.raises(InvalidScope) as info:
        parse_scope(value)
    assert info.value.error == "invalid_scope"


@settings(database=None, max_examples=300)
@given(value=st.one_of(st.none(), st.text(max_size=60)))
def test_parse_scope_raises_only_invalid_scope(value):
    """parse_scope returns NQCHAR tokens, unique, or raises InvalidScope, for any text."""
    try:
        scopes = parse_scope(value)
    except InvalidScope:
        return
    assert len(set(scopes)) == len(scopes)
    assert all(NQCHAR.fullmatch(s) for s in scopes)


@settings(database=None, max_examples=300)
@given(tokens=st.lists(scope_token, max_size=6, unique=True))
def test_scope_format_round_trips(tokens):
    """Formatting valid, distinct tokens and parsing them back gives the same tuple."""
    assert parse_scope(format_scope(tokens)) == tuple(tokens)


# --- forms ---------------------------------------------------------------------------------------------------------


def test_form_reads_single_values():
    """Ordinary parameters come back as a dict of decoded strings."""
    params = parse_form(b"grant_type=authorization_code&code=a%2Bb&redirect_uri=https%3A%2F%2Fapp.example%2Fcb")
    assert dict(params) == {"grant_type": "authorization_code", "code": "a+b", "redirect_uri": "https://app.example/cb"}


def test_form_plus_is_space():
    """Appendix B: '+' encodes a space, '%2B' a plus."""
    assert parse_form(b"state=a+b%2Bc")["state"] == "a b+c"


@pytest.mark.parametrize(
    "body", [b"code=a&code=a", b"code=a&code=b", b"client_id=x&client_id=", b"state=&state=", b"a=1&b=2&a=3"]
)
def test_form_repeated_parameter_is_invalid_request(body):
    """RFC 6749 §3.1/§3.2: a parameter sent twice is refused, whatever its values."""
    with pytest.raises(InvalidRequest) as info:
        parse_form(body)
    assert info.value.error == "invalid_request"


def test_form_empty_value_is_omitted():
    """RFC 6749 §3.1: a parameter without a value is treated as omitted."""
    params = parse_form(b"code_challenge=&state=x")
    assert "code_challenge" not in params
    assert params["state"] == "x"


def test_form_resource_may_repeat():
    """RFC 8707 §2: resource is the one repeatable parameter; empty values are dropped."""
    params = parse_form(b"resource=https%3A%2F%2Frs1.example&resource=&resource=https%3A%2F%2Frs2.example")
    assert params.getall("resource") == ["https://rs1.example", "https://rs2.example"]
    assert "resource" not in params


def test_form_unknown_parameters_are_kept():
    """RFC 6749 §3.1: unknown parameters are ignored by the caller, not rejected by the parser."""
    assert parse_form(b"extra=foobar")["extra"] == "foobar"


@pytest.mark.parametrize("body", [b"code=\xff", b"\xc3=1", b"code=%ff", b"code=%C3", b"a%e2%82=1"])
def test_form_invalid_utf8_is_invalid_request(body):
    """Bytes or percent-escapes that are not UTF-8 are invalid_request, not a crash."""
    with pytest.raises(InvalidRequest):
        parse_form(body)


@pytest.mark.parametrize("body", [b"code=a%00b", b"co%00de=a", b"code=a\x00b", b"resource=a%00"])
def test_form_nul_is_invalid_request(body):
    """A NUL character in a name or value is refused."""
    with pytest.raises(InvalidRequest):
        parse_form(body)


def test_query_and_form_agree():
    """The authorization endpoint reads a query string with the same rules as a form body."""
    query = "response_type=code&state=a%20b%2Bc%2F%3D%26x"
    assert (
        dict(parse_query(query)) == dict(parse_form(query.encode())) == {"response_type": "code", "state": "a b+c/=&x"}
    )


@settings(database=None, max_examples=500)
@given(body=raw_forms)
def test_parse_form_raises_only_invalid_request(body):
    """parse_form returns Params or raises InvalidRequest, for any bytes."""
    try:
        params = parse_form(body)
    except InvalidRequest:
        return
    assert isinstance(params, Params)
    assert all("\x00" not in k and "\x00" not in v for k, v in params.items())


@settings(database=None, max_examples=300)
@given(query=st.text(max_size=80))
def test_parse_query_raises_only_invalid_request(query):
    """parse_query returns Params or raises InvalidRequest, for any text, including lone surrogates."""
    try:
        parse_query(query)
    except InvalidRequest:
        return


@settings(database=None, max_examples=300)
@given(
    pairs=st.dictionaries(
        # Repeatable parameters (resource, audience) come back as lists: their own tests say how.
        st.text(min_size=1, max_size=10).filter(lambda k: "\x00" not in k and k not in REPEATABLE),
        st.text(min_size=1, max_size=20).filter(lambda v: "\x00" not in v),
        max_size=6,
    )
)
def test_form_round_trips(pairs):
    """Distinct, non-empty parameters encoded as a form come back unchanged."""
    try:
        body = urlencode(pairs).encode()
    except UnicodeEncodeError:  # lone surrogates cannot be sent at all
        return
    assert dict(parse_form(body)) == pairs


form_pieces = st.lists(
    st.sampled_from(
        ["a", "b", "resource", "=", "&", "+", " ", "%20", "%2B", "%26", "%C3%A9", "%FF", "%zz", "%", "é", "\x00", ";"]
    ),
    max_size=25,
).map("".join)


@settings(database=None, max_examples=2000)
@given(query=form_pieces)
def test_form_reads_what_the_standard_parser_reads(query):
    """parse_query reads pairs as urllib.parse.parse_qsl(keep_blank_values=True, errors="strict") does, and adds
    only its own refusals (a repeated parameter, a NUL)."""
    try:
        expected = parse_qsl(query, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        with pytest.raises(InvalidRequest):
            parse_query(query)
        return
    names = [name for name, _ in expected if name != "resource"]
    refused = len(set(names)) != len(names) or any("\x00" in name + value for name, value in expected)
    if refused:
        with pytest.raises(InvalidRequest):
            parse_query(query)
        return
    params = parse_query(query)
    assert dict(params) == {name: value for name, value in expected if name != "resource" and value}
    assert params.getall("resource") == [value for name, value in expected if name == "resource" and value]


# --- resource (RFC 8707) -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["https://rs.example/api#frag", "https://rs.example/#", "/relative", "rs.example", ""]
)
def test_resource_must_be_absolute_without_fragment(value):
    """RFC 8707 §2: a resource is an absolute URI without a fragment; otherwise invalid_target."""
    with pytest.raises(InvalidTarget) as info:
        check_resource([value])
    assert info.value.error == "invalid_target"


def test_resource_deduplicates_in_order():
    """Repeated resources collapse to one, first-seen order kept."""
    assert check_resource(["https://a.example", "https://b.example", "https://a.example"]) == (
        "https://a.example",
        "https://b.example",
    )


@settings(database=None, max_examples=300)
@given(values=st.lists(st.text(max_size=40), max_size=4))
def test_check_resource_raises_only_invalid_target(values):
    """check_resource returns a tuple or raises InvalidTarget, for any list of strings."""
    try:
        out = check_resource(values)
    except InvalidTarget:
        return
    assert all("#" not in v for v in out)
