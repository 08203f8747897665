"""A code redemption, and a refresh that narrows nothing, are read and spent in one statement on PostgreSQL
(oauth/redemption.py ``in_one``, storage/redemption.py ``redeem_in_one``, ``rotate_in_one``); a request that narrows
takes the two statements of ``code_for``/``refresh_for`` and ``spend``. The one statement must write exactly what
the two write, and spend nothing that a later check would refuse: a code or token spent and then refused would be
lost to its client, and presenting it again would look like theft. On SQLite every redemption takes the two steps;
the tests hold there all the same."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text

from conftest import RS1, Registered, basic, code_for, pkce
from frontdesk.core import Frontdesk
from frontdesk.oauth import dpop, grants, resources
from frontdesk.secret import digest
from frontdesk.storage import redemption
from test_refresh import SCOPE, assert_error, refresh, tokens_for


def _spy(monkeypatch: pytest.MonkeyPatch, name: str) -> list[bool]:
    seen: list[bool] = []
    real = getattr(redemption, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        row, spent = real(*args, **kwargs)
        seen.append(spent)
        return row, spent

    monkeypatch.setattr(grants, name, spy)
    return seen


@pytest.fixture
def spends(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each one-statement rotation spent its token, in order (empty on SQLite, which never takes it)."""
    return _spy(monkeypatch, "rotate_in_one")


@pytest.fixture
def redeems(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each one-statement code redemption spent its code, in order (empty on SQLite)."""
    return _spy(monkeypatch, "redeem_in_one")


def rows(fd: Frontdesk, sql: str, **params: object) -> list[tuple[object, ...]]:
    with fd.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


async def test_one_statement_writes_what_two_write(http, fd, browser, confidential, spends):
    """The plain refresh (one statement on PostgreSQL) and a narrowing one (two statements) each leave: the old
    token spent, a new one on the grant expiring as the grant allows, the grant unchanged, and one audit event
    ``token.refreshed`` naming the client, the person and the grant, its detail rendered alike."""
    first = await tokens_for(http, browser, confidential)
    plain = await refresh(http, confidential, first["refresh_token"])
    assert plain.status_code == 200, plain.text
    narrowed = await refresh(http, confidential, plain.json()["refresh_token"], scope="openid offline_access")
    assert narrowed.status_code == 200, narrowed.text
    assert spends == ([True] if fd.engine.dialect.name == "postgresql" else [])
    assert plain.json()["scope"] == SCOPE
    assert set(plain.json()) == {"access_token", "token_type", "expires_in", "scope", "refresh_token", "id_token"}

    tokens = rows(fd, "SELECT grant_id, client_id, consumed_at, expires_at, created_at FROM refresh_tokens")
    assert len(tokens) == 3  # the code's, and one a rotation
    assert len({t[0] for t in tokens}) == 1
    assert {t[1] for t in tokens} == {confidential.client_id}
    assert sorted(t[2] is None for t in tokens) == [False, False, True]
    [(grant_expires, jkt, revoked)] = rows(fd, "SELECT expires_at, dpop_jkt, revoked_at FROM grants")
    assert (jkt, revoked) == (None, None)
    for _, _, _, expires_at, created_at in tokens:
        assert expires_at == min(grant_expires, created_at + fd.settings.lifetimes.refresh_idle)
    events = rows(
        fd, "SELECT client_id, user_id, outcome, detail FROM audit_events WHERE event = 'token.refreshed' ORDER BY id"
    )
    assert len(events) == 2
    assert events[0] == events[1]
    client_id, user_id, outcome, detail = events[0]
    assert (client_id, outcome, detail) == (confidential.client_id, "success", f'{{"grant_id":"{tokens[0][0]}"}}')
    assert user_id is not None


@pytest.mark.parametrize("change", ["deleted", "dpop-only"])
async def test_a_refresh_refused_for_its_resource_keeps_its_token(
    http, fd, browser, confidential, resource_servers, spends, change
):
    """A grant's resource deleted since, or now taking DPoP-bound tokens only: the refresh is refused and nothing
    is spent, so once the operator undoes the change the same token still works (and is not taken for theft)."""
    first = await tokens_for(http, browser, confidential, resource=RS1)
    if change == "deleted":
        resources.delete(fd, RS1)
        refused = await refresh(http, confidential, first["refresh_token"])
        assert_error(refused, 400, "invalid_target")
        resources.create(fd, RS1, "Resource server one")
    else:
        dpop.require_for_resource(fd, RS1, True)
        refused = await refresh(http, confidential, first["refresh_token"])
        assert refused.status_code == 400, refused.text
        dpop.require_for_resource(fd, RS1, False)
    assert rows(fd, "SELECT COUNT(*) FROM refresh_tokens WHERE consumed_at IS NOT NULL") == [(0,)]
    again = await refresh(http, confidential, first["refresh_token"])
    assert again.status_code == 200, again.text
    assert spends == ([False, True] if fd.engine.dialect.name == "postgresql" else [])


async def test_each_rotation_leaves_one_live_token_the_one_handed_out(http, fd, browser, confidential, spends):
    """What the one statement inserts is what the response hands out: after each rotation the grant has one
    unspent refresh token, and it is the one the client was given, never one it never saw."""
    token = (await tokens_for(http, browser, confidential))["refresh_token"]
    for _ in range(3):
        rotated = await refresh(http, confidential, token)
        assert rotated.status_code == 200, rotated.text
        token = rotated.json()["refresh_token"]
        assert rows(fd, "SELECT digest FROM refresh_tokens WHERE consumed_at IS NULL") == [(digest(token),)]
    assert spends == ([True] * 3 if fd.engine.dialect.name == "postgresql" else [])


async def test_the_wrong_client_expired_or_revoked_is_refused_without_a_spend(
    http, fd, browser, confidential, second: Registered, spends, clock
):
    """Each check of the one statement refuses as the two-step path does, and spends nothing: another client's
    token is invalid_grant and stays good for its own client; a revoked grant's token is invalid_grant."""
    first = await tokens_for(http, browser, confidential)
    assert_error(await refresh(http, second, first["refresh_token"]), 400, "invalid_grant")
    assert rows(fd, "SELECT COUNT(*) FROM refresh_tokens WHERE consumed_at IS NOT NULL") == [(0,)]
    good = await refresh(http, confidential, first["refresh_token"])
    assert good.status_code == 200, good.text
    with fd.engine.begin() as conn:
        conn.execute(text("UPDATE grants SET revoked_at = 1"))
    assert_error(await refresh(http, confidential, good.json()["refresh_token"]), 400, "invalid_grant")
    assert rows(fd, "SELECT COUNT(*) FROM refresh_tokens WHERE consumed_at IS NULL") == [(1,)]
    if fd.engine.dialect.name == "postgresql":
        assert spends == [False, True, False]


async def redeem(http: httpx.AsyncClient, client: Registered, code: str, verifier: str, **extra: str) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": client.redirect_uri}
    return await http.post("/token", auth=basic(client), data={**data, "code_verifier": verifier, **extra})


async def test_a_code_in_one_statement_writes_what_two_write(
    http, fd, browser, confidential, resource_servers, redeems
):
    """A code redeemed by the one statement and one whose request names a resource (two statements) leave the
    same: the code spent, a refresh token on its grant expiring as the grant allows, and the audit event
    ``token.issued`` with its detail rendered alike."""
    plain, plain_verifier = await code_for(browser, confidential, scope=SCOPE, resource=RS1)
    named, named_verifier = await code_for(browser, confidential, scope=SCOPE, resource=RS1)
    first = await redeem(http, confidential, plain, plain_verifier)
    second = await redeem(http, confidential, named, named_verifier, resource=RS1)
    for response in (first, second):
        assert response.status_code == 200, response.text
        assert set(response.json()) == {
            "access_token",
            "token_type",
            "expires_in",
            "scope",
            "refresh_token",
            "id_token",
        }
    assert redeems == ([True] if fd.engine.dialect.name == "postgresql" else [])
    assert rows(fd, "SELECT COUNT(*) FROM authorization_codes WHERE consumed_at IS NULL") == [(0,)]
    tokens = rows(
        fd, "SELECT r.expires_at, r.created_at, g.expires_at FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id"
    )
    assert len(tokens) == 2
    for expires_at, created_at, grant_expires in tokens:
        assert expires_at == min(grant_expires, created_at + fd.settings.lifetimes.refresh_idle)
    details = rows(fd, "SELECT a.detail, g.id FROM audit_events a JOIN grants g ON a.detail LIKE '%' || g.id || '%' "
                       "WHERE a.event = 'token.issued'")  # fmt: skip
    assert sorted(d for d, _ in details) == sorted(
        f'{{"grant_id":"{grant_id}","grant_type":"authorization_code"}}' for _, grant_id in details
    )
    assert len(details) == 2


@pytest.mark.parametrize("wrong", ["verifier", "redirect_uri", "client", "malformed-verifier"])
async def test_a_refused_code_is_not_spent(http, fd, browser, confidential, second, redeems, wrong):
    """A code presented with another verifier, another redirect URI or by another client is refused
    (invalid_grant) and left unspent: the right request redeems it afterwards, and no theft is suspected."""
    code, verifier = await code_for(browser, confidential, scope=SCOPE)
    if wrong == "verifier":
        refused = await redeem(http, confidential, code, pkce()[0])  # well formed, another's
    elif wrong == "malformed-verifier":
        refused = await redeem(http, confidential, code, "short")
    elif wrong == "redirect_uri":
        refused = await redeem(http, confidential, code, verifier, redirect_uri="https://app.example/other")
    else:
        refused = await redeem(http, second, code, verifier)
    assert_error(refused, 400, "invalid_grant")
    assert rows(fd, "SELECT COUNT(*) FROM authorization_codes WHERE consumed_at IS NOT NULL") == [(0,)]
    redeemed = await redeem(http, confidential, code, verifier)
    assert redeemed.status_code == 200, redeemed.text
    if fd.engine.dialect.name == "postgresql":
        assert redeems == ([] if wrong == "malformed-verifier" else [False]) + [True]
