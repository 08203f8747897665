"""OpenID Connect CIBA Core 1.0 over HTTP (issue 14 item 4): a client asks at /bc-authorize, the person answers on the
account page, the client polls (poll mode) or is pinged (ping mode, a real https receiver on loopback) and then gets
its tokens; the platform hears of each request through the signed webhook."""

from __future__ import annotations

import hmac
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from accounts import account_page, form_action
from conftest import Registered, basic, csrf_of, remember
from dpop_proofs import claims_of, jkt_of, new_key, proof
from frontdesk.config import SecondFactorPolicy
from frontdesk.core import Frontdesk
from frontdesk.oauth.dpop import require_for_client
from frontdesk.oauth.registration import register
from frontdesk.storage.schema import AuditEvent, BackchannelRequest
from frontdesk.vault.webhooks import sign
from metadata_host import throwaway_certificates
from rar import DESCRIBE, PAYMENT, PAYMENTS_API, register_payments
from servers import loopback
from test_token import verified_claims

CIBA = "urn:openid:params:grant-type:ciba"
NOTIFY = "/ciba/notify"


@pytest.fixture
def agent(fd: Frontdesk, secrets_seen: set[str]) -> Registered:
    return register_agent(fd, secrets_seen)


def register_agent(fd: Frontdesk, secrets_seen: set[str]) -> Registered:
    """A confidential client allowed the CIBA grant in poll mode, which may refresh."""
    client, secret = register(
        fd,
        name="Shopping Agent",
        client_id="agent-client",
        grant_types=[CIBA, "refresh_token"],
        scope="openid profile offline_access calendar.read",
        backchannel_token_delivery_mode="poll",
    )
    remember(secrets_seen, secret)
    return Registered(client.client_id, secret, "")


async def bc_authorize(http: httpx.AsyncClient, client: Registered, **params: str) -> httpx.Response:
    """POST /bc-authorize as ``client`` for alice, asking for ``openid`` unless told otherwise."""
    data = {"scope": "openid", "login_hint": "alice", **params}
    return await http.post("/bc-authorize", auth=basic(client), data={k: v for k, v in data.items() if v})


async def started(http: httpx.AsyncClient, client: Registered, secrets_seen: set[str], **params: str) -> str:
    """A new request's auth_req_id (remembered: the database may hold only its digest)."""
    response = await bc_authorize(http, client, **params)
    assert response.status_code == 200, response.text
    auth_req_id = str(response.json()["auth_req_id"])
    remember(secrets_seen, auth_req_id)
    return auth_req_id


async def poll(http: httpx.AsyncClient, client: Registered, auth_req_id: str) -> httpx.Response:
    return await http.post("/token", auth=basic(client), data={"grant_type": CIBA, "auth_req_id": auth_req_id})


async def approvals(http: httpx.AsyncClient, person: tuple[str, str]) -> httpx.Response:
    page = await account_page(http, *person, "/account/approvals")
    assert page.status_code == 200, page.text
    return page


def handles(page: httpx.Response) -> list[str]:
    return re.findall(r'name="request" value="([0-9a-f]+)"', page.text)


async def answer(http: httpx.AsyncClient, person: tuple[str, str], decision: str = "approve") -> httpx.Response:
    """The person opens the approvals page and answers the (only) waiting request; the answer, not followed."""
    page = await approvals(http, person)
    (handle,) = handles(page)
    data = {"csrf": csrf_of(page.text), "request": handle, "decision": decision}
    return await http.post(form_action(page.text), data=data)


def events(fd: Frontdesk, name: str) -> list[Any]:
    with fd.engine.connect() as conn:
        return list(conn.execute(select(AuditEvent).where(AuditEvent.event == name)).all())


def status_of(fd: Frontdesk) -> list[str]:
    with fd.engine.connect() as conn:
        return [row.status for row in conn.execute(select(BackchannelRequest)).all()]


# --- poll mode ----------------------------------------------------------------------------------------------------


async def test_poll_mode_approved_request_gets_access_id_and_refresh_tokens_for_the_person(
    http, fd, agent, person, secrets_seen
):
    auth_req_id = await started(http, agent, secrets_seen, scope="openid offline_access calendar.read")
    assert (await poll(http, agent, auth_req_id)).json()["error"] == "authorization_pending"
    assert (await answer(http, person)).status_code == 303
    response = await poll(http, agent, auth_req_id)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {"access_token", "id_token", "refresh_token"} <= set(body)
    assert body["scope"] == "openid offline_access calendar.read"
    with fd.engine.connect() as conn:
        alice = fd.users.id_of(conn, "alice")
    claims = await verified_claims(http, body["access_token"])
    assert claims["sub"] == alice
    assert claims["client_id"] == "agent-client"
    assert [e.user_id for e in events(fd, "ciba.requested")] == [alice]
    assert [e.user_id for e in events(fd, "ciba.approved")] == [alice]
    refreshed = await http.post(
        "/token", auth=basic(agent), data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text


async def test_without_offline_access_an_approval_gives_no_refresh_token(http, agent, person, secrets_seen):
    """OpenID Connect Core §11: a refresh token for an OpenID request only with offline_access."""
    auth_req_id = await started(http, agent, secrets_seen, scope="openid profile")
    await answer(http, person)
    body = (await poll(http, agent, auth_req_id)).json()
    assert "id_token" in body
    assert "refresh_token" not in body


async def test_an_auth_req_id_redeems_once(http, agent, person, secrets_seen):
    auth_req_id = await started(http, agent, secrets_seen)
    await answer(http, person)
    assert (await poll(http, agent, auth_req_id)).status_code == 200
    again = await poll(http, agent, auth_req_id)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


async def test_a_denied_request_answers_access_denied_and_is_audited(http, fd, agent, person, secrets_seen):
    auth_req_id = await started(http, agent, secrets_seen)
    assert (await answer(http, person, "deny")).status_code == 303
    response = await poll(http, agent, auth_req_id)
    assert response.status_code == 400
    assert response.json()["error"] == "access_denied"
    assert len(events(fd, "ciba.denied")) == 1
    assert not events(fd, "ciba.approved")


async def test_an_unanswered_request_expires_and_the_expiry_is_audited_once(
    http, fd, agent, person, clock, secrets_seen
):
    auth_req_id = await started(http, agent, secrets_seen, requested_expiry="60")
    clock.advance(61)
    for _ in range(2):
        response = await poll(http, agent, auth_req_id)
        assert response.json()["error"] == "expired_token"
        clock.advance(10)
    assert len(events(fd, "ciba.expired")) == 1
    page = await approvals(http, person)
    assert handles(page) == []  # an expired request is no longer shown, so it cannot be approved


async def test_polling_faster_than_the_interval_slows_the_client_down(http, agent, person, clock, secrets_seen):
    response = await bc_authorize(http, agent)
    auth_req_id, interval = response.json()["auth_req_id"], response.json()["interval"]
    remember(secrets_seen, auth_req_id)
    assert (await poll(http, agent, auth_req_id)).json()["error"] == "authorization_pending"
    assert (await poll(http, agent, auth_req_id)).json()["error"] == "slow_down"
    clock.advance(interval + 1)  # the interval grew by 5 seconds (§11): the old one is too short now
    assert (await poll(http, agent, auth_req_id)).json()["error"] == "slow_down"
    clock.advance(interval + 5 + 5 + 1)
    assert (await poll(http, agent, auth_req_id)).json()["error"] == "authorization_pending"


async def test_another_clients_auth_req_id_is_invalid_grant(http, fd, agent, person, secrets_seen):
    other, secret = register(
        fd, name="Other Agent", grant_types=[CIBA], scope="openid", backchannel_token_delivery_mode="poll"
    )
    remember(secrets_seen, secret)
    auth_req_id = await started(http, agent, secrets_seen)
    await answer(http, person)
    response = await poll(http, Registered(other.client_id, secret, ""), auth_req_id)
    assert response.json()["error"] == "invalid_grant"
    assert (await poll(http, agent, auth_req_id)).status_code == 200  # still the right client's


# --- the person's page -----------------------------------------------------------------------------------------


async def test_a_waiting_request_is_shown_in_plain_words_with_its_binding_message(
    http, fd, agent, person, secrets_seen
):
    register_payments(fd)
    details = json.dumps([PAYMENT])
    await started(
        http,
        agent,
        secrets_seen,
        scope="openid calendar.read",
        binding_message="Order 7Q2X",
        authorization_details=details,
    )
    page = await approvals(http, person)
    assert "Shopping Agent" in page.text
    assert "Order 7Q2X" in page.text
    assert "See your calendar events" in page.text
    assert DESCRIBE.format(amount="123.50", currency="EUR", creditorName="Merchant A") in page.text
    assert len(handles(page)) == 1


async def test_an_approval_carries_the_authorization_details_into_the_token(http, fd, agent, person, secrets_seen):
    """RFC 9396 §7: what the person approved is kept with the grant and travels in the access token."""
    register_payments(fd)
    auth_req_id = await started(
        http, agent, secrets_seen, authorization_details=json.dumps([PAYMENT]), resource=PAYMENTS_API
    )
    await answer(http, person)
    body = (await poll(http, agent, auth_req_id)).json()
    assert body["authorization_details"] == [PAYMENT]
    claims = await verified_claims(http, body["access_token"])
    assert claims["authorization_details"] == [PAYMENT]


async def test_an_approval_form_without_the_csrf_token_is_refused(http, agent, person, secrets_seen):
    auth_req_id = await started(http, agent, secrets_seen)
    page = await approvals(http, person)
    (handle,) = handles(page)
    response = await http.post("/account/approvals/decide", data={"request": handle, "decision": "approve"})
    assert response.status_code == 403
    assert (await poll(http, agent, auth_req_id)).json()["error"] == "authorization_pending"


async def test_only_the_person_asked_can_answer(http, fd, agent, person, secrets_seen):
    auth_req_id = await started(http, agent, secrets_seen)
    (handle,) = handles(await approvals(http, person))
    http.cookies.clear()
    fd.users.create("bob", "bob's long password")
    remember(secrets_seen, "bob's long password")
    page = await approvals(http, ("bob", "bob's long password"))
    assert handles(page) == []
    csrf = csrf_of((await http.get("/account/sessions")).text)  # bob's session's token, from a page with a form
    response = await http.post(
        "/account/approvals/decide", data={"csrf": csrf, "request": handle, "decision": "approve"}
    )
    assert response.status_code == 303
    assert "answer=expired" in response.headers["location"]
    assert (await poll(http, agent, auth_req_id)).json()["error"] == "authorization_pending"


async def test_approving_first_owes_the_second_factor_the_policy_asks_for_the_client(
    http, fd, agent, person, secrets_seen
):
    """The one sign-in policy (signin.next_step), as the device flow's Allow: a step-up before the approval."""
    fd.settings = replace(fd.settings, second_factor=SecondFactorPolicy(required_for_clients=("agent-client",)))
    auth_req_id = await started(http, agent, secrets_seen)
    response = await answer(http, person)
    assert response.status_code == 303
    assert response.headers["location"].endswith("/second-factor")
    assert (await poll(http, agent, auth_req_id)).json()["error"] == "authorization_pending"
    assert not events(fd, "ciba.approved")


async def test_denying_needs_no_step_up(http, fd, agent, person, secrets_seen):
    fd.settings = replace(fd.settings, second_factor=SecondFactorPolicy(required_for_clients=("agent-client",)))
    auth_req_id = await started(http, agent, secrets_seen)
    await answer(http, person, "deny")
    assert (await poll(http, agent, auth_req_id)).json()["error"] == "access_denied"


# --- ping mode --------------------------------------------------------------------------------------------------


@dataclass
class Receiver:
    """The client's notification endpoint: an https server on loopback that records what it is sent."""

    port: int = 0
    status: int = 204
    location: str = ""
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def url(self, path: str = NOTIFY) -> str:
        return f"https://localhost:{self.port}{path}"

    def wait(self, count: int = 1, seconds: float = 10.0) -> None:
        deadline = time.monotonic() + seconds
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)


def _https_server(tmp_path: Path, state: Receiver) -> tuple[ThreadingHTTPServer, Path]:
    import ssl

    cafile, cert, key = throwaway_certificates(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            state.received.append((self.path, dict(self.headers.items()), body))
            self.send_response(state.status)
            if state.location:
                self.send_header("Location", state.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    return httpd, cafile


@pytest.fixture
def receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    state = Receiver()
    httpd, cafile = _https_server(tmp_path, state)
    monkeypatch.setenv("SSL_CERT_FILE", str(cafile))  # trusted as an operator would trust a private CA
    state.port = int(httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def allow_loopback(fd: Frontdesk) -> None:
    """The named development relaxation of the metadata fetcher's SSRF guard, which the notification shares."""
    fd.settings = replace(
        fd.settings, registration=replace(fd.settings.registration, allow_private_metadata_hosts=True)
    )


def pinged_client(fd: Frontdesk, receiver: Receiver, secrets_seen: set[str]) -> Registered:
    client, secret = register(
        fd,
        name="Pinged Agent",
        client_id="ping-client",
        grant_types=[CIBA],
        scope="openid profile",
        backchannel_token_delivery_mode="ping",
        backchannel_client_notification_endpoint=receiver.url(),
    )
    remember(secrets_seen, secret)
    return Registered(client.client_id, secret, "")


async def test_ping_mode_posts_the_auth_req_id_with_the_clients_bearer_token(http, fd, person, receiver, secrets_seen):
    allow_loopback(fd)
    client = pinged_client(fd, receiver, secrets_seen)
    token = "notify-" + "x" * 40
    remember(secrets_seen, token)  # sealed at rest: the database scan after the test proves it
    auth_req_id = await started(http, client, secrets_seen, client_notification_token=token)
    assert receiver.received == []
    await answer(http, person)
    receiver.wait()
    ((path, headers, body),) = receiver.received
    assert path == NOTIFY
    assert headers["Authorization"] == f"Bearer {token}"
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"auth_req_id": auth_req_id}
    assert (await poll(http, client, auth_req_id)).status_code == 200
    assert [e.outcome for e in events(fd, "ciba.notified")] == ["success"]


async def test_ping_mode_tells_the_client_of_a_denial_too(http, fd, person, receiver, secrets_seen):
    allow_loopback(fd)
    client = pinged_client(fd, receiver, secrets_seen)
    auth_req_id = await started(http, client, secrets_seen, client_notification_token="tok-" + "y" * 30)
    await answer(http, person, "deny")
    receiver.wait()
    assert len(receiver.received) == 1
    assert (await poll(http, client, auth_req_id)).json()["error"] == "access_denied"


async def test_a_redirecting_notification_endpoint_is_not_followed(http, fd, person, receiver, secrets_seen):
    allow_loopback(fd)
    receiver.status, receiver.location = 307, "/elsewhere"
    client = pinged_client(fd, receiver, secrets_seen)
    await started(http, client, secrets_seen, client_notification_token="tok-" + "z" * 30)
    await answer(http, person)
    receiver.wait()
    deadline = time.monotonic() + 10
    while not events(fd, "ciba.notified") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [path for path, _, _ in receiver.received] == [NOTIFY]
    assert [e.outcome for e in events(fd, "ciba.notified")] == ["failure"]


async def test_a_notification_to_a_loopback_address_is_refused_without_the_relaxation(
    http, fd, person, receiver, secrets_seen
):
    """CIMD §6.5's guard: a client cannot aim this server's POST at its own network."""
    client = pinged_client(fd, receiver, secrets_seen)
    await started(http, client, secrets_seen, client_notification_token="tok-" + "w" * 30)
    await answer(http, person)
    deadline = time.monotonic() + 10
    while not events(fd, "ciba.notified") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [e.outcome for e in events(fd, "ciba.notified")] == ["failure"]
    assert receiver.received == []


# --- the platform's webhook, limits, registration ---------------------------------------------------------------


async def test_a_new_request_is_announced_to_the_platform_by_a_signed_webhook(http, fd, agent, person, secrets_seen):
    received: list[tuple[dict[str, str], bytes]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append((dict(self.headers.items()), self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    secret = "webhook-secret-0123456789"
    remember(secrets_seen, secret)
    with loopback(Hook) as port:
        fd.settings = replace(
            fd.settings, vault_webhook_url=f"http://127.0.0.1:{port}/hook", vault_webhook_secret=secret
        )
        auth_req_id = await started(http, agent, secrets_seen, binding_message="Order 7Q2X")
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
    ((headers, body),) = received
    stamp = re.fullmatch(r"t=(\d+),v1=[0-9a-f]+", headers["Frontdesk-Signature"])
    assert stamp
    assert hmac.compare_digest(headers["Frontdesk-Signature"], sign(secret, int(stamp.group(1)), body))
    event = json.loads(body)
    assert event["type"] == "ciba.requested"
    assert event["data"]["username"] == "alice"
    assert event["data"]["binding_message"] == "Order 7Q2X"
    assert event["data"]["approve_at"] == "https://as.example/account/approvals"
    assert auth_req_id not in body.decode()


async def test_a_person_with_too_many_waiting_requests_is_not_asked_again(http, fd, agent, person, secrets_seen):
    """CIBA §7.1/§15: push spam; §13's 403 access_denied, not a 429 that invites the client to wait and retry."""
    for _ in range(5):
        await started(http, agent, secrets_seen)
    response = await bc_authorize(http, agent)
    assert response.status_code == 403
    assert response.json()["error"] == "access_denied"
    assert len(status_of(fd)) == 5


def test_registration_judges_the_delivery_mode(fd):
    from frontdesk.oauth.registration import ClientError

    def attempt(**fields: Any) -> str:
        try:
            register(fd, name="Agent", grant_types=[CIBA], scope="openid", **fields)
        except ClientError as exc:
            return f"{exc.error}: {exc}"
        return "registered"

    assert "backchannel_token_delivery_mode" in attempt()
    assert "backchannel_token_delivery_mode" in attempt(backchannel_token_delivery_mode="push")
    assert "backchannel_client_notification_endpoint" in attempt(backchannel_token_delivery_mode="ping")
    assert "https" in attempt(
        backchannel_token_delivery_mode="ping", backchannel_client_notification_endpoint="http://agent.example/n"
    )
    assert attempt(backchannel_token_delivery_mode="poll") == "registered"
    with pytest.raises(ClientError):
        register(fd, name="Web", redirect_uris=["https://a.example/cb"], backchannel_token_delivery_mode="poll")
    with pytest.raises(ClientError):
        register(fd, name="Public", auth_method="none", grant_types=[CIBA], backchannel_token_delivery_mode="poll")


def test_an_operator_can_move_a_client_between_poll_and_ping(fd, agent):
    """``frontdesk client update --backchannel-token-delivery-mode …`` (oauth.ciba_clients.update_delivery)."""
    from frontdesk.oauth.ciba_clients import update_delivery
    from frontdesk.oauth.registration import ClientError

    with pytest.raises(ClientError, match="backchannel_client_notification_endpoint"):
        update_delivery(fd, agent.client_id, "ping", None)
    pinged = update_delivery(fd, agent.client_id, "ping", "https://agent.example/notify")
    assert pinged is not None
    assert pinged.backchannel_client_notification_endpoint == "https://agent.example/notify"
    polled = update_delivery(fd, agent.client_id, "poll", None)
    assert polled is not None
    assert (polled.backchannel_token_delivery_mode, polled.backchannel_client_notification_endpoint) == ("poll", None)
    assert len(events(fd, "client.updated")) == 2
    assert update_delivery(fd, "no-such-client", "poll", None) is None


# --- DPoP ---------------------------------------------------------------------------------------------------------


async def poll_with_proof(http: httpx.AsyncClient, client: Registered, auth_req_id: str, *dpop: str) -> httpx.Response:
    data = {"grant_type": CIBA, "auth_req_id": auth_req_id}
    return await http.post("/token", auth=basic(client), data=data, headers=[("DPoP", value) for value in dpop])


async def test_a_dpop_proof_binds_the_ciba_access_token_to_its_key(http, agent, person, secrets_seen):
    """RFC 9449 §5 applies to every grant that issues access tokens at the token endpoint, CIBA's too: the access
    token carries ``cnf.jkt`` and is of type DPoP; a confidential client's refresh token stays unbound (§5)."""
    key = new_key()
    auth_req_id = await started(http, agent, secrets_seen, scope="openid offline_access")
    pending = await poll_with_proof(http, agent, auth_req_id, proof(key))
    assert pending.json()["error"] == "authorization_pending"
    await answer(http, person)
    response = await poll_with_proof(http, agent, auth_req_id, proof(key))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "DPoP"
    assert (await verified_claims(http, body["access_token"]))["cnf"] == {"jkt": jkt_of(key)}
    data = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    refreshed = await http.post("/token", auth=basic(agent), data=data)
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["token_type"] == "Bearer"


async def test_a_client_that_requires_dpop_redeems_its_auth_req_id_only_with_a_proof(
    http, fd, agent, person, secrets_seen
):
    """RFC 9449 §5.2 ``dpop_bound_access_tokens``: a CIBA poll without a proof is refused and leaves the request
    to be redeemed; with one, the token is bound."""
    require_for_client(fd, agent.client_id, True)
    auth_req_id = await started(http, agent, secrets_seen)
    await answer(http, person)
    bare = await poll(http, agent, auth_req_id)
    assert (bare.status_code, bare.json()["error"]) == (400, "invalid_dpop_proof")
    key = new_key()
    bound = await poll_with_proof(http, agent, auth_req_id, proof(key))
    assert bound.status_code == 200, bound.text
    assert claims_of(bound.json()["access_token"])["cnf"] == {"jkt": jkt_of(key)}
