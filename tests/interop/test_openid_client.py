"""openid-client v6 (Node, OpenID Certified) as the relying party: discovery, the code flow with PKCE through the
real sign-in and consent forms, ID token validation, UserInfo, refresh, and revocation."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import Person, Server

pytestmark = pytest.mark.interop

HERE = Path(__file__).parent
NPM_TIMEOUT = 300.0
RP_TIMEOUT = 120.0
REDIRECT_URI = "https://rp.example/callback"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"`{name}` is not on PATH: the openid-client interop test needs Node.js 20 or newer with npm "
            "(e.g. `apt-get install nodejs npm`)",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def node() -> str:
    """The node binary, after installing tests/interop's npm dependencies if they are missing."""
    node = _tool("node")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30, check=True).stdout
    match = re.match(r"v(\d+)\.", version.strip())
    if not match or int(match.group(1)) < 20:
        pytest.fail(f"openid-client v6 needs Node.js 20 or newer; found {version.strip()!r}", pytrace=False)
    if not (HERE / "node_modules" / "openid-client" / "package.json").exists():
        npm = _tool("npm")
        command = [npm, "ci" if (HERE / "package-lock.json").exists() else "install", "--no-audit", "--no-fund"]
        done = subprocess.run(command, cwd=HERE, capture_output=True, text=True, timeout=NPM_TIMEOUT, check=False)
        if done.returncode != 0:
            pytest.fail(f"`npm {command[1]}` in {HERE} failed:\n{done.stdout}{done.stderr}", pytrace=False)
    return node


def test_openid_client_code_flow_refresh_and_revocation(node: str, frontdesk_server: Server, interop_person: Person):
    """openid-client completes the PKCE code flow with a validated ID token, reads UserInfo, rotates the refresh
    token, revokes it, and then sees invalid_grant when refreshing with the revoked token."""
    client = frontdesk_server.cli(
        "client",
        "create",
        "--name",
        "openid-client RP",
        "--redirect-uri",
        REDIRECT_URI,
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
        "--scope",
        "openid profile email offline_access",
    )
    assert client["token_endpoint_auth_method"] == "client_secret_basic"
    env = {
        **frontdesk_server.env,
        "RP_CLIENT_SECRET": client["client_secret"],
        "RP_PASSWORD": interop_person.password,
    }
    # --name=value: a value may begin with "-" (an operator's client id), which parseArgs would read as an option.
    command = [
        node,
        str(HERE / "rp.mjs"),
        f"--issuer={frontdesk_server.issuer}",
        f"--client-id={client['client_id']}",
        f"--redirect-uri={REDIRECT_URI}",
        f"--username={interop_person.username}",
    ]
    done = subprocess.run(command, cwd=HERE, env=env, capture_output=True, text=True, timeout=RP_TIMEOUT, check=False)
    context = f"rp.mjs exited {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    context += f"\nfrontdesk log:\n{frontdesk_server.log_text()}"
    assert done.returncode == 0, context
    result = json.loads(done.stdout)
    assert result["ok"] is True, context

    assert result["issuer"] == frontdesk_server.issuer
    # RFC 9207: the authorization response names its issuer, and openid-client checked it.
    assert result["callback_params"] == ["code", "iss", "state"]

    claims = result["id_token_claims"]
    assert result["sub"] == claims["sub"] == interop_person.sub
    assert claims["iss"] == frontdesk_server.issuer
    assert claims["aud"] == client["client_id"]
    assert "nonce" in claims
    assert result["nonce_matches"] is True
    assert "at_hash" in claims
    assert result["at_hash_matches"] is True
    assert result["id_token_header"]["alg"] == "RS256"
    assert result["token_type"].lower() == "bearer"
    assert set(result["scope"].split()) == {"openid", "profile", "email", "offline_access"}
    assert result["refresh_token_issued"] is True

    userinfo = result["userinfo"]
    assert userinfo["sub"] == interop_person.sub
    assert userinfo["preferred_username"] == interop_person.username
    assert userinfo["email"] == "alice@example.com"

    refreshed = result["refreshed"]
    assert refreshed["refresh_token_issued"] is True
    assert refreshed["refresh_token_changed"] is True
    assert refreshed["access_token_changed"] is True
    assert refreshed["id_token_sub"] in (None, interop_person.sub)

    assert result["revoked_refresh"] == {"error": "invalid_grant", "status": 400}
