"""Secrets: masked values, prefixed high-entropy tokens, digests."""

from __future__ import annotations

import re

from frontdesk.oauth.client_auth import presented_credentials
from frontdesk.protocol.forms import parse_form
from frontdesk.secret import PREFIXES, Secret, digest, new_token, same


def test_secret_repr_and_str_are_masked():
    """A Secret never shows its value in repr, str or an f-string."""
    secret = Secret("hunter2-hunter2")
    assert "hunter2" not in repr(secret)
    assert "hunter2" not in str(secret)
    assert "hunter2" not in f"{secret}"


def test_presented_client_credentials_are_masked_in_repr():
    """The parsed client authentication of a request shows no secret when logged or in a traceback."""
    presented = presented_credentials(None, parse_form(b"client_id=a&client_secret=supersecretvalue"))
    assert "supersecretvalue" not in repr(presented)


def test_tokens_carry_their_scanner_prefix_and_256_bits():
    """Every kind of token starts with its prefix and carries 43 URL-safe characters of randomness."""
    for kind, prefix in PREFIXES.items():
        token = new_token(kind)
        assert token.startswith(prefix)
        assert re.fullmatch(r"[A-Za-z0-9_\-]{43}", token[len(prefix) :])


def test_digest_is_hex_sha256_and_comparison_is_exact():
    """Digests are 64 hex characters; comparison tells equal from unequal."""
    assert re.fullmatch(r"[0-9a-f]{64}", digest("x"))
    assert same(digest("x"), digest("x"))
    assert not same(digest("x"), digest("y"))
