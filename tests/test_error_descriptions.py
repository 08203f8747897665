"""error_description on the wire (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3): only %x20-21 / %x23-5B / %x5D-7E, whatever
a message or a request put into it (errors.py ``wire_description``); the JSON answer, the redirect and the DPoP
challenge all carry the same safe text."""

from __future__ import annotations

import re

import httpx
from hypothesis import given
from hypothesis import strategies as st

from conftest import Registered, basic
from frontdesk.errors import InvalidRequest, wire_description
from frontdesk.oauth.dpop import ResourceProofRefused

ALLOWED = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")


@given(st.text())
def test_any_text_becomes_wire_characters(text: str) -> None:
    assert ALLOWED.fullmatch(wire_description(text))


def test_section_signs_quotes_and_line_breaks_are_spelled_out() -> None:
    said = wire_description('client_id must match (RFC 7592 §2.2): "a\\b"\r\nnext')
    assert said == "client_id must match (RFC 7592 section 2.2): 'a/b' next"
    assert InvalidRequest("RFC 8693 §3").body() == {
        "error": "invalid_request",
        "error_description": "RFC 8693 section 3",
    }
    refused = ResourceProofRefused("invalid_dpop_proof", 'a "bad" §4.3 proof')
    assert refused.body()["error_description"] == "a 'bad' section 4.3 proof"
    assert "error_description=\"a 'bad' section 4.3 proof\"" in refused.headers()["WWW-Authenticate"]


async def test_a_token_error_from_a_request_value_is_wire_safe(
    http: httpx.AsyncClient, confidential: Registered
) -> None:
    """The scope of a request lands in no description raw: a line break in it cannot split the answer."""
    response = await http.post(
        "/token", auth=basic(confidential), data={"grant_type": "client_credentials", "scope": "a\u00a7b\r\nc"}
    )
    assert response.status_code == 400, response.text
    assert ALLOWED.fullmatch(response.json().get("error_description", ""))
