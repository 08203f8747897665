"""Helpers for the people tests (account page, second factor, passkeys): signing in through the real forms, the
second-factor step, TOTP codes, and a software WebAuthn authenticator built on ``cryptography``."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import struct
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import cbor2
import httpx
import pyotp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import ISSUER, csrf_of

RP_ID = urlsplit(ISSUER).hostname or ""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def form_action(html: str, index: int = 0) -> str:
    actions = re.findall(r'<form method="post" action="([^"]+)"', html)
    assert len(actions) > index, html
    return actions[index]


async def follow(http: httpx.AsyncClient, response: httpx.Response) -> httpx.Response:
    """Follow redirects that stay on this server, as a browser would."""
    while response.status_code in (302, 303) and response.headers["location"].startswith(("/", ISSUER)):
        response = await http.get(response.headers["location"])
    return response


async def sign_in_form(http: httpx.AsyncClient, page: httpx.Response, username: str, password: str) -> httpx.Response:
    """Post the sign-in form on ``page``; the answer, not followed."""
    assert 'name="password"' in page.text, page.text
    return await http.post(
        form_action(page.text), data={"csrf": csrf_of(page.text), "username": username, "password": password}
    )


async def post_code(http: httpx.AsyncClient, page: httpx.Response, code: str) -> httpx.Response:
    """Post the (first) code form of a second-factor or enrolment page."""
    return await http.post(form_action(page.text), data={"csrf": csrf_of(page.text), "code": code})


async def account_page(http: httpx.AsyncClient, username: str, password: str, path: str = "/account") -> httpx.Response:
    """Open an account page, signing in with the password if asked; the page (or the second-factor step)."""
    response = await follow(http, await http.get(path))
    if 'name="password"' in response.text:
        response = await follow(http, await sign_in_form(http, response, username, password))
    return response


def totp_code(secret: str, at: float | None = None) -> str:
    return pyotp.TOTP(secret).at(int(time.time() if at is None else at))


def secret_on(page: httpx.Response) -> str:
    """The TOTP key an enrolment page shows for typing in (grouped by four)."""
    match = re.search(r'<code class="secret" data-secret>([A-Z2-7 ]+)</code>', page.text)
    assert match, page.text
    return match.group(1).replace(" ", "")


def recovery_codes_on(page: httpx.Response) -> list[str]:
    return re.findall(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>", page.text)


# --- a software authenticator ------------------------------------------------------------------------------------

UP, UV, BE, AT = 0x01, 0x04, 0x08, 0x40


@dataclass
class Authenticator:
    """A WebAuthn authenticator in software: one P-256 key per credential, discoverable, "none" attestation."""

    origin: str = ISSUER
    rp_id: str = RP_ID
    verifies_user: bool = True
    backup_eligible: bool = False
    credentials: dict[bytes, tuple[ec.EllipticCurvePrivateKey, bytes, int]] = field(default_factory=dict)

    def _auth_data(self, flags: int, count: int, attested: bytes = b"") -> bytes:
        rp_hash = hashlib.sha256(self.rp_id.encode()).digest()
        return rp_hash + bytes([flags]) + struct.pack(">I", count) + attested

    def _flags(self) -> int:
        return UP | (UV if self.verifies_user else 0) | (BE if self.backup_eligible else 0)

    def _client_data(self, kind: str, challenge: str) -> bytes:
        body = {"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": False}
        return json.dumps(body).encode()

    def create(self, options: dict[str, Any]) -> dict[str, Any]:
        """``navigator.credentials.create()``: a new credential for the options' user."""
        key = ec.generate_private_key(ec.SECP256R1())
        numbers = key.public_key().public_numbers()
        cose = cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})
        credential_id = secrets.token_bytes(16)
        user_handle = unb64url(options["user"]["id"])
        self.credentials[credential_id] = (key, user_handle, 0)
        attested = bytes(16) + struct.pack(">H", len(credential_id)) + credential_id + cose
        auth_data = self._auth_data(self._flags() | AT, 0, attested)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data("webauthn.create", options["challenge"])
        return {
            "id": b64url(credential_id),
            "rawId": b64url(credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        }

    def get(
        self, options: dict[str, Any], credential_id: bytes | None = None, count: int | None = None
    ) -> dict[str, Any]:
        """``navigator.credentials.get()``: an assertion by one of its credentials (the only one, by default)."""
        credential_id = credential_id or next(iter(self.credentials))
        key, user_handle, used = self.credentials[credential_id]
        count = used + 1 if count is None else count
        self.credentials[credential_id] = (key, user_handle, count)
        auth_data = self._auth_data(self._flags(), count)
        client_data = self._client_data("webauthn.get", options["challenge"])
        signature = key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return {
            "id": b64url(credential_id),
            "rawId": b64url(credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(user_handle),
            },
            "clientExtensionResults": {},
        }


async def passkey_options(http: httpx.AsyncClient, page: httpx.Response, options_url: str) -> dict[str, Any]:
    response = await http.post(options_url, data={"csrf": csrf_of(page.text)})
    assert response.status_code == 200, response.text
    options: dict[str, Any] = response.json()
    return options


async def add_passkey(
    http: httpx.AsyncClient, authenticator: Authenticator, name: str = "Laptop"
) -> tuple[httpx.Response, dict[str, Any]]:
    """Register a passkey from the Security page, as its script does: options, create, post the form."""
    security = await http.get("/account/security")
    assert security.status_code == 200, security.text
    options = await passkey_options(http, security, "/account/passkeys/options")
    credential = authenticator.create(options)
    response = await http.post(
        "/account/passkeys",
        data={"csrf": csrf_of(security.text), "name": name, "credential": json.dumps(credential)},
    )
    return response, options


async def sign_in_with_passkey(
    http: httpx.AsyncClient, login: httpx.Response, authenticator: Authenticator, **get: Any
) -> httpx.Response:
    """On a sign-in page: fetch the options, let the authenticator sign, post the passkey form (not followed)."""
    action = re.search(r'action="(/interaction/[^/"]+/passkey)"', login.text)
    assert action, login.text
    options = await passkey_options(http, login, action.group(1) + "/options")
    assertion = authenticator.get(options, **get)
    return await http.post(action.group(1), data={"csrf": csrf_of(login.text), "credential": json.dumps(assertion)})
