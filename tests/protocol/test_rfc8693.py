"""RFC 8693 §4.1 ``act``: properties of nesting the actors of a delegation chain, and its cap."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frontdesk.protocol.rfc8693 import MAX_ACT_DEPTH, act_chain, act_claim, may_act_allows

ACTORS = st.text(st.characters(codec="ascii", categories=("L", "N")), min_size=1, max_size=12)


@given(st.lists(ACTORS, max_size=MAX_ACT_DEPTH).map(tuple))
def test_act_nests_each_prior_actor_inside_and_reads_back(chain):
    claim = act_claim(chain)
    assert act_chain(claim) == chain
    level, depth = claim, 0
    while level is not None:
        assert set(level) <= {"sub", "act"}  # RFC 8693 §4.1: no exp, nbf or aud inside act
        level, depth = level.get("act"), depth + 1
    assert depth == len(chain)


@given(st.lists(ACTORS, min_size=MAX_ACT_DEPTH + 1, max_size=MAX_ACT_DEPTH + 4).map(tuple))
def test_act_longer_than_the_cap_is_no_delegation_chain(chain):
    with pytest.raises(ValueError, match="not a delegation chain"):
        act_chain(act_claim(chain))


def test_may_act_names_the_actor_of_this_issuer_only():
    """RFC 8693 §4.4: ``may_act`` allows the subject it names, of this issuer (when it names one); nothing else."""
    issuer = "https://as.example"
    assert may_act_allows({"sub": "agent"}, "agent", issuer)
    assert may_act_allows({"sub": "agent", "iss": issuer}, "agent", issuer)
    assert not may_act_allows({"sub": "agent", "iss": "https://other.example"}, "agent", issuer)
    assert not may_act_allows({"sub": "other"}, "agent", issuer)
    for malformed in (None, "agent", ["agent"], {"sub": 1}, {}):
        assert not may_act_allows(malformed, "agent", issuer)
