"""The device flow service (``oauth.device_flow``) below HTTP: the service draws the user code and storage only
reports a collision (RFC 8628 §6.1), and an answer to a code that is no longer pending records nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from conftest import Registered
from frontdesk.oauth import device_flow
from frontdesk.oauth.device_flow import DeviceAsk
from frontdesk.protocol.rfc8628 import format_user_code
from frontdesk.storage.db import now, transaction
from frontdesk.storage.device import device_by_user_code, insert_device
from frontdesk.storage.people import SessionRow
from frontdesk.storage.schema import AuditEvent

TAKEN = "BCDFGHJK"
FREE = "LMNPQRST"


def drawn(monkeypatch: pytest.MonkeyPatch, *codes: str) -> None:
    """The user codes ``new_user_code`` draws next, in order."""
    queue: Iterator[str] = iter(codes)
    monkeypatch.setattr(device_flow, "new_user_code", lambda: next(queue))


def test_storage_reports_a_taken_user_code(fd, public: Registered):
    """insert_device keeps nothing and answers None when the user code is taken: the caller draws again."""
    with transaction(fd.engine) as conn:
        first = insert_device(
            conn, user_code=TAKEN, client_id=public.client_id, scope=(), resource=(), interval=5, at=now(), ttl=600
        )
        again = insert_device(
            conn, user_code=TAKEN, client_id=public.client_id, scope=(), resource=(), interval=5, at=now(), ttl=600
        )
    assert first is not None
    assert again is None


def test_a_user_code_collision_draws_again(fd, public: Registered, monkeypatch):
    """A drawn user code that is already pending is replaced by the next draw."""
    drawn(monkeypatch, TAKEN, TAKEN, FREE)
    asked = DeviceAsk(public.client_id, ("openid",), ())
    assert device_flow.start(fd, asked).user_code == format_user_code(TAKEN)
    second = device_flow.start(fd, asked)
    assert second.user_code == format_user_code(FREE)
    with transaction(fd.engine, readonly=True) as conn:
        row = device_by_user_code(conn, FREE, now())
    assert row is not None
    assert row.client_id == public.client_id


def test_five_collisions_in_a_row_fail_loudly(fd, public: Registered, monkeypatch):
    """After five taken codes in a row the service gives up rather than loop: something else is wrong."""
    asked = DeviceAsk(public.client_id, ("openid",), ())
    drawn(monkeypatch, *[TAKEN] * 6)
    device_flow.start(fd, asked)
    with pytest.raises(RuntimeError, match="free user code"):
        device_flow.start(fd, asked)


def test_an_answer_to_an_unknown_code_records_nothing(fd, person):
    """Deciding on a code that is not pending is "expired", and no consent event is written."""
    with transaction(fd.engine, readonly=True) as conn:
        user_id = fd.users.id_of(conn, person[0])
    assert user_id is not None
    session = SessionRow(user_id=user_id, auth_time=now(), amr=("pwd",))
    assert device_flow.decide(fd, "ZZZZ-ZZZZ", True, session, "127.0.0.1") == "expired"
    assert device_flow.decide(fd, "ZZZZ-ZZZZ", False, session, "127.0.0.1") == "expired"
    with transaction(fd.engine, readonly=True) as conn:
        consents = conn.execute(select(func.count()).select_from(AuditEvent).where(AuditEvent.event == "consent"))
        assert consents.scalar_one() == 0
