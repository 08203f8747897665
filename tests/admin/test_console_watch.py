"""The admin console's overview, audit trail, vault connections and alerts over HTTP in process, on SQLite and
PostgreSQL: searching and paging the trail, its JSON lines download, deleting a connection, acknowledging and
resolving an alert raised from the trail."""

from __future__ import annotations

import json
import re

import pytest

from conftest import csrf_of, remember
from frontdesk.admin.alert_rules import BY_NAME
from frontdesk.storage.db import transaction
from frontdesk.vault.service import vault_of
from frontdesk.vault.store import Credentials, save_connection
from frontdesk.web.admin_watch import RULE_WORDS

from .alerting import evaluate_all, raised, write
from .console import console, forms_of, give_role, post
from .test_console import events


@pytest.fixture
def operator(fd, person) -> tuple[str, str]:
    give_role(fd, person[0], "operator")
    return person


def replayed(fd, client_id: str = "conf-client") -> None:
    """A refresh token used twice, as grants.py audits it, and the evaluator run: a critical alert."""
    write(fd, "refresh.reused", "revoked", client_id=client_id, user_id=None, ip="198.51.100.9", grant="g1")
    evaluate_all(fd)


def test_every_alert_rule_has_words():
    """An alert's heading names its rule in words, for every rule there is."""
    assert set(RULE_WORDS) == set(BY_NAME)


# --- overview ---------------------------------------------------------------------------------------------------


async def test_overview_counts_and_names_open_alerts(http, fd, operator, confidential, secrets_seen):
    replayed(fd)
    page = await console(http, *operator, secrets_seen)
    assert "<strong>1</strong> open alert<" in page.text
    assert "<strong>1</strong> client<" in page.text
    assert "<strong>1</strong> person<" in page.text
    assert "was used a second time" in page.text


async def test_overview_without_alerts_says_so(http, operator, secrets_seen):
    page = await console(http, *operator, secrets_seen)
    assert "No alert is open." in page.text


# --- audit trail ------------------------------------------------------------------------------------------------


async def test_audit_search_by_event_prefix_and_person(http, fd, operator, secrets_seen):
    """admin.* finds the role granted to the operator; a person filter by username keeps only their events."""
    page = await console(http, *operator, secrets_seen, "/admin/audit?event=admin.*")
    assert '<code class="event">admin.role.granted</code>' in page.text
    assert '<code class="event">signin</code>' not in page.text
    page = await http.get("/admin/audit?person=alice&event=signin")
    assert '<code class="event">signin</code>' in page.text
    nobody = await http.get("/admin/audit?person=nobody")
    assert nobody.status_code == 404
    assert 'role="alert"' in nobody.text


async def test_audit_search_by_outcome_and_time(http, fd, operator, secrets_seen):
    write(fd, "signin", "failure", user_id=None, ip="192.0.2.1", username="mallory")
    page = await console(http, *operator, secrets_seen, "/admin/audit?outcome=failure")
    assert "192.0.2.1" in page.text
    future = await http.get("/admin/audit?outcome=failure&since=2999-01-01T00:00")
    assert "No event matches." in future.text
    bad = await http.get("/admin/audit?since=yesterday")
    assert bad.status_code == 422
    assert "must be a date and time" in bad.text


async def test_audit_pages_older_events(http, fd, operator, secrets_seen):
    for n in range(55):
        write(fd, "test.event", "success", user_id=None, n=n)
    page = await console(http, *operator, secrets_seen, "/admin/audit?event=test.event")
    assert page.text.count('<code class="event">test.event</code>') == 50
    older = re.search(r'<a href="(/admin/audit\?[^"]+)">Older events</a>', page.text)
    assert older
    rest = await http.get(older[1].replace("&amp;", "&"))
    assert rest.text.count('<code class="event">test.event</code>') == 5
    assert "Older events" not in rest.text


async def test_audit_download_is_json_lines_and_audited(http, fd, operator, secrets_seen):
    """The download holds every matching event, oldest first, one JSON object a line; reading it is audited."""
    for n in range(3):
        write(fd, "test.event", "success", user_id=None, n=n)
    page = await console(http, *operator, secrets_seen, "/admin/audit?event=test.event")
    download = await post(http, page, "/admin/audit/export", event="test.event")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("application/x-ndjson")
    assert download.headers["content-disposition"].startswith('attachment; filename="frontdesk-audit-')
    lines = [json.loads(line) for line in download.text.splitlines()]
    assert [e["detail"]["n"] for e in lines] == [0, 1, 2]
    [exported] = events(fd, "admin.audit.exported")
    assert "test.event" in exported.detail


async def test_audit_download_needs_the_csrf_token(http, fd, operator, secrets_seen):
    await console(http, *operator, secrets_seen)
    response = await http.post("/admin/audit/export", data={"csrf": "no"})
    assert response.status_code == 403
    assert events(fd, "admin.audit.exported") == []


async def test_auditor_may_search_and_download(http, fd, person, secrets_seen):
    give_role(fd, person[0], "auditor")
    page = await console(http, *person, secrets_seen, "/admin/audit")
    assert page.status_code == 200
    assert forms_of(page.text) == ["/admin/audit/export"]
    download = await post(http, page, "/admin/audit/export")
    assert download.status_code == 200


# --- vault connections ------------------------------------------------------------------------------------------


@pytest.fixture
def connection(fd, secrets_seen) -> str:
    """A connection of the platform user "plat-1" through a GitHub integration (no revocation endpoint)."""
    vault = vault_of(fd)
    remember(secrets_seen, "gh-client-secret", "gho_access_token_1")
    vault.add_integration("gh", "github", "gh-client", "gh-client-secret")
    with transaction(vault.engine) as conn:
        made, _ = save_connection(
            conn,
            vault.keys,
            integration_name="gh",
            user="plat-1",
            credentials=Credentials("gho_access_token_1"),
            scopes=["repo"],
            meta={},
            expires_at=None,
            person=None,
        )
    return made.id


async def test_connections_are_listed_and_found(http, operator, connection, secrets_seen):
    page = await console(http, *operator, secrets_seen, "/admin/connections")
    assert "plat-1" in page.text
    assert "Working" in page.text
    assert "gho_access_token_1" not in page.text
    assert "plat-1" not in (await http.get("/admin/connections?status=revoked")).text
    assert "plat-1" not in (await http.get("/admin/connections?user=someone-else")).text


async def test_delete_a_connection(http, fd, operator, connection, secrets_seen):
    page = await console(http, *operator, secrets_seen, "/admin/connections")
    done = await post(http, page, "/admin/connections/delete", connection=connection)
    assert done.status_code == 303
    page = await http.get(done.headers["location"])
    assert "The connection is deleted here" in page.text
    assert "No connection matches." in page.text
    assert len(events(fd, "admin.vault.connection.deleted")) == 1


async def test_deleting_an_unknown_connection_is_a_404(http, operator, secrets_seen):
    page = await console(http, *operator, secrets_seen, "/admin/audit")  # a page with a form, for the token
    response = await http.post("/admin/connections/delete", data={"csrf": csrf_of(page.text), "connection": "nope"})
    assert response.status_code == 404
    assert 'role="alert"' in response.text


# --- alerts -----------------------------------------------------------------------------------------------------


async def test_acknowledge_then_resolve_an_alert(http, fd, operator, secrets_seen):
    replayed(fd)
    [alert] = raised(fd)
    page = await console(http, *operator, secrets_seen, "/admin/alerts")
    assert "was used a second time" in page.text
    assert "Critical" in page.text
    done = await post(http, page, "/admin/alerts", alert=alert.id, action="acknowledge")
    assert done.status_code == 303
    page = await http.get(done.headers["location"])
    assert "The alert is marked as being looked at." in page.text
    assert raised(fd)[0].status == "acknowledged"
    done = await post(http, page, "/admin/alerts", alert=alert.id, action="resolve")
    page = await http.get(done.headers["location"])
    assert "The alert is resolved." in page.text
    assert raised(fd)[0].status == "resolved"
    assert "No open alert." in (await http.get("/admin/alerts?status=open")).text
    assert len(events(fd, "admin.alert.resolved")) == 1


async def test_resolving_twice_says_so(http, fd, operator, secrets_seen):
    replayed(fd)
    [alert] = raised(fd)
    page = await console(http, *operator, secrets_seen, "/admin/alerts")
    await post(http, page, "/admin/alerts", alert=alert.id, action="resolve")
    again = await http.post("/admin/alerts", data={"csrf": csrf_of(page.text), "alert": alert.id, "action": "resolve"})
    assert again.status_code == 409
    assert "resolved already" in again.text


async def test_auditor_sees_alerts_without_buttons(http, fd, person, secrets_seen):
    replayed(fd)
    give_role(fd, person[0], "auditor")
    page = await console(http, *person, secrets_seen, "/admin/alerts")
    assert "was used a second time" in page.text
    assert forms_of(page.text) == []


@pytest.mark.parametrize(
    "path",
    [
        "/admin/people/%00",
        "/admin/people/" + "x" * 300,
        "/admin/people?q=%00",
        "/admin/people?cursor=%%%",
        "/admin/clients/view?client_id=%00",
        "/admin/clients?q=%00&cursor=!!",
        "/admin/audit?event=%00&client_id=%00&outcome=%00",
        "/admin/audit?user_id=" + "u" * 300,
        "/admin/audit?cursor=bm90LWEtbnVtYmVy",
        "/admin/connections?user=%00&status=nope",
        "/admin/alerts?status=nope&cursor=zz",
    ],
)
async def test_bad_input_is_never_a_500(http, operator, secrets_seen, path):
    """Whatever the address, the console answers a page (a 4xx one when the input is refused), never a 500."""
    await console(http, *operator, secrets_seen)
    response = await http.get(path)
    assert response.status_code < 500, response.text[:300]
    assert "<h1>" in response.text
