"""The operator's scopes: stored once by name, listed with their descriptions."""

from __future__ import annotations

from frontdesk.storage.scopes import add_scope, scope_descriptions


def test_a_new_scope_is_listed_with_its_description(fd):
    assert add_scope(fd.engine, "calendar.read", "Read your calendar")
    assert scope_descriptions(fd.engine)["calendar.read"] == "Read your calendar"


def test_a_scope_name_is_stored_once(fd):
    assert add_scope(fd.engine, "calendar.read", "Read your calendar")
    assert not add_scope(fd.engine, "calendar.read", "Something else")
    assert scope_descriptions(fd.engine)["calendar.read"] == "Read your calendar"
