"""Passkeys: the W3C WebAuthn Level 3 ceremonies, through the ``webauthn`` package, with this server as the relying
party (RP ID = the issuer's host, origin = the issuer's origin).

Registration asks for a discoverable credential, so that sign-in needs no username (§5.4.6 ``residentKey``); user
verification is preferred, and a sign-in that verified the person (a PIN or biometric on the authenticator) counts as
multi-factor by itself. Every challenge is 32 random bytes, stored as a digest, single use and short-lived.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlalchemy import Connection
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    RegistrationCredential,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from ..core import Frontdesk
from ..protocol.rfc8176 import HWK, MFA, SWK
from ..storage import audit
from ..storage.db import now, transaction
from ..storage.passkeys import (
    add_passkey,
    passkey_by_credential,
    passkeys_of,
    remove_passkey,
    rename_passkey,
    store_challenge,
    take_challenge,
    used_passkey,
)
from ..storage.people import UserRecord
from .security_notices import Change, tell

__all__ = [
    "PasskeyError",
    "PasskeySignIn",
    "Renamed",
    "authentication_options",
    "register",
    "registration_options",
    "remove",
    "rename",
    "sign_in",
]

REGISTER = "register"
AUTHENTICATE = "authenticate"
NAME_MAX = 100


Renamed = Literal["renamed", "unknown", "no_name"]


class PasskeyError(Exception):
    """The browser's answer cannot be used; the message is written for the person."""


@dataclass(frozen=True, slots=True)
class PasskeySignIn:
    user_id: str
    passkey_id: str
    amr: tuple[str, ...]


def _rp(fd: Frontdesk) -> tuple[str, str]:
    """(RP ID, origin): the issuer's host, and its scheme and authority (WebAuthn §5.1.3 origin check)."""
    parts = urlsplit(fd.issuer)
    return parts.hostname or "", f"{parts.scheme}://{parts.netloc}"


def _challenge(fd: Frontdesk, conn: Connection, purpose: str, subject: str, at: int) -> bytes:
    challenge = secrets.token_bytes(32)
    store_challenge(conn, challenge, purpose, subject, at, fd.settings.lifetimes.passkey_challenge)
    return challenge


def registration_options(fd: Frontdesk, user: UserRecord) -> str:
    """``PublicKeyCredentialCreationOptions`` as JSON, excluding the passkeys the person already has; its challenge
    is kept for ``register``."""
    with transaction(fd.engine) as conn:
        return _registration_options(fd, conn, user, now())


def _registration_options(fd: Frontdesk, conn: Connection, user: UserRecord, at: int) -> str:
    rp_id, _ = _rp(fd)
    existing = [PublicKeyCredentialDescriptor(id=p.credential_id) for p in passkeys_of(conn, user.id)]
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name=rp_id,
        user_name=user.username,
        user_id=user.id.encode(),  # random, no personal data: the user handle discoverable credentials return
        user_display_name=user.name or user.username,
        challenge=_challenge(fd, conn, REGISTER, user.id, at),
        timeout=fd.settings.lifetimes.passkey_challenge * 1000,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=existing,
    )
    return options_to_json(options)


def authentication_options(fd: Frontdesk, conn: Connection, ix_id: str, at: int) -> str:
    """``PublicKeyCredentialRequestOptions`` as JSON, with no allow list: the authenticator offers its passkeys."""
    rp_id, _ = _rp(fd)
    options = generate_authentication_options(
        rp_id=rp_id,
        challenge=_challenge(fd, conn, AUTHENTICATE, ix_id, at),
        timeout=fd.settings.lifetimes.passkey_challenge * 1000,
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    return options_to_json(options)


def _parsed(credential: str, kind: str) -> tuple[Any, bytes]:
    """The credential and the challenge its client data signed, or PasskeyError."""
    try:
        parsed: RegistrationCredential | AuthenticationCredential
        if kind == REGISTER:
            parsed = parse_registration_credential_json(credential)
        else:
            parsed = parse_authentication_credential_json(credential)
        client_data = parse_client_data_json(parsed.response.client_data_json)
    except (WebAuthnException, ValueError, KeyError, TypeError, RecursionError):  # the library's json.loads recurses
        raise PasskeyError("Your browser's answer could not be read. Try again.") from None
    return parsed, client_data.challenge


def _name(name: str, existing: int) -> str:
    name = " ".join(name.split())[:NAME_MAX]
    return name or f"Passkey {existing + 1}"


def register(fd: Frontdesk, user: UserRecord, credential: str, name: str, ip: str | None) -> str:
    """Verify ``navigator.credentials.create()``'s answer and keep the passkey under the name the person chose (or
    a numbered one), audited as ``passkey.added``; returns its id. Raises PasskeyError, and then nothing is kept:
    the challenge stays usable until it expires."""
    with transaction(fd.engine) as conn:
        passkey_id, kept_name = _register(fd, conn, user, credential, name, now())
        audit.record(conn, "passkey.added", "success", user_id=user.id, ip=ip, name=kept_name)
    tell(fd, user.id, Change.PASSKEY_ADDED, ip=ip, name=kept_name)
    return passkey_id


def _register(
    fd: Frontdesk, conn: Connection, user: UserRecord, credential: str, name: str, at: int
) -> tuple[str, str]:
    parsed, challenge = _parsed(credential, REGISTER)
    if not take_challenge(conn, challenge, REGISTER, user.id, at):
        raise PasskeyError("This request to add a passkey has expired. Try again.")
    rp_id, origin = _rp(fd)
    try:
        verified = verify_registration_response(
            credential=parsed, expected_challenge=challenge, expected_rp_id=rp_id, expected_origin=origin
        )
    except WebAuthnException:
        raise PasskeyError("The passkey could not be verified. Try again.") from None
    if passkey_by_credential(conn, verified.credential_id) is not None:
        raise PasskeyError("This passkey is already registered.")
    transports = tuple(str(t.value) for t in parsed.response.transports or ())
    kept_name = _name(name, len(passkeys_of(conn, user.id)))
    passkey_id = add_passkey(
        conn,
        user_id=user.id,
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        transports=transports,
        name=kept_name,
        at=at,
    )
    return passkey_id, kept_name


def rename(fd: Frontdesk, user_id: str, passkey_id: str, name: str, ip: str | None) -> Renamed:
    """A new name for one of the person's passkeys, audited as ``passkey.renamed``; "unknown" for a passkey that
    is not theirs (or gone), "no_name" for a name of only spaces."""
    with transaction(fd.engine) as conn:
        if not any(p.id == passkey_id for p in passkeys_of(conn, user_id)):
            return "unknown"
        name = " ".join(name.split())[:NAME_MAX]
        if not name:
            return "no_name"
        rename_passkey(conn, user_id, passkey_id, name)
        audit.record(conn, "passkey.renamed", "success", user_id=user_id, ip=ip, name=name)
    return "renamed"


def remove(fd: Frontdesk, user_id: str, passkey_id: str, ip: str | None) -> bool:
    """Remove one of the person's passkeys, audited as ``passkey.removed``; False for a passkey not theirs."""
    with transaction(fd.engine) as conn:
        old = next((p for p in passkeys_of(conn, user_id) if p.id == passkey_id), None)
        if old is None:
            return False
        remove_passkey(conn, user_id, passkey_id)
        audit.record(conn, "passkey.removed", "success", user_id=user_id, ip=ip, name=old.name)
    tell(fd, user_id, Change.PASSKEY_REMOVED, ip=ip, name=old.name)
    return True


def sign_in(fd: Frontdesk, conn: Connection, ix_id: str, credential: str, at: int) -> PasskeySignIn:
    """Verify ``navigator.credentials.get()``'s answer for the interaction; who signed in, and how (RFC 8176)."""
    parsed, challenge = _parsed(credential, AUTHENTICATE)
    if not take_challenge(conn, challenge, AUTHENTICATE, ix_id, at):
        raise PasskeyError("This passkey request has expired. Try again.")
    passkey = passkey_by_credential(conn, parsed.raw_id)
    unknown = PasskeyError("This passkey is not registered here. Sign in with your password, then add it.")
    if passkey is None:
        raise unknown
    handle = parsed.response.user_handle
    if handle is not None and handle != passkey.user_id.encode():
        raise unknown  # WebAuthn §7.2 step 6: the user handle must name the credential's owner
    rp_id, origin = _rp(fd)
    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
            credential_public_key=passkey.public_key,
            credential_current_sign_count=passkey.sign_count,
        )
    except WebAuthnException:
        raise PasskeyError("The passkey could not be verified. Try again.") from None
    if not used_passkey(conn, passkey.id, passkey.sign_count, verified.new_sign_count, at):
        raise PasskeyError("The passkey could not be verified. Try again.")
    amr: tuple[str, ...] = (SWK if passkey.backup_eligible else HWK,)
    if verified.user_verified:
        amr += (MFA,)  # possession of the key and the PIN or biometric that unlocked it
    return PasskeySignIn(passkey.user_id, passkey.id, amr)
