"""The alert rules (issue 16, item 3) on SQLite and PostgreSQL: each fires at its threshold and not below, from the
events their producers write (a replayed refresh token through the real /token endpoint, failed sign-ins through
the sign-in service, failed client authentication through /token), and repeats are grouped."""

from __future__ import annotations

import httpx
import pytest

from conftest import Registered, basic, code_for
from frontdesk.admin import alerts
from frontdesk.admin.alert_evaluator import periodic
from frontdesk.admin.principals import CLI
from frontdesk.config import Alerts, ConfigError
from frontdesk.oauth.signin import password_signin
from frontdesk.storage.db import transaction

from .alerting import configure, evaluate_all, events, raised, write


async def test_replayed_refresh_token_raises_a_critical_alert(fd, http, browser, confidential):
    """A refresh token used again after rotation, through /token, raises the critical replay alert."""
    code, verifier = await code_for(browser, confidential, scope="openid offline_access")
    redeemed = await http.post(
        "/token",
        auth=basic(confidential),
        data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier},
    )
    refresh = {"grant_type": "refresh_token", "refresh_token": redeemed.json()["refresh_token"]}
    assert (await http.post("/token", auth=basic(confidential), data=refresh)).status_code == 200
    replayed = await http.post("/token", auth=basic(confidential), data=refresh)
    assert replayed.json()["error"] == "invalid_grant"
    evaluate_all(fd)
    (alert,) = raised(fd, "token.replayed")
    assert (alert.severity, alert.status, alert.key, alert.count) == ("critical", "open", confidential.client_id, 1)
    assert alert.detail["event"] == "refresh.reused"
    assert "stolen" in alert.summary
    (raised_event,) = events(fd, "alert.raised")
    assert raised_event.detail["alert"] == alert.id
    assert raised_event.outcome == "critical"


def test_every_replay_counts_into_the_open_alert(fd):
    """A second replay for the same client is counted into the open alert: no second alert, no second event."""
    write(fd, "code.replayed", "revoked", client_id="app", user_id="u1", grant_id="g1")
    evaluate_all(fd)
    write(fd, "refresh.reused", "revoked", client_id="app", user_id="u2", grant_id="g2")
    evaluate_all(fd)
    (alert,) = raised(fd, "token.replayed")
    assert alert.count == 2
    assert alert.detail["grant_id"] == "g2"  # the latest occurrence
    assert len(events(fd, "alert.raised")) == 1


def test_a_replay_refused_within_the_grace_window_raises_nothing(fd):
    """Only a replay the server treated as theft (outcome revoked) is one; other events of the grant are not."""
    write(fd, "token.refreshed", "success", client_id="app", grant_id="g1")
    evaluate_all(fd)
    assert raised(fd) == []


def test_failed_signins_per_person_fire_at_the_threshold(fd, person):
    """Three failed sign-ins as one person (threshold 3) raise the alert; two do not."""
    configure(fd, failed_signins_per_person=(3, 600), failed_signins_per_ip=(100, 600))
    for _ in range(2):
        assert password_signin(fd, person[0], "wrong", "198.51.100.1") is None
    evaluate_all(fd)
    assert raised(fd, "signin.failures.person") == []
    assert password_signin(fd, person[0], "wrong", "198.51.100.2") is None
    evaluate_all(fd)
    (alert,) = raised(fd, "signin.failures.person")
    with transaction(fd.engine, readonly=True) as conn:
        assert alert.key == fd.users.id_of(conn, person[0])
    assert alert.detail["count"] == 3
    assert alert.detail["window"] == 600


def test_failed_signins_outside_the_window_do_not_add_up(fd, person, clock):
    """Failures further apart than the window never make a burst."""
    configure(fd, failed_signins_per_person=(3, 600), failed_signins_per_ip=(100, 600))
    for _ in range(2):
        password_signin(fd, person[0], "wrong", "198.51.100.1")
    clock.advance(601)
    password_signin(fd, person[0], "wrong", "198.51.100.1")
    evaluate_all(fd)
    assert raised(fd) == []


def test_failed_signins_per_address_fire_at_the_threshold(fd):
    """One address failing for three different (unknown) accounts raises the per-address alert; no person's."""
    configure(fd, failed_signins_per_person=(2, 600), failed_signins_per_ip=(3, 600))
    for name in ("a", "b"):
        password_signin(fd, name, "wrong", "198.51.100.9")
    evaluate_all(fd)
    assert raised(fd) == []
    password_signin(fd, "c", "wrong", "198.51.100.9")
    evaluate_all(fd)
    (alert,) = raised(fd)
    assert (alert.rule, alert.key, alert.detail["count"]) == ("signin.failures.address", "198.51.100.9", 3)


def test_a_burst_read_in_one_batch_is_one_alert_counting_every_match(fd):
    """Six failures from one address read together (threshold 3): the third raises the alert, and the three after
    it are counted into it."""
    configure(fd, failed_signins_per_person=(100, 600), failed_signins_per_ip=(3, 600))
    for _ in range(6):
        write(fd, "signin", "failure", ip="198.51.100.5", username="x")
    evaluate_all(fd)
    (alert,) = raised(fd)
    assert (alert.count, alert.detail["count"]) == (4, 6)
    assert len(events(fd, "alert.raised")) == 1


def test_throttled_signins_count_as_failed(fd):
    """A try the throttle refused (the password never checked) is a failed sign-in to the rules too."""
    configure(fd, failed_signins_per_person=(100, 600), failed_signins_per_ip=(2, 600))
    write(fd, "signin", "failure", ip="198.51.100.3", username="x")
    write(fd, "signin", "throttled", ip="198.51.100.3", username="x")
    evaluate_all(fd)
    (alert,) = raised(fd, "signin.failures.address")
    assert alert.detail["count"] == 2


def test_wrong_second_factor_codes_count_as_failed_signins(fd):
    """A wrong second-factor code (the password was right) counts towards the person's burst."""
    configure(fd, failed_signins_per_person=(2, 600), failed_signins_per_ip=(100, 600))
    write(fd, "signin", "failure", user_id="u-1", ip="198.51.100.3", username="x")
    write(fd, "second_factor", "failure", user_id="u-1", ip="198.51.100.4")
    evaluate_all(fd)
    (alert,) = raised(fd, "signin.failures.person")
    assert (alert.key, alert.detail["count"]) == ("u-1", 2)


async def test_failed_client_authentication_fires_at_the_threshold(
    fd, http: httpx.AsyncClient, confidential: Registered
):
    """Three wrong secrets for one client at /token (threshold 3) raise the alert; two do not. Each failure is in
    the audit trail, without the secret."""
    configure(fd, failed_client_auth=(3, 600))
    wrong = (confidential.client_id, "not-the-secret")

    async def fail() -> None:
        response = await http.post("/token", auth=wrong, data={"grant_type": "client_credentials"})
        assert response.json()["error"] == "invalid_client"

    for _ in range(2):
        await fail()
    evaluate_all(fd)
    assert raised(fd) == []
    await fail()
    evaluate_all(fd)
    (alert,) = raised(fd, "client_auth.failures")
    assert (alert.key, alert.detail["count"]) == (confidential.client_id, 3)
    failures = events(fd, "client.authentication")
    assert [(e.outcome, e.client_id, e.ip, e.detail["reason"]) for e in failures] == [
        ("failure", confidential.client_id, "203.0.113.7", "wrong secret")
    ] * 3
    ok = await http.post("/token", auth=basic(confidential), data={"grant_type": "client_credentials"})
    assert ok.status_code == 200
    assert len(events(fd, "client.authentication")) == 3  # a success writes no such event


def _proxy(fd, connection: str, n: int) -> None:
    for _ in range(n):
        write(fd, "vault.proxy", "success", connection=connection, integration="google", user="u", status=200)


def _at_bucket_start(clock) -> None:
    """Move the clock to 5 s into a ten-minute bucket, so the test knows which calls fall in the last hour."""
    now = clock()
    clock.advance(600 - now % 600 + 5)


def test_proxy_surge_needs_the_minimum_without_history(fd, clock):
    """A connection with no earlier calls: an hour of proxy_min_calls (20) raises the alert, 19 do not."""
    configure(fd, proxy_rate_factor=10, proxy_min_calls=20)
    _at_bucket_start(clock)
    _proxy(fd, "conn-1", 19)
    evaluate_all(fd)
    assert raised(fd) == []
    _proxy(fd, "conn-1", 1)
    evaluate_all(fd)
    (alert,) = raised(fd, "vault.proxy.surge")
    assert (alert.key, alert.detail["calls"], alert.detail["usual"]) == ("conn-1", 20, 0)


def test_proxy_surge_is_measured_against_the_connections_usual_rate(fd, clock):
    """Ten calls an hour for four hours, ten hours back: 4 an hour on average over the 10 hours since, so the
    last hour fires at 40 calls (10 × 4), above the minimum of 20, and not at 39."""
    configure(fd, proxy_rate_factor=10, proxy_min_calls=20)
    _at_bucket_start(clock)
    start = clock()
    clock.advance(-3000 - 36000)  # ten hours before the first bucket of the last hour
    for _ in range(4):
        _proxy(fd, "conn-2", 10)
        clock.advance(3600)
    clock.advance(start - clock())
    evaluate_all(fd)
    assert raised(fd) == []
    _proxy(fd, "conn-2", 39)
    evaluate_all(fd)
    assert raised(fd) == []
    _proxy(fd, "conn-2", 1)
    evaluate_all(fd)
    (alert,) = raised(fd, "vault.proxy.surge")
    assert (alert.detail["calls"], alert.detail["usual"]) == (40, 4)


def test_refresh_failures_in_a_row_fire_and_a_success_ends_the_run(fd):
    """Three failed refreshes of one connection in a row raise the alert; a success in between starts again."""
    configure(fd, refresh_failures=3)
    detail = {"connection": "conn-3", "integration": "google", "user": "u"}
    for _ in range(2):
        write(fd, "vault.connection.refresh", "failure", reason="temporarily_unavailable", **detail)
    write(fd, "vault.connection.refreshed", "success", rotated=False, **detail)
    for _ in range(2):
        write(fd, "vault.connection.refresh", "failure", reason="temporarily_unavailable", **detail)
    evaluate_all(fd)
    assert raised(fd) == []
    write(fd, "vault.connection.needs_reauth", "failure", reason="invalid_grant", **detail)
    evaluate_all(fd)
    (alert,) = raised(fd, "vault.refresh.failing")
    assert (alert.key, alert.detail["count"], alert.detail["reason"]) == ("conn-3", 3, "invalid_grant")


def test_key_rotation_overdue_is_checked_periodically(fd, clock):
    """Keys newer than key_rotation_days raise nothing; older, the periodic check raises the alert once, and an
    hour later counts into it. The check runs at most once an hour across processes."""
    configure(fd, key_rotation_days=1)
    clock.advance(3600)
    assert periodic(fd) is True
    assert raised(fd) == []
    clock.advance(2 * 24 * 3600)
    assert periodic(fd) is True
    (alert,) = raised(fd, "signing_keys.rotation_overdue")
    assert "1 days" in alert.summary
    assert periodic(fd) is False
    clock.advance(3600)
    assert periodic(fd) is True
    (alert,) = raised(fd, "signing_keys.rotation_overdue")
    assert alert.count == 2


def test_a_resolved_alert_is_raised_anew(fd):
    """Once resolved, the next match of the rule and key raises a new alert rather than counting into the old."""
    write(fd, "code.replayed", "revoked", client_id="app", grant_id="g1")
    evaluate_all(fd)
    (first,) = raised(fd)
    alerts.resolve(fd, CLI, first.id)
    write(fd, "code.replayed", "revoked", client_id="app", grant_id="g2")
    evaluate_all(fd)
    assert sorted(a.status for a in raised(fd)) == ["open", "resolved"]
    assert len(events(fd, "alert.raised")) == 2


@pytest.mark.parametrize(
    "bad",
    [
        {"failed_client_auth": (0, 600)},
        {"failed_signins_per_ip": (5, 0)},
        {"refresh_failures": 0},
        {"key_rotation_days": 0},
        {"proxy_rate_factor": 0},
        {"webhook_url": "ftp://ops.example/"},
        {"webhook_url": "https://ops.example/", "webhook_secret": "short"},
    ],
)
def test_thresholds_out_of_bounds_are_refused_at_start(bad):
    with pytest.raises(ConfigError):
        Alerts(**bad).check()


def test_the_webhook_secret_stays_out_of_the_settings_repr():
    settings = Alerts(webhook_url="https://ops.example/", webhook_secret="0123456789abcdef-secret")
    assert "0123456789abcdef-secret" not in repr(settings)
