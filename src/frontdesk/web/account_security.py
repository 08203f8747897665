"""The account's Security page: the password, passkeys (WebAuthn registration, names, removal) and the second step
at sign-in (enrolling an authenticator app, recovery codes, turning it off).

Changing the password needs the current one. Adding or removing a passkey and changing the second factor need a
recent sign-in (``lifetimes.recent_sign_in``): a stolen session cookie alone can neither plant a way back in nor take
the owner's away.
"""

from __future__ import annotations

import json

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..core import Frontdesk
from ..crypto.passwords import hash_password
from ..errors import RateLimited
from ..oauth.passkeys import PasskeyError, register, registration_options
from ..oauth.rate_limits import check, count_failure
from ..oauth.second_factor import (
    attempt_limits,
    begin_enrolment,
    confirm_enrolment,
    has_second_factor,
    new_recovery_codes,
)
from ..oauth.signin_throttle import record_failure, refusal
from ..protocol.forms import Params
from ..storage import audit
from ..storage.db import now, transaction
from ..storage.passkeys import passkeys_of, remove_passkey, rename_passkey
from ..storage.people import UserError, check_new_password, close_other_sessions
from ..storage.second_factor import recovery_codes_left, remove_second_factor
from .account import Visitor, back_to, posted, reauthenticated, render, signed_in_visitor, visitor_form
from .authorize import too_many
from .http import client_ip, json_response
from .throttle import too_many_attempts

__all__ = [
    "add_passkey",
    "change_password",
    "enrol_second_factor",
    "passkey_options",
    "recovery_codes",
    "remove_passkey_form",
    "rename_passkey_form",
    "security",
    "security_page",
    "turn_off_second_factor",
]

HERE = "/account/security"
ENROL = "/account/second-factor"
_NOTICES = {
    "password": "Your password is changed. Your other browsers are signed out.",
    "passkey-added": "Your passkey is added. Next time you sign in, choose “Use a passkey”.",
    "passkey-renamed": "The passkey is renamed.",
    "passkey-removed": "The passkey is removed. It can no longer sign you in.",
    "second-factor-off": "The second step is off. Only your password (and your passkeys) protect your account now.",
}


def security_page(
    fd: Frontdesk, visitor: Visitor, status: int = 200, *, message: str | None = None, done: str | None = None
) -> Response:
    user_id = visitor.person.id
    with transaction(fd.engine, readonly=True) as conn:
        passkeys = passkeys_of(conn, user_id)
        enrolled = has_second_factor(conn, user_id)
        left = recovery_codes_left(conn, user_id) if enrolled else 0
    return render(
        fd,
        visitor,
        "account_security.html",
        HERE,
        status,
        passkeys=passkeys,
        second_factor=enrolled,
        recovery_left=left,
        message=message,
        notice=_NOTICES.get(done or ""),
        scripts=True,
    )


async def security(request: Request) -> Response:
    visitor = await signed_in_visitor(request)
    if isinstance(visitor, Response):
        return visitor
    done = request.query_params.get("done")
    return await run_in_threadpool(lambda: security_page(request.app.state.fd, visitor, done=done))


# --- password ---------------------------------------------------------------------------------------------------


def _new_password_problem(form: Params) -> str | None:
    new, again = form.get("new_password", ""), form.get("repeat_password", "")
    if new != again:
        return "The two new passwords are not the same. Type them again."
    try:
        check_new_password(new)
    except UserError:
        return "Choose a new password of at least 8 characters."
    if new == form.get("current_password"):
        return "The new password is the same as the current one. Choose another."
    return None


def _change_password(fd: Frontdesk, visitor: Visitor, form: Params, ip: str | None) -> Response:
    person = visitor.person
    # A wrong current password is a wrong password like any other: the sign-in throttle counts it.
    refused = refusal(fd, person.username, ip, now())
    if refused is not None:
        return too_many_attempts(refused)
    if not fd.users.password_matches(person.id, form.get("current_password", "")):
        record_failure(fd, person.username, ip, now())
        with transaction(fd.engine) as conn:
            audit.record(conn, "password.changed", "failure", user_id=person.id, ip=ip)
        return security_page(fd, visitor, 400, message="Your current password is not right.")
    problem_text = _new_password_problem(form)
    if problem_text:
        return security_page(fd, visitor, 400, message=problem_text)
    password_hash = hash_password(form.get("new_password", ""))
    with transaction(fd.engine) as conn:
        fd.users.set_password(conn, person.id, password_hash)
        others = close_other_sessions(conn, person.id, visitor.session.id)
        audit.record(conn, "password.changed", "success", user_id=person.id, ip=ip, sessions_signed_out=others)
    return back_to(HERE, done="password")


async def change_password(request: Request) -> Response:
    """A new password, given the current one; every other browser is signed out."""
    return await posted(request, _change_password)


# --- passkeys ---------------------------------------------------------------------------------------------------


def _registration_options(fd: Frontdesk, visitor: Visitor) -> Response:
    with transaction(fd.engine) as conn:
        options = registration_options(fd, conn, visitor.person, now())
    return json_response(json.loads(options))


async def passkey_options(request: Request) -> Response:
    """The challenge for adding a passkey, fetched by the page's script with the form's CSRF token."""
    visitor = await signed_in_visitor(request)
    if isinstance(visitor, Response):
        return json_response({"redirect": visitor.headers["location"]}, 401, _cookies(visitor))
    form = await visitor_form(request, visitor)
    if isinstance(form, Response):
        return json_response({"message": "This page has expired. Reload it and try again."}, 403)
    again = await reauthenticated(request, visitor, HERE, json=True)
    if again is not None:
        return again
    return await run_in_threadpool(_registration_options, request.app.state.fd, visitor)


def _cookies(response: Response) -> dict[str, str]:
    cookie = response.headers.get("set-cookie")
    return {"Set-Cookie": cookie} if cookie else {}


def _add_passkey(fd: Frontdesk, visitor: Visitor, form: Params, ip: str | None) -> Response:
    at = now()
    try:
        with transaction(fd.engine) as conn:
            passkey_id = register(fd, conn, visitor.person, form.get("credential", ""), form.get("name", ""), at)
            name = next(p.name for p in passkeys_of(conn, visitor.person.id) if p.id == passkey_id)
            audit.record(conn, "passkey.added", "success", user_id=visitor.person.id, ip=ip, name=name)
    except PasskeyError as exc:
        return security_page(fd, visitor, 400, message=str(exc))
    return back_to(HERE, done="passkey-added")


async def add_passkey(request: Request) -> Response:
    """The browser's new credential, verified and kept under the name the person chose."""
    return await posted(request, _add_passkey, fresh_sign_in=HERE)


def _change_passkey(fd: Frontdesk, visitor: Visitor, form: Params, remove: bool, ip: str | None) -> Response:
    passkey_id = form.get("passkey", "")
    user_id = visitor.person.id
    with transaction(fd.engine) as conn:
        old = next((p for p in passkeys_of(conn, user_id) if p.id == passkey_id), None)
        if old is None:
            return back_to(HERE)
        if remove:
            remove_passkey(conn, user_id, passkey_id)
            audit.record(conn, "passkey.removed", "success", user_id=user_id, ip=ip, name=old.name)
            return back_to(HERE, done="passkey-removed")
        name = " ".join(form.get("name", "").split())[:100]
        if not name:
            return security_page(fd, visitor, 400, message="Give the passkey a name, so you can tell it apart.")
        rename_passkey(conn, user_id, passkey_id, name)
        audit.record(conn, "passkey.renamed", "success", user_id=user_id, ip=ip, name=name)
    return back_to(HERE, done="passkey-renamed")


async def rename_passkey_form(request: Request) -> Response:
    return await posted(request, lambda fd, visitor, form, ip: _change_passkey(fd, visitor, form, False, ip))


async def remove_passkey_form(request: Request) -> Response:
    """Removing a passkey is a security change like adding one: a stolen session cookie alone must not take away
    the owner's way in (or clear the way for an attacker's own), so it needs a recent sign-in first."""
    return await posted(
        request, lambda fd, visitor, form, ip: _change_passkey(fd, visitor, form, True, ip), fresh_sign_in=HERE
    )


# --- the second factor ------------------------------------------------------------------------------------------


def _enrol_page(fd: Frontdesk, visitor: Visitor, status: int = 200, message: str | None = None) -> Response:
    with transaction(fd.engine) as conn:
        enrolment = begin_enrolment(fd, conn, visitor.person, now())
    if enrolment is None:
        return back_to(HERE)  # already on
    return render(
        fd,
        visitor,
        "enrol_totp.html",
        HERE,
        status,
        title="Set up an authenticator app",
        layout="account_base.html",
        action=ENROL,
        enrolment=enrolment,
        message=message,
    )


def _codes_page(fd: Frontdesk, visitor: Visitor, codes: list[str], replaced: bool) -> Response:
    return render(
        fd,
        visitor,
        "recovery_codes.html",
        HERE,
        title="Save your recovery codes",
        layout="account_base.html",
        codes=codes,
        replaced=replaced,
        next=HERE,
    )


def _confirm(fd: Frontdesk, visitor: Visitor, code: str, ip: str | None) -> Response:
    user_id = visitor.person.id
    limits = attempt_limits(fd, user_id)
    try:
        check(fd, limits)
    except RateLimited as exc:
        return too_many(exc)
    with transaction(fd.engine) as conn:
        codes = confirm_enrolment(fd, conn, user_id, code, now())
        if codes is not None:
            audit.record(conn, "second_factor.enrolled", "success", user_id=user_id, ip=ip)
    if codes is None:
        count_failure(fd, limits)
        wrong = "That code is not right. Type the 6-digit code the app shows now; it changes every 30 seconds."
        return _enrol_page(fd, visitor, 400, wrong)
    return _codes_page(fd, visitor, codes, replaced=False)


async def enrol_second_factor(request: Request) -> Response:
    """GET: the QR code and key of a new secret; POST: the first code from the app, which turns the second step on."""
    visitor = await signed_in_visitor(request)
    if isinstance(visitor, Response):
        return visitor
    fd: Frontdesk = request.app.state.fd
    if request.method == "GET":
        again = await reauthenticated(request, visitor, ENROL)
        if again is not None:
            return again
        return await run_in_threadpool(_enrol_page, fd, visitor)
    form = await visitor_form(request, visitor)
    if isinstance(form, Response):
        return form
    again = await reauthenticated(request, visitor, ENROL)
    if again is not None:
        return again
    return await run_in_threadpool(_confirm, fd, visitor, form.get("code", ""), client_ip(request))


def _turn_off(fd: Frontdesk, visitor: Visitor, ip: str | None) -> Response:
    with transaction(fd.engine) as conn:
        if remove_second_factor(conn, visitor.person.id):
            audit.record(conn, "second_factor.removed", "success", user_id=visitor.person.id, ip=ip)
    return back_to(HERE, done="second-factor-off")


async def turn_off_second_factor(request: Request) -> Response:
    return await posted(request, lambda fd, visitor, _, ip: _turn_off(fd, visitor, ip), fresh_sign_in=HERE)


def _new_codes(fd: Frontdesk, visitor: Visitor, ip: str | None) -> Response:
    user_id = visitor.person.id
    with transaction(fd.engine) as conn:
        if not has_second_factor(conn, user_id):
            return back_to(HERE)
        codes = new_recovery_codes(fd, conn, user_id, now())
        audit.record(conn, "recovery_codes.created", "success", user_id=user_id, ip=ip)
    return _codes_page(fd, visitor, codes, replaced=True)


async def recovery_codes(request: Request) -> Response:
    """A new set of recovery codes, shown once; the old set stops working."""
    return await posted(request, lambda fd, visitor, _, ip: _new_codes(fd, visitor, ip), fresh_sign_in=HERE)
