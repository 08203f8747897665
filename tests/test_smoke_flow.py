"""End-to-end over HTTP in process: the authorization code flow through the real forms."""

from __future__ import annotations

from conftest import ISSUER, basic, code_for


async def test_code_flow_issues_tokens(http, browser, confidential):
    code, verifier = await code_for(browser, confidential)
    response = await http.post(
        "/token",
        auth=basic(confidential),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": confidential.redirect_uri,
            "code_verifier": verifier,
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert {"access_token", "refresh_token", "id_token", "expires_in", "token_type"} <= set(body)
    info = await http.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.status_code == 200, info.text
    assert info.json()["preferred_username"] == "alice"
    refreshed = await http.post(
        "/token", auth=basic(confidential), data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    assert (await http.get("/.well-known/openid-configuration")).json()["issuer"] == ISSUER
