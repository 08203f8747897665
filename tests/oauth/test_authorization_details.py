"""Unit tests of ``oauth.authorization_details`` (RFC 9396): the validation of the parameter (§2, §5), the plain
words pages show, narrowing per type (§6.1) and the details a token's audience gets (§9.1)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frontdesk.core import Frontdesk
from frontdesk.errors import InvalidAuthorizationDetails
from frontdesk.oauth.authorization_detail_types import create
from frontdesk.oauth.authorization_details import (
    MAX_BYTES,
    describe_details,
    for_audience,
    narrowed,
    requested_details,
    token_details,
)
from rar import DESCRIBE, PAYMENT, PAYMENTS_API, SCHEMA

ACTIONS = ("initiate", "status", "cancel")


@pytest.fixture
def types(fd: Frontdesk) -> Frontdesk:
    create(fd, "payment_initiation", json.dumps(SCHEMA), DESCRIBE)
    create(fd, "open_notes", json.dumps({"type": "object", "additionalProperties": True}), "Notes about {topic}")
    return fd


def refused(fd: Frontdesk, details: Any) -> str:
    raw = details if isinstance(details, str) else json.dumps(details)
    with pytest.raises(InvalidAuthorizationDetails) as caught:
        requested_details(fd, raw)
    assert caught.value.error == "invalid_authorization_details"
    return caught.value.description


# --- requested_details ----------------------------------------------------------------------------------------------


def test_a_valid_request_is_returned_as_its_objects(types):
    assert requested_details(types, json.dumps([PAYMENT])) == (PAYMENT,)
    assert requested_details(types, None) == ()


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("not json", "not JSON"),
        ("{}", "JSON array"),
        ("[]", "JSON array"),
        ('[{"type": "payment_initiation", "type": "open_notes"}]', "repeats the field type"),
        ("[NaN]", "not JSON"),
        ('[{"type": "open_notes", "topic": "\\ud800"}]', "not Unicode"),
        ('["payment_initiation"]', "authorization_details[0] is not an object"),
        ("[{}]", "has no type"),
        ('[{"type": ""}]', "has no type"),
        ('[{"type": "open_notes", "actions": "read"}]', "actions must be an array of strings"),
        ('[{"type": "open_notes", "locations": [1]}]', "locations must be an array of strings"),
        ('[{"type": "open_notes", "identifier": ["a"]}]', "identifier must be a string"),
        ('[{"type": "wire_transfer"}]', "unknown type wire_transfer"),
        ("[" + "[" * 3000 + "]" * 3000 + "]", "longer than"),
        ("[" + ",".join(['{"type":"open_notes"}'] * 17) + "]", "more than 16"),
    ],
)
def test_a_malformed_request_is_refused_saying_why(types, raw, says):
    """RFC 9396 §2, §5: each way the parameter can be wrong names itself."""
    assert says in refused(types, raw)


def test_a_field_the_type_does_not_define_is_refused(types):
    """A closed type's fields are those its schema names: another would be shown to nobody and judged by nobody."""
    assert refused(types, [{**PAYMENT, "debtorAccount": "x"}]) == (
        "authorization_details[0].debtorAccount is not a field of type payment_initiation"
    )
    assert requested_details(types, json.dumps([{"type": "open_notes", "anything": 1}]))


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            lambda d: d["instructedAmount"].pop("currency"),
            "authorization_details[0].instructedAmount is missing the field currency",
        ),
        (lambda d: d.pop("creditorName"), "authorization_details[0] is missing the field creditorName"),
        (lambda d: d.update(creditorName=7), "authorization_details[0].creditorName must be of type string"),
        (
            lambda d: d.update(actions=["refund"]),
            "authorization_details[0].actions[0] has a value the type does not allow",
        ),
        (
            lambda d: d["instructedAmount"].update(amount="12,00"),
            "instructedAmount.amount does not satisfy the type's rule pattern",
        ),
        (lambda d: d["instructedAmount"].update(fee="1"), "instructedAmount has a field the type does not define"),
    ],
)
def test_an_object_that_breaks_its_schema_is_refused_naming_the_field(types, change, says):
    """RFC 9396 §5: wrong type, missing field, value not allowed: the description names the path."""
    detail = copy.deepcopy(PAYMENT)
    change(detail)
    assert says in refused(types, [detail])


def test_an_error_description_keeps_to_the_rfc_6749_characters(types):
    """A field name from the request (quotes, backslashes, non-ASCII) never reaches error_description raw."""
    description = refused(types, [{**PAYMENT, 'na"me\\é\u202e': 1}])
    assert all(" " <= c <= "~" and c not in '"\\' for c in description)


def test_a_request_longer_than_the_cap_is_refused(types):
    big = {"type": "open_notes", "topic": "x" * MAX_BYTES}
    assert "longer than" in refused(types, [big])


# --- describe_details -------------------------------------------------------------------------------------------------


def test_the_template_is_filled_from_nested_fields(types):
    """{amount} finds instructedAmount.amount (RFC 9396 §A.3); unused common fields follow in words."""
    assert describe_details(types, [PAYMENT]) == [
        f"Pay 123.50 EUR to Merchant A (at: {PAYMENTS_API}; actions: initiate, status, cancel)"
    ]


def test_a_missing_field_is_shown_as_missing(types):
    """A field the template names but the object lacks is shown as such, never an exception."""
    assert describe_details(types, [{"type": "open_notes"}]) == ["Notes about [topic not given]"]


def test_a_dotted_field_names_a_path(types):
    create(types, "transfer", json.dumps({"type": "object", "additionalProperties": True}), "To {to.iban}")
    assert describe_details(types, [{"type": "transfer", "to": {"iban": "DE02"}}]) == ["To DE02"]
    assert describe_details(types, [{"type": "transfer", "to": "DE02"}]) == ["To [to.iban not given]"]


def test_values_are_capped_and_lose_what_could_disguise_them(types):
    """Control, bidirectional and zero-width characters go; a long value is cut."""
    (text,) = describe_details(types, [{"type": "open_notes", "topic": "a\u202eb\u200bc\nd" + "x" * 200}])
    assert text.startswith("Notes about a b c d")
    assert "\u202e" not in text
    assert "\u200b" not in text
    assert len(text) <= len("Notes about ") + 80


def test_a_type_deleted_since_is_shown_as_its_object(types):
    assert describe_details(types, [{"type": "gone", "amount": 5}]) == ['gone: {"amount":5}']


# --- narrowed, token_details, for_audience -------------------------------------------------------------------------


def test_fewer_values_of_a_common_array_are_narrower():
    assert narrowed([{**PAYMENT, "actions": ["status"]}], [PAYMENT])
    assert narrowed([], [PAYMENT])


@pytest.mark.parametrize(
    "asked",
    [
        {**PAYMENT, "actions": ["refund"]},  # another action
        {k: v for k, v in PAYMENT.items() if k != "actions"},  # a limit dropped
        {**PAYMENT, "datatypes": ["x"]},  # a limit the grant never had
        {**PAYMENT, "creditorName": "Someone Else"},  # the type's own field changed
        {**PAYMENT, "type": "open_notes"},  # another type
    ],
)
def test_anything_else_is_not(asked):
    """RFC 9396 §6.1: per type, the common arrays may shrink; everything else stays the grant's exactly."""
    assert not narrowed([asked], [PAYMENT])


@given(st.sets(st.sampled_from(ACTIONS)), st.sets(st.sampled_from((*ACTIONS, "refund"))))
def test_narrowing_actions_is_exactly_a_subset(granted: set[str], asked: set[str]) -> None:
    grant = {**PAYMENT, "actions": sorted(granted)}
    assert narrowed([{**PAYMENT, "actions": sorted(asked)}], [grant]) == (asked <= granted)


def test_a_token_request_without_details_gets_the_grants_and_one_with_them_is_held_to_them(types):
    assert token_details(types, None, [PAYMENT]) == (PAYMENT,)
    granted = {**PAYMENT, "actions": ["status"]}
    with pytest.raises(InvalidAuthorizationDetails, match="not covered by the grant"):
        token_details(types, json.dumps([PAYMENT]), [granted])


def test_an_audience_gets_only_details_for_it():
    """RFC 9396 §9.1: a detail with locations goes only to a token for one of them; one without, to all."""
    anywhere = {"type": "open_notes"}
    assert for_audience([PAYMENT, anywhere], ["https://EXAMPLE.com:443/payments"]) == (PAYMENT, anywhere)
    assert for_audience([PAYMENT, anywhere], ["https://rs1.example"]) == (anywhere,)
    assert for_audience([{"type": "x", "locations": ["not a uri [", "http://[::1"]}], ["http://[::1"]) != ()
