"""The admin console's Signing keys page, over HTTP in process on SQLite and PostgreSQL: the keys by state, never a
private part; a rotation by an operator, audited; an auditor who only looks; the age against the alert's period."""

from __future__ import annotations

import re

from sqlalchemy import select, update

from frontdesk.storage.db import now, transaction
from frontdesk.storage.schema import AuditEvent, SigningKey

from .console import console, forms_of, post


def kids(fd, state: str) -> set[str]:
    return {k.kid for k in fd.keys.list() if k.state == state}


async def test_the_keys_are_listed_by_state_without_their_private_parts(http, fd, console_operator, secrets_seen):
    fd.keys.read()  # the ring's first read makes the active and next keys, as a served process's start does
    page = await console(http, *console_operator, secrets_seen, "/admin/keys")
    assert page.status_code == 200, page.text
    assert "<h1>Signing keys</h1>" in page.text
    for kid in kids(fd, "active") | kids(fd, "next"):
        assert f"<code>{kid}</code>" in page.text
    assert "Active: signs tokens now" in page.text
    assert "Next: published, signs after the next rotation" in page.text
    assert "The newest keys were made today. Rotation is due every 90 days" in page.text
    with transaction(fd.engine, readonly=True) as conn:
        sealed = conn.execute(select(SigningKey.private_jwk)).scalars().all()
    assert sealed
    assert not any(s.hex()[:32] in page.text for s in sealed)
    assert '"d"' not in page.text


async def test_an_operator_rotates_the_keys(http, fd, console_operator, secrets_seen):
    """The next keys become active, the active ones retired, fresh next keys published; audited as the person."""
    fd.keys.read()
    active, upcoming = kids(fd, "active"), kids(fd, "next")
    page = await console(http, *console_operator, secrets_seen, "/admin/keys")
    done = await post(http, page, "/admin/keys/rotate")
    assert done.status_code == 303
    assert done.headers["location"] == "/admin/keys?done=rotated"
    shown = await http.get(done.headers["location"])
    assert "The keys are rotated" in shown.text
    assert kids(fd, "active") == upcoming
    assert active <= kids(fd, "retired")
    assert kids(fd, "next").isdisjoint(active | upcoming)
    assert "Retired: published for the tokens it signed" in shown.text
    with transaction(fd.engine, readonly=True) as conn:
        (actor,) = conn.execute(select(AuditEvent.detail).where(AuditEvent.event == "admin.keys.rotated")).one()
    assert "person:" in str(actor)


async def test_a_rotation_needs_the_consoles_csrf_token(http, fd, console_operator, secrets_seen):
    fd.keys.read()
    active = kids(fd, "active")
    await console(http, *console_operator, secrets_seen, "/admin/keys")
    refused = await http.post("/admin/keys/rotate", data={"csrf": "not-it"})
    assert refused.status_code == 403
    assert kids(fd, "active") == active


async def test_an_auditor_sees_the_keys_and_cannot_rotate_them(http, fd, console_auditor, secrets_seen):
    fd.keys.read()
    active = kids(fd, "active")
    page = await console(http, *console_auditor, secrets_seen, "/admin/keys")
    assert page.status_code == 200
    assert forms_of(page.text) == []
    token = re.search(r'name="csrf" value="([^"]+)"', (await http.get("/admin/alerts")).text)
    refused = await http.post("/admin/keys/rotate", data={"csrf": token[1] if token else ""})
    assert refused.status_code == 403
    assert kids(fd, "active") == active


async def test_keys_older_than_the_rotation_period_are_overdue(http, fd, console_operator, secrets_seen):
    fd.keys.read()
    with transaction(fd.engine) as conn:
        conn.execute(update(SigningKey).values(created_at=now() - 100 * 24 * 3600))
    page = await console(http, *console_operator, secrets_seen, "/admin/keys")
    assert "The newest keys were made 100 days ago. Rotation is due every 90 days" in page.text
    overdue = r'<p class="message" role="alert">[^<]*<code>\[alerts\] key_rotation_days</code>\): it is overdue'
    assert re.search(overdue, page.text)
